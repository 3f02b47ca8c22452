"""``noop``: wait ``duration`` seconds (interruptibly) and succeed, or fail on request. No adb calls,
so benchmarks measure the queue, not the phones."""

from __future__ import annotations

from pydantic import ValidationError

from shared.failures import FailureKind
from shared.scripts import NoopConfig
from workers.scripts.base import ScriptContext, ScriptFailure

SCRIPT_NAME = "noop"


def run(ctx: ScriptContext) -> str:
    """Sleep through ``ctx.sleep`` (a stop wakes it), then return or raise ``fail_with``."""
    try:
        config = NoopConfig.model_validate(ctx.spec.script_config)
    except ValidationError as exc:
        raise ScriptFailure(FailureKind.BAD_CONFIG, f"bad script_config: {exc.errors()[0]['msg']}") from exc
    ctx.checkpoint()
    if config.duration > 0:
        ctx.sleep(config.duration)
    ctx.checkpoint()
    if config.fail_with:
        raise ScriptFailure(FailureKind.SCRIPT_ERROR, config.fail_with)
    return f"noop done after {config.duration:g}s"
