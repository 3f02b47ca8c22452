"""The simulator's control API: JSON over HTTP on loopback, so tests in another process can steer it.

Routes (``{serial}`` is URL-encoded, e.g. ``127.0.0.1%3A40123``):

- ``GET  /health``                          → ``{"ok": true, "phones": N}``
- ``GET  /phones``                          → ``[PhoneInfo]``
- ``POST /phones``                          ``{"count", "accounts_per_app"}`` → ``[PhoneInfo]`` (started, attached)
- ``GET  /phones/{serial}``                 → ``PhoneInfo``
- ``POST /phones/{serial}/accounts``        ``{"username", "platform"?, "package"?, "current"?}``
- ``POST /phones/{serial}/accounts/remove`` ``{"username", "platform"?, "package"?}``
- ``POST /phones/{serial}/apps``            ``{"package", "platform", "accounts"?}`` (install a clone)
- ``POST /phones/{serial}/faults``          ``{"fault", ...params}``
- ``POST /phones/{serial}/faults/clear``    ``{"fault"?, ...params}`` (no fault: clear all)
- ``POST /phones/{serial}/upload_seconds``  ``{"seconds"}``
- ``GET  /phones/{serial}/posts``           → ``[PostRecord]``
- ``GET  /phones/{serial}/files?under=``    → ``[FileEntry]``
- ``GET  /phones/{serial}/file?path=``      → ``{"path", "data_b64"}``
- ``POST /phones/{serial}/file``            ``{"path", "data_b64"}``
- ``GET  /phones/{serial}/screen``          → ``{"package", "activity", "screen", "xml"}``

Errors answer ``{"error": "..."}`` with 400 (bad input) or 404 (unknown phone or route).
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from workers.simulator.fs import FsError
from workers.simulator.models import Fault

if TYPE_CHECKING:
    from workers.simulator.fleet import Fleet
    from workers.simulator.phone import SimulatedPhone


class ControlError(Exception):
    """A request the control API refuses; ``status`` is the HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _handle(fleet: Fleet, method: str, path: str, query: dict[str, str], body: dict[str, Any]) -> Any:
    parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/") if p]
    if parts == ["health"]:
        return {"ok": True, "phones": len(fleet.phones)}
    if not parts or parts[0] != "phones":
        raise ControlError(404, f"no route {method} {path}")
    if len(parts) == 1:
        if method == "GET":
            return [phone.info().to_json() for phone in fleet.phones]
        count = int(body.get("count", 1))
        if not 1 <= count <= 5000:
            raise ControlError(400, "count must be 1..5000")
        made = fleet.add_phones(count, accounts_per_app=int(body.get("accounts_per_app", 1)))
        return [phone.info().to_json() for phone in made]
    serial = parts[1]
    try:
        phone = fleet.phone(serial)
    except KeyError:
        raise ControlError(404, f"no phone {serial}") from None
    action = "/".join(parts[2:])
    return _phone_route(fleet, phone, method, action, query, body)


def _phone_route(
    fleet: Fleet, phone: SimulatedPhone, method: str, action: str, query: dict[str, str], body: dict[str, Any]
) -> Any:
    app_args = {"platform": body.get("platform"), "package": body.get("package")}
    if action == "" and method == "GET":
        return phone.info().to_json()
    if action == "accounts" and method == "POST":
        phone.add_account(str(body["username"]), current=bool(body.get("current", False)), **app_args)
        return phone.info().to_json()
    if action == "accounts/remove" and method == "POST":
        phone.remove_account(str(body["username"]), **app_args)
        return phone.info().to_json()
    if action == "apps" and method == "POST":
        platform = str(body.get("platform", "tiktok"))
        if platform not in ("tiktok", "instagram"):
            raise ControlError(400, "platform must be tiktok or instagram")
        phone.install_clone(str(body["package"]), platform, [str(a) for a in body.get("accounts", [])])
        return phone.info().to_json()
    if action == "faults" and method == "POST":
        params = {k: v for k, v in body.items() if k != "fault"}
        fault = Fault(str(body["fault"]))
        fleet.inject(phone.serial, fault, **params)
        return phone.info().to_json()
    if action == "faults/clear" and method == "POST":
        params = {k: v for k, v in body.items() if k != "fault"}
        fault_name = body.get("fault")
        fleet.clear(phone.serial, Fault(str(fault_name)) if fault_name else None, **params)
        return phone.info().to_json()
    if action == "upload_seconds" and method == "POST":
        phone.set_upload_seconds(float(body["seconds"]))
        return {"ok": True}
    if action == "posts" and method == "GET":
        return [post.to_json() for post in phone.posts()]
    if action == "files" and method == "GET":
        return [entry.to_json() for entry in phone.files(query.get("under", "/storage/emulated/0"))]
    if action == "file" and method == "GET":
        data = phone.read_file(query["path"])
        return {"path": query["path"], "data_b64": base64.b64encode(data).decode()}
    if action == "file" and method == "POST":
        phone.push_file(str(body["path"]), base64.b64decode(str(body["data_b64"]), validate=True))
        return {"ok": True}
    if action == "screen" and method == "GET":
        package, activity = phone.current_focus()
        screen = phone.screen_name(package) if package in phone.apps else package
        return {"package": package, "activity": activity, "screen": screen, "xml": phone.dump_xml()}
    raise ControlError(404, f"no route {method} /phones/{{serial}}/{action}")


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return  # the control API is chatty in tests; errors go back in the response instead

    def _respond(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _dispatch(self, method: str) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        length = int(self.headers.get("Content-Length") or 0)
        try:
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else {}
            if not isinstance(body, dict):
                raise ControlError(400, "body must be a JSON object")
            result = _handle(self.server.fleet, method, url.path, query, body)
        except ControlError as exc:
            self._respond(exc.status, {"error": str(exc)})
        except (KeyError, ValueError, TypeError, FsError, binascii.Error) as exc:
            self._respond(400, {"error": f"{type(exc).__name__}: {exc}"})
        else:
            self._respond(200, result)

    def do_GET(self) -> None:
        """Dispatch a GET."""
        self._dispatch("GET")

    def do_POST(self) -> None:
        """Dispatch a POST."""
        self._dispatch("POST")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fleet: Fleet, address: tuple[str, int]) -> None:
        super().__init__(address, _Handler)
        self.fleet = fleet


class ControlServer:
    """The control API for one fleet, served from a background thread."""

    def __init__(self, fleet: Fleet, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = _Server(fleet, (host, port))
        self.host = host
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="sim-control", daemon=True)

    def start(self) -> None:
        """Start answering requests."""
        self._thread.start()

    def stop(self) -> None:
        """Stop and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
