"""deploy/compose.hub.yml (a hub alone on another machine), compose.usb.yml and compose.tls.yml."""

from __future__ import annotations

import re
import ssl
from pathlib import Path
from typing import Any

import kombu
import pytest
import redis

from tests.deploy.helpers import (
    CENTRAL_SECRETS,
    COMPOSE_FILE,
    DEPLOY,
    HUB_SECRETS,
    REPO,
    MissingVariableError,
    interpolate,
    load_yaml,
    merge_compose,
    parse_cli,
    published_ports,
    read_env_file,
    service_environment,
    settings_from,
    strings_in,
    unknown_settings,
    variable_refs,
    volume_parts,
)

HUB_FILE = DEPLOY / "compose.hub.yml"
HUB_ENV_EXAMPLE = DEPLOY / "systemd" / "hub.env.example"


@pytest.fixture(scope="module")
def hub_raw() -> dict[str, Any]:
    data = load_yaml(HUB_FILE)
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def hub_env() -> dict[str, str]:
    """deploy/systemd/hub.env.example copied to deploy/hub.env and filled in."""
    return {**read_env_file(HUB_ENV_EXAMPLE), **HUB_SECRETS}


@pytest.fixture(scope="module")
def hub_file(hub_raw: dict[str, Any], hub_env: dict[str, str]) -> dict[str, Any]:
    result = interpolate(hub_raw, hub_env)
    assert isinstance(result, dict)
    return result


@pytest.fixture(scope="module")
def central_file() -> dict[str, Any]:
    result = interpolate(load_yaml(COMPOSE_FILE), {**read_env_file(DEPLOY / "env.example"), **CENTRAL_SECRETS})
    assert isinstance(result, dict)
    return result


def test_hub_file_runs_one_hub_worker(hub_file: dict[str, Any], hub_env: dict[str, str]) -> None:
    assert set(hub_file["services"]) == {"hub"}
    hub = hub_file["services"]["hub"]
    name, params = parse_cli(hub["command"])
    assert name == "worker"
    assert params["hub"] == hub_env["PHONEFLEET_HUB_NAME"] == service_environment(hub)["PHONEFLEET_HUB_NAME"]
    assert hub["restart"] == "unless-stopped"
    assert hub["network_mode"] == "host"
    assert hub["healthcheck"]["test"]


def test_hub_file_holds_broker_credentials_only(hub_raw: dict[str, Any], hub_file: dict[str, Any]) -> None:
    names = {ref.name for ref in variable_refs(hub_raw)}
    assert not names & {"PHONEFLEET_DATABASE_URL", "POSTGRES_PASSWORD"}
    assert not any(re.search(r"postgres|DATABASE_URL", text, re.IGNORECASE) for text in strings_in(hub_raw))
    env = service_environment(hub_file["services"]["hub"])
    assert "PHONEFLEET_DATABASE_URL" not in env
    assert env["PHONEFLEET_BROKER_URL"] == HUB_SECRETS["PHONEFLEET_BROKER_URL"]


def test_hub_file_requires_broker_and_name(hub_raw: dict[str, Any], hub_env: dict[str, str]) -> None:
    required = {ref.name for ref in variable_refs(hub_raw) if ref.required}
    assert required == {"PHONEFLEET_BROKER_URL", "PHONEFLEET_HUB_NAME"}
    for ref in variable_refs(hub_raw):
        if ref.name in required:
            assert ref.required and ref.arg
    # The example as shipped leaves both empty, so an unedited copy stops Compose.
    with pytest.raises(MissingVariableError):
        interpolate(hub_raw, read_env_file(HUB_ENV_EXAMPLE))
    for name in required:
        with pytest.raises(MissingVariableError, match=name):
            interpolate(hub_raw, {**hub_env, name: ""})


def test_hub_file_settings_are_real_valid_and_documented(
    hub_raw: dict[str, Any], hub_file: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = service_environment(hub_file["services"]["hub"])
    assert not unknown_settings(env)
    settings = settings_from(env, monkeypatch)
    assert settings.broker_url is not None and settings.broker_url.startswith("rediss://")
    assert settings.database_url is None
    undocumented = {ref.name for ref in variable_refs(hub_raw)} - set(read_env_file(HUB_ENV_EXAMPLE))
    assert not undocumented, "add them to deploy/systemd/hub.env.example"


def test_hub_file_builds_the_central_image(hub_file: dict[str, Any], central_file: dict[str, Any]) -> None:
    hub = hub_file["services"]["hub"]
    # Relative paths in a Compose file are relative to its own directory.
    assert (HUB_FILE.parent / hub["build"]["context"]).resolve() == REPO
    assert (REPO / hub["build"]["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
    assert hub["image"] == central_file["services"]["api"]["image"]


def test_hub_file_probe_and_mounts_match_the_central_hub(
    hub_file: dict[str, Any], central_file: dict[str, Any]
) -> None:
    remote, local = hub_file["services"]["hub"], central_file["services"]["hub"]
    assert remote["healthcheck"]["test"] == local["healthcheck"]["test"]
    root = service_environment(remote)["PHONEFLEET_MEDIA_ROOTS"]
    mounts = [volume_parts(v) for v in remote["volumes"]]
    assert (root, root, "ro") in mounts
    # The CA named by ssl_ca_certs in the broker URL is inside the container.
    ca = re.search(r"ssl_ca_certs=([^&]+)", service_environment(remote)["PHONEFLEET_BROKER_URL"])
    assert ca is not None
    assert any(Path(ca[1]).is_relative_to(target) for _, target, _ in mounts)


@pytest.mark.parametrize("base", ["central", "hub"])
def test_usb_overlay_passes_the_bus_through(
    base: str, central_file: dict[str, Any], hub_file: dict[str, Any], hub_env: dict[str, str]
) -> None:
    overlay = interpolate(load_yaml(DEPLOY / "compose.usb.yml"), {**read_env_file(DEPLOY / "env.example"), **hub_env})
    merged = merge_compose(central_file if base == "central" else hub_file, overlay)
    hub = merged["services"]["hub"]
    env = service_environment(hub)
    assert env["PHONEFLEET_ADB_HOST"] == "127.0.0.1"
    assert not unknown_settings(env)
    mounts = {target: (source, mode) for source, target, mode in (volume_parts(v) for v in hub["volumes"])}
    assert mounts["/dev/bus/usb"][0] == "/dev/bus/usb"
    assert "c 189:* rmw" in hub["device_cgroup_rules"]
    assert [int(gid) for gid in hub["group_add"]] == [46]
    # The adb keys of the container's adb server persist, in a directory the image gives its user.
    keys_volume = mounts["/home/phonefleet/.android"][0]
    assert keys_volume in merged["volumes"]
    assert "/home/phonefleet/.android" in (DEPLOY / "Dockerfile").read_text()
    # Everything else of the hub is unchanged.
    assert hub["command"] == (central_file if base == "central" else hub_file)["services"]["hub"]["command"]


def test_tls_overlay_adds_a_tls_port_to_redis(central_file: dict[str, Any]) -> None:
    raw = load_yaml(DEPLOY / "compose.tls.yml")
    for ref in variable_refs(raw):
        if ref.name == "REDIS_PASSWORD":
            assert ref.required
    overlay = interpolate(raw, {**read_env_file(DEPLOY / "env.example"), **CENTRAL_SECRETS})
    redis_service = merge_compose(central_file, overlay)["services"]["redis"]
    command = redis_service["command"]
    option = {command[i]: command[i + 1] for i in range(1, len(command) - 1) if command[i].startswith("--")}
    assert option["--requirepass"] == CENTRAL_SECRETS["REDIS_PASSWORD"]
    assert option["--maxmemory-policy"] == "noeviction"
    assert option["--tls-port"] == "6380"
    mounts = [volume_parts(v) for v in redis_service["volumes"]]
    tls_dir = next(target for _, target, mode in mounts if mode == "ro")
    for flag in ("--tls-cert-file", "--tls-key-file", "--tls-ca-cert-file"):
        assert Path(option[flag]).parent == Path(tls_dir), flag
    ports = published_ports(redis_service)
    assert ports[6379] == "127.0.0.1"
    assert 6380 in ports
    assert (DEPLOY / "tls" / ".gitignore").read_text().splitlines()[1:] == ["*", "!.gitignore"]


def _documented_broker_urls() -> list[str]:
    texts = [HUB_ENV_EXAMPLE.read_text(), (DEPLOY / "README.md").read_text()]
    return sorted({url for text in texts for url in re.findall(r"rediss://[^\s'\"`]+", text)})


def test_documented_tls_urls_verify_the_server() -> None:
    urls = _documented_broker_urls()
    assert urls
    for url in urls:
        # Celery's Redis transport (kombu): without ssl_cert_reqs it would accept any certificate.
        options = kombu.Connection(url).ssl
        assert isinstance(options, dict) and options["ssl_cert_reqs"] == ssl.CERT_REQUIRED, url
        # The Redis client of the cancellation keys (shared.broker.get_redis).
        pool = redis.Redis.from_url(url).connection_pool
        assert pool.connection_class is redis.SSLConnection, url
        assert pool.connection_kwargs["ssl_cert_reqs"] == "required", url
