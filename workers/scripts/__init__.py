"""Device scripts and their registry.

A script is a module of this package with ``SCRIPT_NAME`` and ``run(ctx: ScriptContext) -> str``;
adding a script is adding a module. Hub workers call :func:`run_script`, which finds the script by
the task's ``script_name`` and turns any stray exception into a classified :class:`ScriptFailure`.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from shared.failures import FailureKind
from workers.scripts.base import ScriptContext, ScriptFailure, TaskStopped


@dataclass(frozen=True)
class Script:
    """A registered script."""

    name: str
    module: str
    run: Callable[[ScriptContext], str]


@lru_cache(maxsize=1)
def registry() -> dict[str, Script]:
    """Every script module of the package, by ``SCRIPT_NAME`` (modules starting with ``_`` are helpers)."""
    found: dict[str, Script] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_") or info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        name = getattr(module, "SCRIPT_NAME", None)
        run = getattr(module, "run", None)
        if isinstance(name, str) and callable(run):
            if name in found:
                raise RuntimeError(f"two scripts are named {name!r}: {found[name].module} and {module.__name__}")
            found[name] = Script(name, module.__name__, run)
    return found


def script_names() -> list[str]:
    """Names of every available script."""
    return sorted(registry())


def get_script(name: str) -> Script:
    """The script called ``name``; ``ScriptFailure(BAD_CONFIG)`` if there is none."""
    try:
        return registry()[name]
    except KeyError:
        raise ScriptFailure(FailureKind.BAD_CONFIG, f"no script named {name!r} on this hub") from None


def run_script(ctx: ScriptContext) -> str:
    """Run the task's script; returns its remark.

    Raises :class:`TaskStopped` when the user stopped the task, and :class:`ScriptFailure` for every
    failure (adb errors classified as device offline / timeout, anything unexpected as script error).
    """
    from workers.scripts._device import classify_error

    script = get_script(ctx.spec.script_name)
    try:
        return script.run(ctx)
    except (TaskStopped, ScriptFailure):
        raise
    except Exception as exc:
        raise classify_error(exc) from exc


__all__ = ["Script", "ScriptFailure", "TaskStopped", "get_script", "registry", "run_script", "script_names"]
