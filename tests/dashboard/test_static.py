"""The dashboard's files as the api serves them (no browser needed)."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from api.dashboard.endpoints import STATIC

IMPORT = re.compile(r"""^import .*? from "(\./[\w./-]+)";$|^import "(\./[\w./-]+)";$""", re.MULTILINE | re.DOTALL)


def client() -> TestClient:
    return TestClient(create_app())


def test_the_page_and_its_safety_headers() -> None:
    response = client().get("/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert response.headers["cache-control"] == "no-cache"
    assert '<script type="module" src="/ui/js/main.js">' in response.text


def test_every_module_and_its_imports_are_served() -> None:
    http = client()
    modules = sorted(p.relative_to(STATIC).as_posix() for p in STATIC.rglob("*.js"))
    assert "js/main.js" in modules
    for module in modules:
        response = http.get(f"/ui/{module}")
        assert response.status_code == 200, module
        assert "javascript" in response.headers["content-type"], module
        assert response.headers["x-content-type-options"] == "nosniff"
        for match in IMPORT.finditer(response.text):
            target = (Path(module).parent / (match.group(1) or match.group(2))).as_posix()
            assert http.get(f"/ui/{target}").status_code == 200, f"{module} imports {target}"
    assert http.get("/ui/app.css").headers["content-type"].startswith("text/css")


def test_a_missing_file_is_the_usual_envelope() -> None:
    payload = client().get("/ui/js/nope.js").json()
    assert payload["code"] == 40401


def test_no_inline_script_and_no_html_from_data() -> None:
    """The page's policy allows no inline script; the scripts never build HTML from strings."""
    assert "<script>" not in (STATIC / "index.html").read_text()
    for path in STATIC.rglob("*.js"):
        assert "innerHTML" not in path.read_text(), path.name
