"""A typed client for the simulator's control API (see :mod:`workers.simulator.control`)."""

from __future__ import annotations

import base64
import time
import urllib.parse
from typing import Any

import httpx

from workers.simulator.models import Fault, FileEntry, PhoneInfo, PostRecord


class SimulatorError(Exception):
    """The control API refused a request."""


class SimulatorClient:
    """Steer a running simulator from any process: ``SimulatorClient("http://127.0.0.1:PORT")``."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout)

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self._http.close()

    def __enter__(self) -> SimulatorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(
        self, method: str, route: str, body: dict[str, Any] | None = None, query: dict[str, str] | None = None
    ) -> Any:
        response = self._http.request(method, route, json=body, params=query)
        payload = response.json()
        if response.status_code != 200:
            raise SimulatorError(f"{method} {route}: {response.status_code} {payload.get('error')}")
        return payload

    @staticmethod
    def _p(serial: str) -> str:
        return "/phones/" + urllib.parse.quote(serial, safe="")

    # ---------------------------------------------------------------- fleet
    def health(self) -> dict[str, Any]:
        """``{"ok": true, "phones": N}``."""
        result: dict[str, Any] = self._call("GET", "/health")
        return result

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Poll until the control server answers (for a simulator just started in another process)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.health()
                return
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def phones(self) -> list[PhoneInfo]:
        """Every phone of the fleet."""
        return [PhoneInfo.from_json(raw) for raw in self._call("GET", "/phones")]

    def serials(self) -> list[str]:
        """Serials of every phone."""
        return [phone.serial for phone in self.phones()]

    def add_phones(self, count: int, accounts_per_app: int = 1) -> list[PhoneInfo]:
        """Start and attach more phones."""
        raw = self._call("POST", "/phones", {"count": count, "accounts_per_app": accounts_per_app})
        return [PhoneInfo.from_json(item) for item in raw]

    # ---------------------------------------------------------------- one phone
    def phone(self, serial: str) -> PhoneInfo:
        """One phone's state."""
        return PhoneInfo.from_json(self._call("GET", self._p(serial)))

    def add_account(
        self,
        serial: str,
        username: str,
        *,
        platform: str | None = None,
        package: str | None = None,
        current: bool = False,
    ) -> PhoneInfo:
        """Log an account into an app (TikTok unless ``platform``/``package`` says otherwise)."""
        body = {"username": username, "platform": platform, "package": package, "current": current}
        return PhoneInfo.from_json(self._call("POST", self._p(serial) + "/accounts", body))

    def remove_account(
        self, serial: str, username: str, *, platform: str | None = None, package: str | None = None
    ) -> PhoneInfo:
        """Log an account out."""
        body = {"username": username, "platform": platform, "package": package}
        return PhoneInfo.from_json(self._call("POST", self._p(serial) + "/accounts/remove", body))

    def install_clone(self, serial: str, package: str, platform: str, accounts: list[str] | None = None) -> PhoneInfo:
        """Install a clone of TikTok/Instagram under another package name."""
        body = {"package": package, "platform": platform, "accounts": accounts or []}
        return PhoneInfo.from_json(self._call("POST", self._p(serial) + "/apps", body))

    def inject(self, serial: str, fault: Fault | str, **params: Any) -> PhoneInfo:
        """Set a fault (``unplug``, ``hang``, ``slow`` (bytes_per_second=), ``crash``, ``login_wall``,
        ``banned`` (account=); app faults take ``platform=`` or ``package=``)."""
        body = {"fault": str(Fault(fault)), **params}
        return PhoneInfo.from_json(self._call("POST", self._p(serial) + "/faults", body))

    def clear(self, serial: str, fault: Fault | str | None = None, **params: Any) -> PhoneInfo:
        """Clear one fault, or every fault when ``fault`` is None (clearing ``unplug`` replugs)."""
        body = {"fault": str(Fault(fault)) if fault else None, **params}
        return PhoneInfo.from_json(self._call("POST", self._p(serial) + "/faults/clear", body))

    def set_upload_seconds(self, serial: str, seconds: float) -> None:
        """How long the phone's apps take to upload a post."""
        self._call("POST", self._p(serial) + "/upload_seconds", {"seconds": seconds})

    def posts(self, serial: str) -> list[PostRecord]:
        """Posts published from the phone, oldest first."""
        return [PostRecord.from_json(raw) for raw in self._call("GET", self._p(serial) + "/posts")]

    def files(self, serial: str, under: str = "/sdcard") -> list[FileEntry]:
        """Regular files under a folder of the phone."""
        return [
            FileEntry.from_json(raw) for raw in self._call("GET", self._p(serial) + "/files", query={"under": under})
        ]

    def read_file(self, serial: str, path: str) -> bytes:
        """A file's bytes."""
        raw = self._call("GET", self._p(serial) + "/file", query={"path": path})
        return base64.b64decode(raw["data_b64"])

    def write_file(self, serial: str, path: str, data: bytes) -> None:
        """Put a file on the phone (parent folders are created)."""
        self._call("POST", self._p(serial) + "/file", {"path": path, "data_b64": base64.b64encode(data).decode()})

    def screen(self, serial: str) -> dict[str, str]:
        """``{"package", "activity", "screen", "xml"}`` of what the phone shows."""
        result: dict[str, str] = self._call("GET", self._p(serial) + "/screen")
        return result
