"""deploy/Dockerfile: multi-stage, non-root, no compilers at run time, `phonefleet` as entry point."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from dataclasses import dataclass, field

import pytest

from tests.deploy.helpers import DEPLOY, REPO, load_yaml_docs, unknown_settings

DOCKERFILE = DEPLOY / "Dockerfile"
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|clang|make|build-essential|[a-z0-9.+-]+-dev)\b")


@dataclass
class Instruction:
    keyword: str
    args: str


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [i.args for i in self.instructions if i.keyword == keyword]


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARGs and the stages, continuation lines joined and comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in lines:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = args.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
        elif not stages:
            assert keyword == "ARG", f"{keyword} before the first FROM"
            arg_name, _, default = args.partition("=")
            global_args[arg_name] = default
        else:
            stages[-1].instructions.append(Instruction(keyword, args))
    return global_args, stages


@pytest.fixture(scope="module")
def parsed() -> tuple[dict[str, str], list[Stage]]:
    return parse_dockerfile(DOCKERFILE.read_text())


def test_multi_stage_from_one_python_image(parsed: tuple[dict[str, str], list[Stage]]) -> None:
    global_args, stages = parsed
    assert len(stages) >= 2
    assert stages[0].name == "build"
    base = global_args["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.1[1-9]-slim(-\w+)?", base)
    assert {stage.base for stage in stages} == {"${PYTHON_IMAGE}"}


def test_the_build_stage_installs_phonefleet_into_the_venv_the_runtime_copies(
    parsed: tuple[dict[str, str], list[Stage]],
) -> None:
    _, stages = parsed
    build, final = stages[0], stages[-1]
    assert any("/opt/phonefleet/bin/pip install ." in run for run in build.all("RUN"))
    assert "COPY --from=build /opt/phonefleet /opt/phonefleet" in [f"COPY {c}" for c in final.all("COPY")]
    assert any(e.startswith("PATH=/opt/phonefleet/bin:") for env in final.all("ENV") for e in shlex.split(env))


def test_runtime_stage_has_no_build_tools(parsed: tuple[dict[str, str], list[Stage]]) -> None:
    _, stages = parsed
    final = stages[-1]
    for run in final.all("RUN"):
        assert "apt-get install" not in run and "apk add" not in run, run
        assert not BUILD_TOOLS.search(run), run
        assert "pip install" not in run, "install in the build stage; the runtime only copies the venv"
    # Only the build stage may bring compilers.
    assert any(BUILD_TOOLS.search(run) for run in stages[0].all("RUN"))


def test_runtime_runs_as_a_numeric_non_root_user(parsed: tuple[dict[str, str], list[Stage]]) -> None:
    _, stages = parsed
    final = stages[-1]
    users = final.all("USER")
    assert users, "the final stage must set USER"
    user, _, group = users[-1].partition(":")
    # Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
    assert user.isdigit() and int(user) != 0
    assert not group or (group.isdigit() and int(group) != 0)
    assert any(f"--uid {user}" in run for run in final.all("RUN"))
    # The same uid as the Kubernetes manifests.
    for path in sorted((DEPLOY / "k8s").rglob("*.yaml")):
        for doc in load_yaml_docs(path):
            pod = (doc.get("spec", {}).get("template", {}) or {}).get("spec", {})
            run_as = pod.get("securityContext", {}).get("runAsUser")
            if run_as is not None:
                assert run_as == int(user), path


def test_entrypoint_is_phonefleet(parsed: tuple[dict[str, str], list[Stage]]) -> None:
    _, stages = parsed
    final = stages[-1]
    assert json.loads(final.all("ENTRYPOINT")[-1]) == ["phonefleet"]
    assert json.loads(final.all("CMD")[-1]) == ["--help"]
    exposed = {int(port) for line in final.all("EXPOSE") for port in line.split()}
    assert exposed == {50809, 5555}


def test_environment_names_are_settings(parsed: tuple[dict[str, str], list[Stage]]) -> None:
    _, stages = parsed
    names = {item.split("=", 1)[0] for stage in stages for env in stage.all("ENV") for item in shlex.split(env)}
    assert "PHONEFLEET_DATA_DIR" in names
    assert not unknown_settings(names)


def test_directories_for_volumes_belong_to_the_user(parsed: tuple[dict[str, str], list[Stage]]) -> None:
    # Named volumes start as a copy of the image's directory, owner included.
    _, stages = parsed
    runs = " ".join(stages[-1].all("RUN"))
    assert re.search(r"install -d -o 10001 -g 10001 [^&]*/home/phonefleet/data /home/phonefleet/\.android", runs)


def test_copied_sources_exist_and_pass_the_dockerignore(parsed: tuple[dict[str, str], list[Stage]]) -> None:
    _, stages = parsed
    ignore = [
        line.strip()
        for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert ignore[0] == "**", "an allow-list: .venv and .env files must never reach the build"
    copies = [c for c in stages[0].all("COPY") if not c.startswith("--")]
    sources = [src for copy in copies for src in copy.split()[:-1]]
    assert set(sources) == {"pyproject.toml", "README.md", "api", "shared", "workers"}
    for source in sources:
        assert (REPO / source).exists(), source
        assert _included(source, ignore), f"{source} is excluded by Dockerfile.dockerignore"
    for secret in (".env", ".venv/bin/python", "tests/conftest.py", "deploy/tls/redis.key"):
        assert not _included(secret, ignore), secret


def _included(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; ``!`` re-includes; a directory covers its files."""
    included = True
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern[1:] if negate else pattern
        body = body.rstrip("/")
        parts = path.split("/")
        prefixes = {"/".join(parts[: i + 1]) for i in range(len(parts))}
        if any(fnmatch.fnmatch(p, body) or fnmatch.fnmatch(p, body.replace("**/", "")) for p in prefixes):
            included = negate
    return included
