"""Running and reaching an adb server on a given port without ever touching the default one.

adbutils starts ``adb start-server`` by itself when it cannot reach a server, and that server listens
on 5037 unless told otherwise. Everything here checks the port first and starts servers with ``-P``,
so tests and simulators never collide with a developer's own adb.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import adbutils


def adb_binary() -> str:
    """The adb executable: ``ADBUTILS_ADB_PATH`` if set, else the one shipped in the adbutils wheel."""
    configured = os.environ.get("ADBUTILS_ADB_PATH")
    if configured:
        return configured
    # The wheel's binary, not whatever `adb` is on PATH: its version is the one we tested against.
    from adbutils import _utils

    binary = os.path.join(_utils._get_bin_dir(), "adb")
    return binary if os.path.isfile(binary) else str(adbutils.adb_path())


def server_alive(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """True if something accepts connections on the adb server port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def adb_client(port: int, host: str = "127.0.0.1", socket_timeout: float | None = None) -> adbutils.AdbClient:
    """An adbutils client for the server at ``host:port``; raises ``AdbError`` if none is running
    (rather than letting adbutils start one on the default port)."""
    if not server_alive(port, host):
        raise adbutils.AdbError(f"no adb server on {host}:{port}")
    return adbutils.AdbClient(host=host, port=port, socket_timeout=socket_timeout)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class AdbServer:
    """An adb server of our own on ``port`` (``adb -P PORT start-server`` / ``kill-server``)."""

    port: int = 0
    binary: str = field(default_factory=adb_binary)

    def __post_init__(self) -> None:
        if not self.port:
            self.port = free_port()

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["ANDROID_ADB_SERVER_PORT"] = str(self.port)
        env["ADBUTILS_ADB_PATH"] = self.binary
        return env

    def run(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Run the adb command line against this server (``adb -P PORT ARGS``)."""
        return subprocess.run(
            [self.binary, "-P", str(self.port), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self._env(),
            check=False,
        )

    def start(self, timeout: float = 20.0) -> AdbServer:
        """Start the server (no-op if already up) and wait until it answers."""
        if not server_alive(self.port):
            result = self.run("start-server", timeout=timeout)
            if result.returncode != 0:
                raise RuntimeError(f"adb start-server failed: {result.stderr.strip()}")
        deadline = time.monotonic() + timeout
        while not server_alive(self.port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"adb server did not come up on port {self.port}")
            time.sleep(0.05)
        return self

    def wrapper(self, directory: Path) -> Path:
        """An ``adb`` wrapper pinned to this server's port. Point ``ADBUTILS_ADB_PATH`` at it, and
        anything adbutils starts on its own (``adb start-server``) lands on this port, not 5037."""
        path = directory / f"adb-{self.port}"
        # A caller that names its own port (-P) keeps it; everything else goes to this server.
        path.write_text(
            "#!/bin/sh\n"
            f'case " $* " in *" -P "*) exec "{self.binary}" "$@" ;; esac\n'
            f'exec "{self.binary}" -P {self.port} "$@"\n'
        )
        path.chmod(0o755)
        return path

    def client(self, socket_timeout: float | None = None) -> adbutils.AdbClient:
        """An adbutils client bound to this server."""
        return adb_client(self.port, socket_timeout=socket_timeout)

    def kill(self) -> None:
        """``adb -P PORT kill-server``; quiet if it is already gone."""
        if server_alive(self.port):
            self.run("kill-server", timeout=10)
        deadline = time.monotonic() + 5
        while server_alive(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def __enter__(self) -> AdbServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()
