"""docker-compose.yml: the central stack, checked against the real command line and settings."""

from __future__ import annotations

import re
from typing import Any

import pytest

from shared.queues import dispatcher_node, hub_node
from tests.deploy.helpers import (
    CENTRAL_SECRETS,
    COMPOSE_FILE,
    DEPLOY,
    REPO,
    SECRET_VARIABLES,
    MissingVariableError,
    interpolate,
    load_yaml,
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

# Compose service → the phonefleet subcommand it runs.
PHONEFLEET_SERVICES = {
    "migrate": "migrate",
    "api": "api",
    "dispatcher": "dispatcher",
    "flower": "flower",
    "hub": "worker",
}
LONG_RUNNING = {"postgres", "redis", "api", "dispatcher", "flower", "hub"}


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    data = load_yaml(COMPOSE_FILE)
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return read_env_file(DEPLOY / "env.example")


@pytest.fixture(scope="module")
def services(raw: dict[str, Any], env_example: dict[str, str]) -> dict[str, Any]:
    """The services as Compose sees them with deploy/env.example copied to .env and filled in."""
    result = interpolate(raw, {**env_example, **CENTRAL_SECRETS})["services"]
    assert isinstance(result, dict)
    return result


def test_the_stack_has_the_central_services_and_a_hub(services: dict[str, Any]) -> None:
    assert set(services) == {"postgres", "redis", *PHONEFLEET_SERVICES}


def test_phonefleet_services_run_the_one_image(services: dict[str, Any]) -> None:
    for name in PHONEFLEET_SERVICES:
        build = services[name]["build"]
        assert (REPO / build["context"]).resolve() == REPO
        assert (REPO / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
        assert services[name]["image"] == services["api"]["image"]


@pytest.mark.parametrize(("service", "subcommand"), sorted(PHONEFLEET_SERVICES.items()))
def test_commands_are_real_phonefleet_commands(services: dict[str, Any], service: str, subcommand: str) -> None:
    # The image's ENTRYPOINT is `phonefleet`; `command` is its arguments.
    assert "entrypoint" not in services[service]
    name, _ = parse_cli(services[service]["command"])
    assert name == subcommand


def test_the_command_parser_refuses_what_phonefleet_refuses() -> None:
    import typer

    with pytest.raises(typer.TyperException):
        parse_cli(["api", "--listen", "0.0.0.0"])
    with pytest.raises(typer.TyperException):
        parse_cli(["api", "--port", "http"])
    with pytest.raises(AssertionError):
        parse_cli(["hub"])


@pytest.mark.parametrize("service", sorted(PHONEFLEET_SERVICES))
def test_settings_are_real_and_valid(services: dict[str, Any], service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    env = service_environment(services[service])
    assert not unknown_settings(env), f"{service}: not settings of shared.settings.Settings"
    settings = settings_from(env, monkeypatch)
    assert settings.log_format == "json"
    assert not settings.allow_loopback_without_key


def test_every_phonefleet_variable_in_the_file_is_a_setting(raw: dict[str, Any]) -> None:
    names = {ref.name for ref in variable_refs(raw)}
    for service in raw["services"].values():
        names |= set(service_environment(service))
    assert not unknown_settings(names)


def test_only_central_services_get_the_database(services: dict[str, Any]) -> None:
    with_database = {n for n, s in services.items() if "PHONEFLEET_DATABASE_URL" in service_environment(s)}
    assert with_database == {"migrate", "api", "dispatcher"}
    with_broker = {n for n, s in services.items() if "PHONEFLEET_BROKER_URL" in service_environment(s)}
    assert with_broker == {"api", "dispatcher", "flower", "hub"}
    for name in ("hub", "flower"):
        assert not any("postgres" in value for value in service_environment(services[name]).values())


def test_required_secrets_fail_fast(raw: dict[str, Any], env_example: dict[str, str]) -> None:
    refs = [ref for ref in variable_refs(raw) if ref.name in SECRET_VARIABLES]
    assert {ref.name for ref in refs} == SECRET_VARIABLES
    for ref in refs:
        assert ref.required, f"${{{ref.name}}} must be written ${{{ref.name}:?message}}"
        assert ref.arg, f"${{{ref.name}:?}} without a message"
    # Copying env.example without filling it in stops Compose; so does any one secret left out.
    assert all(env_example[name] == "" for name in SECRET_VARIABLES)
    with pytest.raises(MissingVariableError):
        interpolate(raw, env_example)
    for name in SECRET_VARIABLES:
        with pytest.raises(MissingVariableError, match=name):
            interpolate(raw, {**env_example, **CENTRAL_SECRETS, name: ""})


def test_no_secret_is_written_in_the_file(raw: dict[str, Any]) -> None:
    for text in (t for t in strings_in(raw) if "://" in t):
        password = re.search(r"://[^/@]*:([^@/]*)@", text)
        if password:
            assert password[1].startswith("${") and ":?" in password[1], text
    assert raw["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")


def test_every_variable_is_documented_in_env_example(raw: dict[str, Any], env_example: dict[str, str]) -> None:
    undocumented = {ref.name for ref in variable_refs(raw)} - set(env_example)
    assert not undocumented, "add them to deploy/env.example"


def test_api_is_published_and_probed_on_50809(services: dict[str, Any]) -> None:
    api = services["api"]
    _, params = parse_cli(api["command"])
    assert params["host"] == "0.0.0.0"
    assert params["port"] == 50809
    assert 50809 in published_ports(api)
    probe = " ".join(api["healthcheck"]["test"])
    assert re.search(r"http://127\.0\.0\.1:50809/(healthz|readyz)\b", probe)


def test_flower_listens_everywhere_only_with_basic_auth(services: dict[str, Any]) -> None:
    flower = services["flower"]
    _, params = parse_cli(flower["command"])
    # `phonefleet flower` refuses 0.0.0.0 without basic auth: it must come with the address.
    assert params["address"] == "0.0.0.0"
    assert params["port"] == 5555
    assert re.fullmatch(r"[^:]+:.+", service_environment(flower)["PHONEFLEET_FLOWER_BASIC_AUTH"])
    assert 5555 in published_ports(flower)
    assert "http://127.0.0.1:5555/healthcheck" in " ".join(flower["healthcheck"]["test"])


def test_published_ports_stay_on_loopback_by_default(raw: dict[str, Any], services: dict[str, Any]) -> None:
    defaults = interpolate(raw, CENTRAL_SECRETS)["services"]
    for name in ("api", "flower", "redis"):
        assert set(published_ports(defaults[name]).values()) == {"127.0.0.1"}, name
    assert published_ports(services["postgres"]) == {}


def test_migrations_complete_before_api_and_dispatcher(services: dict[str, Any]) -> None:
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", "dispatcher"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["redis"]["condition"] == "service_healthy"


def test_dependencies_exist_wait_for_health_and_have_no_cycle(services: dict[str, Any]) -> None:
    graph = {name: dict(service.get("depends_on", {})) for name, service in services.items()}
    for name, depends in graph.items():
        for target, rule in depends.items():
            assert target in services, f"{name} depends on unknown {target}"
            if target in LONG_RUNNING:
                assert rule["condition"] == "service_healthy", f"{name} → {target}"
                assert "healthcheck" in services[target]
    done: set[str] = set()
    while len(done) < len(graph):
        ready = {n for n, d in graph.items() if n not in done and set(d) <= done}
        assert ready, f"cycle among {set(graph) - done}"
        done |= ready


def test_long_running_services_restart_and_report_health(services: dict[str, Any]) -> None:
    for name in LONG_RUNNING:
        assert services[name]["restart"] in ("unless-stopped", "always"), name
        assert services[name]["healthcheck"]["test"], name


def test_healthchecks_ping_the_processes_themselves(services: dict[str, Any]) -> None:
    # `phonefleet ping` asks the node each process names itself (shared.queues) to answer.
    assert services["dispatcher"]["healthcheck"]["test"] == ["CMD", "phonefleet", "ping", "--dispatcher"]
    hub = services["hub"]
    _, params = parse_cli(hub["command"])
    assert service_environment(hub)["PHONEFLEET_HUB_NAME"] == params["hub"]
    assert hub_node("NAME").startswith("hub.NAME@") and dispatcher_node().startswith("dispatcher@")
    assert 'phonefleet ping --hub "$PHONEFLEET_HUB_NAME"' in hub["healthcheck"]["test"][-1]


def test_hub_reaches_the_hosts_adb_server_and_redis(services: dict[str, Any]) -> None:
    hub = services["hub"]
    env = service_environment(hub)
    # Host network: loopback is the host's, where its adb server listens and Redis is published.
    assert hub["network_mode"] == "host"
    assert env["PHONEFLEET_ADB_HOST"] == "127.0.0.1"
    assert env["PHONEFLEET_ADB_PORT"] == "5037"
    broker_host = re.search(r"@([^:/]+):(\d+)", env["PHONEFLEET_BROKER_URL"])
    assert broker_host is not None
    assert broker_host[1] not in services, "a host-network container cannot resolve service names"
    assert int(broker_host[2]) in published_ports(services["redis"])
    assert published_ports(services["redis"])[int(broker_host[2])] == broker_host[1]
    assert "devices" not in hub, "the default reaches the host's adb server; USB passthrough is an overlay"


def test_media_roots_are_mounted_at_the_same_path(services: dict[str, Any]) -> None:
    hub = services["hub"]
    root = service_environment(hub)["PHONEFLEET_MEDIA_ROOTS"]
    assert (root, root, "ro") in [volume_parts(v) for v in hub["volumes"]]


def test_redis_requires_its_password_and_never_evicts(services: dict[str, Any]) -> None:
    command = services["redis"]["command"]
    assert command[command.index("--requirepass") + 1] == CENTRAL_SECRETS["REDIS_PASSWORD"]
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    assert command[command.index("--appendonly") + 1] == "yes"
    assert service_environment(services["redis"])["REDISCLI_AUTH"] == CENTRAL_SECRETS["REDIS_PASSWORD"]


def test_named_volumes_are_declared(raw: dict[str, Any], services: dict[str, Any]) -> None:
    declared = set(raw["volumes"])
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source, _, _ = volume_parts(volume)
            if not source.startswith(("/", ".")):
                assert source in declared, f"{name}: volume {source} not declared"
    assert {"postgres-data", "redis-data"} <= declared
