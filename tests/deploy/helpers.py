"""Read the deployment files the way their tools would, without running any of them (there is no
container engine or cluster here): Compose's variable interpolation and file merging, the
``phonefleet`` command line, ``PHONEFLEET_*`` settings, env files and code blocks in docs."""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
import typer.core
import typer.main
import yaml

from shared.cli import app
from shared.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE_FILE = REPO / "docker-compose.yml"

SETTING_NAMES = frozenset(f"PHONEFLEET_{name.upper()}" for name in Settings.model_fields)
SETTING_NAME = re.compile(r"\bPHONEFLEET_[A-Z0-9_]+\b")

# Values that would be secrets in a real deployment, for filling in the examples.
CENTRAL_SECRETS = {
    "POSTGRES_PASSWORD": "pg-secret-0123",
    "REDIS_PASSWORD": "redis-secret-0123",
    "PHONEFLEET_FLOWER_BASIC_AUTH": "admin:flower-secret-0123",
}
HUB_SECRETS = {
    "PHONEFLEET_BROKER_URL": "rediss://:redis-secret-0123@central.example.lan:6380/0"
    "?ssl_cert_reqs=required&ssl_ca_certs=/etc/phonefleet/tls/ca.crt",
    "PHONEFLEET_HUB_NAME": "hub-a",
}
SECRET_VARIABLES = frozenset({"POSTGRES_PASSWORD", "REDIS_PASSWORD", "PHONEFLEET_FLOWER_BASIC_AUTH"})


def load_yaml(path: Path) -> Any:
    """One YAML document."""
    return yaml.safe_load(path.read_text())


def load_yaml_docs(path: Path) -> list[Any]:
    """Every non-empty document of a YAML file."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


# --- Compose ----------------------------------------------------------------------------------------

# $$ (a literal $), ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message},
# ${NAME:+alt}, ${NAME+alt}, $NAME: the forms Compose interpolates.
_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


@dataclass(frozen=True)
class VariableRef:
    """One ``${NAME...}`` in a Compose file."""

    name: str
    op: str | None  # None, "-", ":-", "?", ":?", "+", ":+"
    arg: str

    @property
    def required(self) -> bool:
        """Compose stops with ``arg`` as the error when the variable is unset or empty."""
        return self.op == ":?"


class MissingVariableError(Exception):
    """What ``docker compose`` does for a ``${NAME:?message}`` that is unset or empty."""


def strings_in(value: Any) -> Iterator[str]:
    """Every string value in a parsed YAML tree (not the mapping keys; Compose does not interpolate those)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def variable_refs(value: Any) -> list[VariableRef]:
    """Every variable reference in a parsed Compose file."""
    refs = []
    for text in strings_in(value):
        for match in _VARIABLE.finditer(text):
            if match["escaped"]:
                continue
            name = match["braced"] or match["named"]
            refs.append(VariableRef(name, match["op"], match["arg"] or ""))
    return refs


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """``value`` with its variables replaced as Compose would, given the environment ``env``."""
    if isinstance(value, str):
        return _VARIABLE.sub(lambda m: _substitute(m, env), value)
    if isinstance(value, Mapping):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    return value


def _substitute(match: re.Match[str], env: Mapping[str, str]) -> str:
    if match["escaped"]:
        return "$"
    name = match["braced"] or match["named"]
    op, arg = match["op"], match["arg"] or ""
    current = env.get(name)
    missing = current is None or (current == "" and op is not None and op.startswith(":"))
    if op in ("-", ":-"):
        return arg if missing else str(current)
    if op in ("?", ":?"):
        if missing:
            raise MissingVariableError(f"required variable {name} is missing a value: {arg}")
        return str(current)
    if op in ("+", ":+"):
        return "" if missing else arg
    return current or ""


def merge_compose(base: Mapping[str, Any], overlay: Mapping[str, Any], key: str = "") -> dict[str, Any]:
    """``docker compose -f base -f overlay``: mappings merge, commands and probe tests are replaced,
    volumes merge by their path in the container, other lists are concatenated."""
    merged = dict(base)
    for name, value in overlay.items():
        old = merged.get(name)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            merged[name] = merge_compose(old, value, name)
        elif isinstance(old, list) and isinstance(value, list) and name not in ("command", "entrypoint", "test"):
            if name == "volumes" and key != "":
                by_target = {volume_target(v): v for v in old}
                by_target.update({volume_target(v): v for v in value})
                merged[name] = list(by_target.values())
            else:
                merged[name] = old + [v for v in value if v not in old]
        else:
            merged[name] = value
    return merged


def volume_parts(volume: str) -> tuple[str, str, str]:
    """``SOURCE:TARGET[:MODE]`` of a short-syntax volume."""
    parts = volume.split(":")
    source, target = parts[0], parts[1]
    return source, target, parts[2] if len(parts) > 2 else "rw"


def volume_target(volume: Any) -> str:
    return str(volume["target"]) if isinstance(volume, Mapping) else volume_parts(str(volume))[1]


def published_ports(service: Mapping[str, Any]) -> dict[int, str]:
    """Container port → host interface, from short-syntax ``ports``."""
    found = {}
    for port in service.get("ports", []):
        *host, container = str(port).split(":")
        found[int(container.split("/")[0])] = host[0] if len(host) == 2 else "0.0.0.0"
    return found


def service_environment(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's ``environment`` as a mapping (Compose also accepts a list of NAME=VALUE)."""
    env = service.get("environment", {})
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


# --- env files ---------------------------------------------------------------------------------------


def read_env_file(path: Path) -> dict[str, str]:
    """``NAME=VALUE`` lines of an env file (Compose's ``.env``, systemd's ``EnvironmentFile=``)."""
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f"{path.name}: not NAME=VALUE: {line!r}"
            env[name.strip()] = value.strip()
    return env


# --- the phonefleet command line --------------------------------------------------------------------


def phonefleet_command() -> typer.core.TyperGroup:
    """The Click command behind ``phonefleet`` (shared.cli's Typer app)."""
    command = typer.main.get_command(app)
    assert isinstance(command, typer.core.TyperGroup)
    return command


def parse_cli(args: Sequence[str]) -> tuple[str, dict[str, Any]]:
    """Parse ``phonefleet ARGS`` as the real command line would, without running it.

    Returns the subcommand's path ("worker", "keys create") and its parsed parameters; raises
    ``typer.TyperException`` (Click's UsageError) for an unknown command, option or bad value."""
    command: Any = phonefleet_command()
    path: list[str] = []
    rest = list(args)
    while isinstance(command, typer.core.TyperGroup):
        if not rest or rest[0] not in command.commands:
            raise AssertionError(f"not a phonefleet command: {' '.join(['phonefleet', *args])!r}")
        path.append(rest[0])
        command = command.commands[rest.pop(0)]
    context = command.make_context(" ".join(["phonefleet", *path]), rest)
    return " ".join(path), dict(context.params)


# --- settings -----------------------------------------------------------------------------------------


def settings_from(env: Mapping[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The Settings a process would read with exactly the ``PHONEFLEET_*`` variables of ``env``."""
    for name in list(os.environ):
        if name.startswith("PHONEFLEET_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        if name.startswith("PHONEFLEET_"):
            monkeypatch.setenv(name, value)
    return Settings()


def unknown_settings(names: Iterable[str]) -> set[str]:
    """The ``PHONEFLEET_*`` names among ``names`` that are not fields of Settings."""
    return {n for n in names if n.startswith("PHONEFLEET_") and n not in SETTING_NAMES}


# --- docs ----------------------------------------------------------------------------------------------


def shell_commands(markdown: str) -> list[str]:
    """Commands of the fenced shell blocks (```bash, ```sh) of a Markdown text, continuation lines joined."""
    commands: list[str] = []
    for block in re.findall(r"```(?:bash|sh)\n(.*?)```", markdown, flags=re.DOTALL):
        pending = ""
        for line in block.splitlines():
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            commands.append((pending + line).strip())
            pending = ""
    return [c for c in commands if c]


def phonefleet_invocations(command: str) -> list[list[str]]:
    """The argument lists given to ``phonefleet`` in one shell command line (comments, pipes and
    ``&&`` end an invocation; ``-u phonefleet`` or ``-n phonefleet`` is a user or namespace)."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    tokens = list(lexer)
    found = []
    for i, token in enumerate(tokens):
        if token in ("phonefleet", "/opt/phonefleet/bin/phonefleet") and not (i and tokens[i - 1].startswith("-")):
            args = []
            for arg in tokens[i + 1 :]:
                if arg in ("&&", "||", "|", ";", ">", "<", "2>", "&"):
                    break
                args.append(arg)
            if args:
                found.append(args)
    return found
