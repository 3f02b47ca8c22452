"""The deployment docs (deploy/README.md, the README's section) name real commands, settings and files."""

from __future__ import annotations

import re

import pytest

from tests.deploy.helpers import (
    DEPLOY,
    REPO,
    parse_cli,
    phonefleet_invocations,
    shell_commands,
    unknown_settings,
)

DEPLOY_README = DEPLOY / "README.md"


def _readme_section() -> str:
    text = (REPO / "README.md").read_text()
    start = text.index("## Deploying across machines")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


DOCS = {"deploy/README.md": DEPLOY_README.read_text(), "README.md#deploying": _readme_section()}


def test_the_readme_points_at_the_details() -> None:
    section = DOCS["README.md#deploying"]
    assert "(deploy/README.md)" in section
    assert "docker compose up" in section


@pytest.mark.parametrize("doc", sorted(DOCS))
def test_phonefleet_commands_in_the_docs_are_real(doc: str) -> None:
    invocations = [args for command in shell_commands(DOCS[doc]) for args in phonefleet_invocations(command)]
    # Inline ones too: `phonefleet worker --hub NAME`.
    invocations += [span.split()[1:] for span in re.findall(r"`(phonefleet [^`]+)`", DOCS[doc])]
    assert invocations
    for args in invocations:
        parse_cli(args)


def test_the_invocation_finder_tells_users_and_namespaces_from_the_command() -> None:
    assert phonefleet_invocations("sudo -u phonefleet /opt/phonefleet/bin/adb devices") == []
    assert phonefleet_invocations("kubectl -n phonefleet delete job x") == []
    assert phonefleet_invocations("docker compose exec api phonefleet keys list && echo ok") == [["keys", "list"]]


@pytest.mark.parametrize("doc", sorted(DOCS))
def test_settings_named_in_the_docs_are_real(doc: str) -> None:
    assert not unknown_settings(set(re.findall(r"\bPHONEFLEET_[A-Z0-9_]+\b", DOCS[doc])))


@pytest.mark.parametrize("doc", sorted(DOCS))
def test_files_named_in_the_docs_exist(doc: str) -> None:
    base = DEPLOY if doc == "deploy/README.md" else REPO
    paths = set(re.findall(r"\]\(([^)#:]+)\)", DOCS[doc]))  # Markdown links
    paths |= set(re.findall(r"`((?:\.\./|deploy/|k8s/|systemd/)[\w./-]*)`", DOCS[doc]))
    paths |= set(re.findall(r"\b((?:deploy/)?[\w.-]+\.(?:yml|service))\b", DOCS[doc]))
    assert paths
    for path in paths - {"deploy/hub.env", "../.env"}:  # the copies the reader makes
        candidates = [base / path, REPO / path, DEPLOY / path, DEPLOY / "systemd" / path]
        assert any(c.exists() for c in candidates), path


def test_markdown_anchors_resolve() -> None:
    text = DOCS["deploy/README.md"]
    headings = {
        re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-")
        for h in re.findall(r"^#+ (.+)$", text, flags=re.MULTILINE)
    }
    for anchor in re.findall(r"\]\(#([^)]+)\)", text):
        assert anchor in headings, anchor
