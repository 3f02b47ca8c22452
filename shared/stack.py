"""``phonefleet up``: the whole single-machine stack in one supervised process tree.

Embedded PostgreSQL and Redis start when no URLs are configured (data under ``data_dir``, kept across
restarts), migrations run, then every phonefleet process starts as a child. A child that dies is
restarted with backoff; Ctrl-C (or SIGTERM) stops the children first, then Redis, then PostgreSQL.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import create_engine, text

from shared.db.migrate import upgrade
from shared.embedded import EmbeddedPostgres, EmbeddedRedis
from shared.settings import Settings

if TYPE_CHECKING:
    from workers.adb.server import AdbServer

log = structlog.get_logger(__name__)

PHONEFLEET = str(Path(sys.executable).with_name("phonefleet"))
DEMO_SERIAL = "device_serial_1"  # the serial of the seed's curl example
# The start of an MP4 file (ftyp box) and some padding: enough for the phones and the media checks.
DEMO_VIDEO = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(64 * 1024)


@dataclass
class Child:
    """One supervised phonefleet process."""

    name: str
    args: list[str]
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0

    def start(self, env: dict[str, str], logs: Path) -> None:
        out = open(logs / f"{self.name}.log", "ab")  # noqa: SIM115 - owned by the child process
        # A session of its own: Ctrl-C reaches the supervisor only, which stops children in order.
        self.process = subprocess.Popen(
            [PHONEFLEET, *self.args], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        out.close()
        log.info("child_started", child=self.name, pid=self.process.pid, log=str(logs / f"{self.name}.log"))

    def interrupt(self) -> None:
        """Ask the child to stop, as Ctrl-C would (every phonefleet process handles SIGINT cleanly)."""
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)

    def wait_or_kill(self, deadline: float) -> None:
        process = self.process
        if process is None:
            return
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("child_killed", child=self.name)
            process.kill()
            process.wait()


@dataclass
class Stack:
    settings: Settings
    demo: bool = False
    phones: int = 10
    children: list[Child] = field(default_factory=list)
    _postgres: EmbeddedPostgres | None = None
    _redis: EmbeddedRedis | None = None
    _adb: AdbServer | None = None
    _stopping: bool = False

    def prepare(self) -> dict[str, str]:
        """Start embedded services as needed, migrate, and return the children's environment."""
        data = self.settings.data_dir
        data.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        database_url = self.settings.database_url
        if database_url is None:
            self._postgres = EmbeddedPostgres(data / "postgres")
            self._postgres.start()
            database_url = self._postgres.url_for("phonefleet")
            _ensure_database(self._postgres.url, "phonefleet")
        broker_url = self.settings.broker_url
        if broker_url is None:
            self._redis = EmbeddedRedis(data / "redis", persistent=True)
            broker_url = self._redis.start()
        log.info("migrating", database=_redact(database_url))
        upgrade(database_url)
        env["PHONEFLEET_DATABASE_URL"] = database_url
        env["PHONEFLEET_BROKER_URL"] = broker_url
        # TikMatrix clients send no key; on one machine, loopback callers are the operator.
        env.setdefault("PHONEFLEET_ALLOW_LOOPBACK_WITHOUT_KEY", "true")
        env.setdefault("PHONEFLEET_HUB_NAME", "local")
        env.setdefault("PHONEFLEET_WEBHOOK_SECRET", self._webhook_secret(data))
        return env

    @staticmethod
    def _webhook_secret(data: Path) -> str:
        """The single-machine mode's webhook secret (callers there send no key), made once and kept."""
        path = data / "webhook-secret"
        if not path.exists():
            path.write_text("whsec_" + secrets.token_urlsafe(24))
            path.chmod(0o600)
        return path.read_text().strip()

    def plan_children(self, env: dict[str, str]) -> None:
        self.children = [
            Child("api", ["api"]),
            Child("dispatcher", ["dispatcher"]),
            Child("hub", ["worker", "--hub", env["PHONEFLEET_HUB_NAME"]]),
            Child("flower", ["flower"]),
        ]
        if self.demo:
            args = ["simulate", "--phones", str(self.phones), "--ready-file", str(self._ready_file)]
            self.children.append(Child("simulator", [*args, "--first-serial", DEMO_SERIAL]))

    @property
    def _ready_file(self) -> Path:
        return self.settings.data_dir / "simulator.json"

    def _start_demo(self, env: dict[str, str]) -> None:
        """Simulated phones get an adb server of their own (a real one on 5037 is left alone), and a
        media folder with the seed example's video, which the seed names by its Windows path."""
        from workers.adb.server import AdbServer

        self._adb = AdbServer().start()
        env["PHONEFLEET_ADB_PORT"] = str(self._adb.port)
        self._ready_file.unlink(missing_ok=True)
        media = self.settings.data_dir / "demo-media"
        media.mkdir(parents=True, exist_ok=True)
        video = media / "video1.mp4"
        if not video.exists():
            video.write_bytes(DEMO_VIDEO)
        env.setdefault("PHONEFLEET_MEDIA_ROOTS", str(media))
        env.setdefault("PHONEFLEET_MEDIA_PATH_MAP", json.dumps({"C:/Videos": str(media)}))

    def _register_demo_accounts(self, database_url: str) -> bool:
        """Once the simulator is up, record its phones' accounts so usernames mode works in the demo."""
        if not self._ready_file.exists():
            return False
        summary = json.loads(self._ready_file.read_text())
        rows = [
            # A phone's phonefleet serial is its ro.serialno (it is attached over the network: "host:port").
            {"username": a["username"], "platform": a["platform"], "device": p["serialno"], "logined": 1}
            for p in summary["phones"]
            for a in p["accounts"]
        ]
        engine = create_engine(database_url)
        try:
            with engine.begin() as conn:
                for row in rows:
                    conn.execute(
                        text(
                            "INSERT INTO account (username, platform, device, logined) "
                            "VALUES (:username, :platform, :device, :logined) "
                            "ON CONFLICT (platform, username) DO UPDATE SET device = excluded.device"
                        ),
                        row,
                    )
        finally:
            engine.dispose()
        log.info(
            "demo_ready",
            phones=len(summary["phones"]),
            accounts=len(rows),
            example_serial=summary["phones"][0]["serialno"] if summary["phones"] else None,
            simulator_control=summary["control_url"],
        )
        return True

    def run(self) -> int:
        """Run until interrupted; returns the exit status."""
        logs = self.settings.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        try:
            env = self.prepare()
            if self.demo:
                self._start_demo(env)
            self.plan_children(env)
            for child in self.children:
                child.start(env, logs)
            log.info(
                "stack_up",
                api=f"http://{self.settings.api_host}:{self.settings.api_port}/api/v1/",
                docs=f"http://{self.settings.api_host}:{self.settings.api_port}/docs",
                logs=str(logs),
                hint="Ctrl-C stops everything; data stays in " + str(self.settings.data_dir),
            )
            demo_pending = self.demo
            while not self._stopping:
                self._supervise(env, logs)
                if demo_pending:
                    demo_pending = not self._register_demo_accounts(env["PHONEFLEET_DATABASE_URL"])
                time.sleep(0.5)
            return 0
        finally:
            self.shutdown()

    def _supervise(self, env: dict[str, str], logs: Path) -> None:
        now = time.monotonic()
        for child in self.children:
            process = child.process
            if process is None or process.poll() is None:
                continue
            if child.next_start == 0.0:
                child.restarts += 1
                delay = min(30.0, 0.5 * 2 ** min(child.restarts, 6))
                child.next_start = now + delay
                log.warning(
                    "child_exited",
                    child=child.name,
                    status=process.returncode,
                    restart_in_seconds=delay,
                    log=str(logs / f"{child.name}.log"),
                )
            elif now >= child.next_start:
                child.next_start = 0.0
                child.start(env, logs)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self._stopping:
            return
        log.info("stack_stopping", signal=signal.Signals(signum).name)
        self._stopping = True

    def shutdown(self) -> None:
        # All at once: hub workers finish their running step while the rest stops; then the services.
        for child in self.children:
            child.interrupt()
        deadline = time.monotonic() + 30
        for child in self.children:
            child.wait_or_kill(deadline)
        if self._adb is not None:
            self._adb.kill()
            self._adb = None
        if self._redis is not None:
            self._redis.stop()
            self._redis = None
        if self._postgres is not None:
            self._postgres.stop()
            self._postgres = None
        log.info("stack_stopped")


def _ensure_database(admin_url: str, name: str) -> None:
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
