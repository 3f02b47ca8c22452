"""deploy/systemd: a hub machine without Docker (hub worker unit, adb server unit, settings)."""

from __future__ import annotations

import configparser
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.helpers import DEPLOY, HUB_SECRETS, parse_cli, read_env_file, settings_from, unknown_settings

SYSTEMD = DEPLOY / "systemd"
HUB_UNIT = SYSTEMD / "phonefleet-hub.service"
ADB_UNIT = SYSTEMD / "adb-server.service"
HUB_ENV = SYSTEMD / "hub.env.example"


def read_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """section → key → every value (systemd allows a key more than once); also checks it parses."""
    parser = configparser.ConfigParser(interpolation=None, strict=True, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment, method-assign]
    parser.read_string(_first_values_only(path.read_text()))
    unit: dict[str, dict[str, list[str]]] = {section: {} for section in parser.sections()}
    section = ""
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        unit[section].setdefault(key.strip(), []).append(value.strip())
    return unit


def _first_values_only(text: str) -> str:
    """configparser refuses repeated keys, which systemd allows: keep the first of each."""
    seen: set[tuple[str, str]] = set()
    kept, section = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            section = stripped
        elif "=" in stripped and not stripped.startswith("#"):
            key = (section, stripped.split("=", 1)[0])
            if key in seen:
                continue
            seen.add(key)
        kept.append(line)
    return "\n".join(kept)


def expand(value: str, env: dict[str, str]) -> list[str]:
    """An Exec*= line as systemd splits it: ${NAME} is one word, $$ a literal dollar."""
    words = shlex.split(value)
    return [re.sub(r"\$\$|\$\{(\w+)\}", lambda m: env.get(m[1], "") if m[1] else "$", w) for w in words]


def environment(unit: dict[str, dict[str, list[str]]]) -> dict[str, str]:
    """The unit's Environment= assignments, then its EnvironmentFile= (the example), as systemd would."""
    env: dict[str, str] = {}
    for line in unit["Service"].get("Environment", []):
        for item in shlex.split(line):
            name, _, value = item.partition("=")
            env[name] = value
    for path in unit["Service"].get("EnvironmentFile", []):
        assert path.lstrip("-") == "/etc/phonefleet/hub.env"
        env.update({**read_env_file(HUB_ENV), **HUB_SECRETS})
    return env


@pytest.fixture(scope="module")
def hub() -> dict[str, dict[str, list[str]]]:
    return read_unit(HUB_UNIT)


@pytest.fixture(scope="module")
def adb() -> dict[str, dict[str, list[str]]]:
    return read_unit(ADB_UNIT)


def test_units_have_their_sections(hub: dict[str, dict[str, list[str]]], adb: dict[str, dict[str, list[str]]]) -> None:
    for unit in (hub, adb):
        assert set(unit) == {"Unit", "Service", "Install"}
        assert unit["Install"]["WantedBy"] == ["multi-user.target"]
        assert unit["Service"]["Restart"] == ["always"]


def test_hub_unit_runs_phonefleet_worker(hub: dict[str, dict[str, list[str]]]) -> None:
    (exec_start,) = hub["Service"]["ExecStart"]
    words = expand(exec_start, environment(hub))
    assert words[0].startswith("/") and Path(words[0]).name == "phonefleet"
    name, params = parse_cli(words[1:])
    assert name == "worker"
    assert params["hub"] == HUB_SECRETS["PHONEFLEET_HUB_NAME"]


def test_hub_runs_as_a_dedicated_user_with_broker_credentials_only(hub: dict[str, dict[str, list[str]]]) -> None:
    service = hub["Service"]
    assert service["User"] == ["phonefleet"] and service["Group"] == ["phonefleet"]
    assert service["EnvironmentFile"] == ["/etc/phonefleet/hub.env"], "required: no settings, no start"
    assert "DATABASE" not in HUB_UNIT.read_text() and "DATABASE" not in HUB_ENV.read_text()
    assert service["NoNewPrivileges"] == ["yes"]
    assert int(service["TimeoutStopSec"][0]) >= 60, "a warm shutdown lets running tasks finish"


def test_the_adb_server_starts_before_the_hub(
    hub: dict[str, dict[str, list[str]]], adb: dict[str, dict[str, list[str]]]
) -> None:
    after = " ".join(hub["Unit"]["After"]).split()
    wanted = " ".join(hub["Unit"].get("Wants", []) + hub["Unit"].get("Requires", [])).split()
    assert "adb-server.service" in after and "adb-server.service" in wanted
    assert adb["Service"]["User"] == hub["Service"]["User"]
    env = environment(adb)
    (exec_start,) = adb["Service"]["ExecStart"]
    words = expand(exec_start, env)
    assert Path(words[0]).name == "adb"
    # Foreground (systemd supervises it), on the hub's port, loopback only (no -a).
    assert words[1:] == ["-P", env["PHONEFLEET_ADB_PORT"], "server", "nodaemon"]
    assert env["PHONEFLEET_ADB_PORT"] == environment(hub)["PHONEFLEET_ADB_PORT"]
    # The unit counts as started once the port accepts connections.
    (post,) = adb["Service"]["ExecStartPost"]
    assert "/dev/tcp/127.0.0.1/${PHONEFLEET_ADB_PORT}" in " ".join(expand(post, {}))
    # Its keys (trusted by the phones) live in the state directory.
    assert env["HOME"] == "/var/lib/" + adb["Service"]["StateDirectory"][0]


def test_hub_env_example_holds_real_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    example = read_env_file(HUB_ENV)
    assert not unknown_settings(example)
    assert set(example) - {n for n in example if n.startswith("PHONEFLEET_")} == {"IMAGE", "HUB_TLS_DIR"}
    # Shipped empty, so that an unedited copy cannot start a hub.
    assert example["PHONEFLEET_BROKER_URL"] == "" and example["PHONEFLEET_HUB_NAME"] == ""
    settings = settings_from({**example, **HUB_SECRETS}, monkeypatch)
    assert settings.database_url is None
    assert settings.adb_host == "127.0.0.1"
    # The commented-out alternatives are real settings too.
    commented = re.findall(r"^#\s+(PHONEFLEET_\w+)=", HUB_ENV.read_text(), flags=re.MULTILINE)
    assert commented and not unknown_settings(commented)


def test_hub_unit_environment_is_settings(
    hub: dict[str, dict[str, list[str]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = environment(hub)
    assert not unknown_settings(env)
    settings = settings_from(env, monkeypatch)
    assert settings.media_cache() == Path("/var/cache") / hub["Service"]["CacheDirectory"][0] / "media"
    assert settings.data_dir == Path("/var/lib") / hub["Service"]["StateDirectory"][0]


def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    """`systemd-analyze verify`, when installed: only the binaries, absent here, may be missing."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    for unit in (HUB_UNIT, ADB_UNIT):
        shutil.copy(unit, tmp_path / unit.name)
    out = subprocess.run(
        [analyze, "verify", *(str(tmp_path / u.name) for u in (ADB_UNIT, HUB_UNIT))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    complaints = [
        line
        for line in (out.stdout + out.stderr).splitlines()
        if line.strip() and not re.search(r"Command /opt/phonefleet/bin/\w+ is not executable", line)
    ]
    assert not complaints
