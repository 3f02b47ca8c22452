"""deploy/k8s: kustomize base and production overlay for the central services."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.helpers import DEPLOY, SETTING_NAMES, load_yaml, load_yaml_docs, parse_cli, unknown_settings

K8S = DEPLOY / "k8s"
BASE = K8S / "base"
PRODUCTION = K8S / "overlays" / "production"
SECRET_SETTINGS = {"PHONEFLEET_DATABASE_URL", "PHONEFLEET_BROKER_URL", "PHONEFLEET_FLOWER_BASIC_AUTH"}
# Workload → the phonefleet subcommand its container runs.
WORKLOADS = {
    ("Deployment", "phonefleet-api"): "api",
    ("Deployment", "phonefleet-dispatcher"): "dispatcher",
    ("Deployment", "phonefleet-flower"): "flower",
    ("Job", "phonefleet-migrate"): "migrate",
}


def _kustomization_dirs() -> list[Path]:
    return sorted(p.parent for p in K8S.rglob("kustomization.yaml"))


def _documents(directory: Path) -> list[dict[str, Any]]:
    """The resources a kustomization lists (not the kustomization or its patches)."""
    kustomization = load_yaml(directory / "kustomization.yaml")
    docs: list[dict[str, Any]] = []
    for entry in kustomization.get("resources", []):
        target = directory / entry
        docs += _documents(target) if target.is_dir() else load_yaml_docs(target)
    return docs


def _workloads(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for d in docs if d["kind"] in ("Deployment", "Job")}


def _containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    pod = workload["spec"]["template"]["spec"]
    return list(pod.get("initContainers", [])) + list(pod["containers"])


def _env_names(container: dict[str, Any]) -> set[str]:
    return {item["name"] for item in container.get("env", [])}


@pytest.fixture(scope="module")
def base_docs() -> list[dict[str, Any]]:
    return _documents(BASE)


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    """`kubectl kustomize overlays/production`, when kubectl is installed (it needs no cluster)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    out = subprocess.run(
        [kubectl, "kustomize", str(PRODUCTION)], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def test_every_yaml_file_loads() -> None:
    files = sorted(K8S.rglob("*.yaml"))
    assert len(files) >= 8
    for path in files:
        for doc in load_yaml_docs(path):
            assert isinstance(doc, dict) and "apiVersion" in doc and "kind" in doc, path


@pytest.mark.parametrize("directory", _kustomization_dirs(), ids=lambda p: str(p.relative_to(K8S)))
def test_kustomization_references_exist(directory: Path) -> None:
    kustomization = load_yaml(directory / "kustomization.yaml")
    assert kustomization["kind"] == "Kustomization"
    for entry in kustomization.get("resources", []):
        target = directory / entry
        assert target.exists(), entry
        if target.is_dir():
            assert (target / "kustomization.yaml").exists(), entry
    for patch in kustomization.get("patches", []):
        assert (directory / patch["path"]).is_file(), patch
    for generator in kustomization.get("configMapGenerator", []):
        names = {literal.split("=", 1)[0] for literal in generator.get("literals", [])}
        assert not unknown_settings(names)
    assert not kustomization.get("secretGenerator"), "secrets are created outside the repository"


def test_the_production_overlay_builds_on_the_base() -> None:
    overlay = load_yaml(PRODUCTION / "kustomization.yaml")
    assert "../../base" in overlay["resources"]
    assert overlay["namespace"] == "phonefleet"
    base_images = {c["image"] for w in _workloads(_documents(BASE)).values() for c in _containers(w)}
    assert {image["name"] for image in overlay["images"]} == base_images


def test_the_central_workloads_are_all_there(base_docs: list[dict[str, Any]]) -> None:
    assert set(_workloads(base_docs)) == set(WORKLOADS)
    services = {d["metadata"]["name"] for d in base_docs if d["kind"] == "Service"}
    assert services == {"phonefleet-api", "phonefleet-flower"}
    # PostgreSQL and Redis are external: no database or broker runs in these manifests.
    assert not [d for d in base_docs if d["kind"] == "StatefulSet"]
    assert not [d for d in base_docs if d["kind"] == "Secret"]


@pytest.mark.parametrize(("key", "subcommand"), sorted(WORKLOADS.items()))
def test_containers_run_real_phonefleet_commands(
    base_docs: list[dict[str, Any]], key: tuple[str, str], subcommand: str
) -> None:
    (container,) = _containers(_workloads(base_docs)[key])
    # `args` only: the image's ENTRYPOINT is phonefleet.
    assert "command" not in container
    name, _ = parse_cli(container["args"])
    assert name == subcommand


def test_secrets_come_by_reference_only(base_docs: list[dict[str, Any]]) -> None:
    for key, workload in _workloads(base_docs).items():
        for container in _containers(workload):
            assert not unknown_settings(_env_names(container)), key
            for item in container.get("env", []):
                if item["name"] in SECRET_SETTINGS:
                    ref = item["valueFrom"]["secretKeyRef"]
                    assert ref == {"name": "phonefleet-secrets", "key": item["name"]}, key
                    assert "value" not in item
                value = str(item.get("value", ""))
                assert not re.search(r"://[^/@\s]*:[^@\s]*@", value), f"{key}: a password in {item['name']}"
            for source in container.get("envFrom", []):
                assert set(source) <= {"configMapRef", "secretRef"}, key


def test_only_central_services_get_the_database(base_docs: list[dict[str, Any]]) -> None:
    workloads = _workloads(base_docs)
    with_database = {
        name for (_, name), w in workloads.items() if "PHONEFLEET_DATABASE_URL" in _env_names(_containers(w)[0])
    }
    assert with_database == {"phonefleet-api", "phonefleet-dispatcher", "phonefleet-migrate"}
    (flower,) = _containers(workloads[("Deployment", "phonefleet-flower")])
    assert _env_names(flower) == {"PHONEFLEET_BROKER_URL", "PHONEFLEET_FLOWER_BASIC_AUTH"}


def _probe_port(container: dict[str, Any], probe: dict[str, Any]) -> int:
    port = probe["httpGet"]["port"]
    by_name = {p["name"]: p["containerPort"] for p in container["ports"]}
    return int(by_name[port]) if isinstance(port, str) else int(port)


def test_api_probes_healthz_and_readyz_on_its_port(base_docs: list[dict[str, Any]]) -> None:
    (api,) = _containers(_workloads(base_docs)[("Deployment", "phonefleet-api")])
    _, params = parse_cli(api["args"])
    assert params["port"] == 50809 and params["host"] == "0.0.0.0"
    assert [p["containerPort"] for p in api["ports"]] == [50809]
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["startupProbe"]["httpGet"]["path"] == "/healthz"
    for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert _probe_port(api, api[kind]) == 50809, kind


def test_the_probed_routes_answer() -> None:
    # The probes must point at real routes of the api (no key, no database needed for /healthz).
    from fastapi.testclient import TestClient

    from api.app import create_app

    client = TestClient(create_app())
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code in (200, 503)


def test_flower_probes_its_healthcheck(base_docs: list[dict[str, Any]]) -> None:
    (flower,) = _containers(_workloads(base_docs)[("Deployment", "phonefleet-flower")])
    _, params = parse_cli(flower["args"])
    assert params["address"] == "0.0.0.0" and params["port"] == 5555
    for kind in ("livenessProbe", "readinessProbe"):
        assert flower[kind]["httpGet"]["path"] == "/healthcheck"
        assert _probe_port(flower, flower[kind]) == 5555


def test_services_select_their_pods_on_the_container_ports(base_docs: list[dict[str, Any]]) -> None:
    workloads = _workloads(base_docs)
    for service in (d for d in base_docs if d["kind"] == "Service"):
        deployment = workloads[("Deployment", service["metadata"]["name"])]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= labels.items()
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
        (container,) = _containers(deployment)
        names = {p["name"]: p["containerPort"] for p in container["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in names or port["targetPort"] in names.values()


def _restricted_violations(workload: dict[str, Any]) -> Iterator[str]:
    """What Kubernetes' "restricted" Pod Security Standard and our own rules would refuse."""
    pod = workload["spec"]["template"]["spec"]
    context = pod.get("securityContext", {})
    if context.get("runAsNonRoot") is not True:
        yield "runAsNonRoot"
    if context.get("runAsUser", 0) == 0:
        yield "runAsUser"
    if context.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        yield "seccompProfile"
    if pod.get("automountServiceAccountToken") is not False:
        yield "automountServiceAccountToken"
    for container in _containers(workload):
        own = container.get("securityContext", {})
        if own.get("allowPrivilegeEscalation") is not False:
            yield f"{container['name']}: allowPrivilegeEscalation"
        if own.get("capabilities", {}).get("drop") != ["ALL"]:
            yield f"{container['name']}: capabilities"
        if own.get("runAsUser") == 0 or own.get("privileged"):
            yield f"{container['name']}: root"
        resources = container.get("resources", {})
        for part in ("requests", "limits"):
            if set(resources.get(part, {})) != {"cpu", "memory"}:
                yield f"{container['name']}: resources.{part}"


def test_workloads_are_non_root_with_resources(base_docs: list[dict[str, Any]]) -> None:
    for key, workload in _workloads(base_docs).items():
        assert not list(_restricted_violations(workload)), key


def test_the_migration_job_runs_once_and_is_selectable(base_docs: list[dict[str, Any]]) -> None:
    job = _workloads(base_docs)[("Job", "phonefleet-migrate")]
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("Never", "OnFailure")
    assert job["spec"]["backoffLimit"] >= 1
    # deploy/README.md applies it alone first: kubectl apply -k ... -l app.kubernetes.io/component=migrate
    assert job["metadata"]["labels"]["app.kubernetes.io/component"] == "migrate"
    assert "-l app.kubernetes.io/component=migrate" in (DEPLOY / "README.md").read_text()


def test_no_literal_secrets_anywhere() -> None:
    for path in sorted(K8S.rglob("*.yaml")):
        # Passwords in URLs may only be placeholders (PASSWORD, ...), in comments at that.
        for password in re.findall(r"://[^/@\s:]*:([^@\s]+)@", path.read_text()):
            assert password == "..." or password.isupper(), path
        for doc in load_yaml_docs(path):
            assert doc["kind"] != "Secret", path


def test_rendered_overlay(rendered: list[dict[str, Any]]) -> None:
    kinds = {(d["kind"], d["metadata"]["name"]) for d in rendered}
    assert set(WORKLOADS) <= kinds
    assert ("Namespace", "phonefleet") in kinds
    config_maps = {d["metadata"]["name"]: d for d in rendered if d["kind"] == "ConfigMap"}
    (config_name,) = config_maps
    assert config_name.startswith("phonefleet-config-"), "a hashed name, so a change rolls the pods"
    assert set(config_maps[config_name]["data"]) <= SETTING_NAMES
    workloads = _workloads(rendered)
    replicas = {name: w["spec"].get("replicas") for (kind, name), w in workloads.items() if kind == "Deployment"}
    assert replicas["phonefleet-api"] >= 2 and replicas["phonefleet-dispatcher"] >= 2
    for key, workload in workloads.items():
        assert workload["metadata"]["namespace"] == "phonefleet"
        assert not list(_restricted_violations(workload)), key
        for container in _containers(workload):
            assert container["image"].startswith("registry.example.com/phonefleet:"), key
            assert container["envFrom"] == [{"configMapRef": {"name": config_name}}], key
            parse_cli(container["args"])
    namespace = next(d for d in rendered if d["kind"] == "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
