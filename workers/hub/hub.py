"""A hub: the phones attached to this machine's adb server, and the tasks running on them.

Threads: the adb device tracker (adds and drops this worker's ``device.<serial>`` queues as phones come
and go), the reporter tick (heartbeats, device list, buffered log lines), and the cancel listener
(Redis pub/sub, with a key poll as backstop). Celery's thread pool runs :meth:`Hub.run`, one call per
dispatched attempt.
"""

from __future__ import annotations

import base64
import json
import math
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

import adbutils
import structlog
from adbutils.errors import AdbError, AdbTimeout
from celery import Celery

from shared import metrics
from shared.broker import StallWatchdog, get_redis
from shared.dispatcher.cancel import cancel_channel, cancel_key
from shared.failures import FailureKind
from shared.messages import AttemptRef, DeviceInfo
from shared.queues import CLAIM_KEY_PREFIX, ack_key, alive_key, device_queue, ended_key
from shared.settings import Settings
from workers.adb.server import AdbServer, server_alive
from workers.hub.context import OFFLINE_REMARK, HubContext, RunningTask, ShutdownInterrupt
from workers.hub.reporter import Reporter
from workers.scripts import run_script
from workers.scripts.base import HubEnvironment, ScriptFailure, TaskSpec, TaskStopped

log = structlog.get_logger(__name__)

DEVICE_REPORT_SECONDS = 10.0
SERIAL_PATTERN = re.compile(r"[!-~]{1,128}")
# Serials that cheap phones share; useless as an identity.
PLACEHOLDER_SERIALS = frozenset({"0123456789ABCDEF", "UNKNOWN", "0000000000000000", "1234567890ABCDEF"})
CANCEL_POLL_SECONDS = 1.0
# The first re-send waits long enough for a busy dispatcher to catch up (heartbeats keep the phone's
# lease alive meanwhile); a report lost with the broker is recovered within this much.
OUTBOX_RESEND_SECONDS = 30.0
ENDING_PER_HEARTBEAT = 500
OUTBOX_RESEND_MAX_SECONDS = 300.0
ENDED_TTL_SECONDS = 24 * 3600
OUTBOX_LIMIT = 100_000
CLAIM_TTL_SECONDS = 7 * 24 * 3600
SCREENSHOT_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Outcome:
    outcome: str
    remark: str
    failure_kind: FailureKind | None = None


class Hub:
    """One machine's phones and what runs on them."""

    def __init__(self, name: str, settings: Settings, app: Celery, hostname: str) -> None:
        self.name = name
        self.settings = settings
        self.app = app
        self.hostname = hostname
        self.reporter = Reporter(app, name)
        self.adb = adbutils.AdbClient(host=settings.adb_host, port=settings.adb_port)
        self.env = HubEnvironment(
            media_roots=tuple(settings.media_roots),
            media_cache_dir=settings.media_cache(),
            download_max_bytes=settings.download_max_bytes,
            media_cache_max_bytes=settings.media_cache_max_bytes,
            path_map=tuple(settings.media_path_map.items()),
        )
        # A phone's phonefleet serial is its adb serial, except on network transports ("host:port"),
        # where it is the phone's own ro.serialno: the same phone keeps its identity over USB and Wi-Fi.
        self.transports: dict[str, str] = {}  # adb serial → adb state
        self.identities: dict[str, str] = {}  # adb serial → phonefleet serial
        self.attached: dict[str, str] = {}  # phonefleet serial → adb state
        self.adb_serials: dict[str, str] = {}  # phonefleet serial → adb serial
        self.consuming: set[str] = set()
        self.running: dict[str, RunningTask] = {}  # serial → its running attempt
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.consumer: Any = None  # Celery's consumer, once the worker is ready
        # Ends of attempts not yet acknowledged by the dispatcher: re-sent until they are, so that a
        # report lost with the broker (or the dispatcher) is never lost for good.
        # (task_id, attempt) → (when to re-send, the wait after that, the report).
        self.outbox: dict[tuple[int, int], tuple[float, float, dict[str, Any]]] = {}
        self._threads: list[threading.Thread] = []
        self._last_device_report = 0.0
        # The outbox is also kept on disk (saved every heartbeat when it changed, and at exit), so the
        # ends of attempts survive a restart of this process (its stall watchdog, a deploy).
        self.outbox_path = settings.data_dir / "hubs" / f"{name}-outbox.json"
        self._outbox_version = 0
        self._outbox_saved = 0

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self, consumer: Any) -> None:
        """Start the background threads once Celery's consumer runs (queues are added through it)."""
        self.consumer = consumer
        StallWatchdog(f"hub:{self.name}", self._consumer_stalled).start()
        metrics.serve(self.settings.metrics_host, self.settings.hub_metrics_port, f"hub:{self.name}")
        if self.settings.adb_host in ("127.0.0.1", "localhost") and not server_alive(self.settings.adb_port):
            # As `adb devices` would: start the local server (it outlives us, like any adb server).
            AdbServer(self.settings.adb_port).start()
            log.info("adb_server_started", port=self.settings.adb_port)
        self._restore_outbox()
        for target, name in (
            (self._track_devices, "adb-tracker"),
            (self._tick, "reporter-tick"),
            (self._listen_cancels, "cancel-listener"),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("hub_started", hub=self.name, adb=f"{self.settings.adb_host}:{self.settings.adb_port}")

    def stop(self) -> None:
        """Stop taking work; interrupt scripts still running after the grace period."""
        if self.stopping.is_set():
            return
        self.stopping.set()
        grace = self.settings.shutdown_grace_seconds

        def interrupt_late() -> None:
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline:
                with self.lock:
                    if not self.running:
                        return
                time.sleep(0.1)
            with self.lock:
                late = list(self.running.values())
            for running in late:
                log.warning("interrupted_by_shutdown", task_id=running.spec.task_id, grace_seconds=grace)
                running.stop("shutdown")

        threading.Thread(target=interrupt_late, name="shutdown-grace", daemon=True).start()

    # --- devices --------------------------------------------------------------------------------

    def _track_devices(self) -> None:
        while not self.stopping.is_set():
            try:
                current = {d.serial: d.state for d in self.adb.list()}
                self._sync_devices(current)
                tracker = adbutils.AdbClient(host=self.settings.adb_host, port=self.settings.adb_port)
                for event in tracker.track_devices():
                    if self.stopping.is_set():
                        return
                    if event.present:
                        current[event.serial] = event.status
                    else:
                        current.pop(event.serial, None)
                    self._sync_devices(dict(current))
            except (AdbError, OSError) as exc:
                log.warning("adb_server_unreachable", error=str(exc), retry_in_seconds=1)
                self._sync_devices({})
                self.stopping.wait(1.0)

    def _identify(self, adb_serial: str) -> str:
        """The phonefleet serial of the phone behind an adb transport."""
        if ":" not in adb_serial:
            return adb_serial
        try:
            value = str(self.adb.device(adb_serial).shell("getprop ro.serialno", timeout=5)).strip()
        except (AdbError, AdbTimeout, OSError):
            return adb_serial
        if not SERIAL_PATTERN.fullmatch(value) or value.upper() in PLACEHOLDER_SERIALS:
            return adb_serial
        return value

    def _sync_devices(self, transports: dict[str, str]) -> None:
        """Make consumers and running tasks agree with the phones adb reports."""
        unknown = [s for s, state in transports.items() if state == "device" and s not in self.identities]
        found = {s: self._identify(s) for s in unknown}
        with self.lock:
            if transports == self.transports and not found and self._last_device_report:
                return
            self.transports = dict(transports)
            self.identities = {s: i for s, i in {**self.identities, **found}.items() if s in transports}
            attached: dict[str, str] = {}
            adb_serials: dict[str, str] = {}
            # USB transports first: a phone also reachable over the network is the same phone.
            for adb_serial, state in sorted(transports.items(), key=lambda kv: (":" in kv[0], kv[0])):
                serial = self.identities.get(adb_serial, adb_serial)
                if serial in attached:
                    log.warning("same_phone_on_two_transports", serial=serial, ignored=adb_serial)
                    continue
                attached[serial] = state
                adb_serials[serial] = adb_serial
            self.attached, self.adb_serials = attached, adb_serials
            ready = {s for s, state in attached.items() if state == "device"}
            add, drop = ready - self.consuming, self.consuming - ready
            self.consuming = ready
            lost = [rt for serial, rt in self.running.items() if serial not in ready]
        for running in lost:
            log.warning("device_lost_mid_task", serial=running.spec.serial, task_id=running.spec.task_id)
            running.stop("offline")
        consumer = self.consumer
        # Queue changes run in the consumer's own thread (call_soon): no broadcast through the broker,
        # so they still work after Redis lost its bindings.
        for serial in sorted(drop):
            consumer.call_soon(consumer.cancel_task_queue, device_queue(serial))
            log.info("device_detached", serial=serial)
        for serial in sorted(add):
            consumer.call_soon(consumer.add_task_queue, device_queue(serial))
            log.info("device_attached", serial=serial)
        self.report_devices()

    def report_devices(self) -> None:
        models: dict[str, str] = {}
        try:
            for info in self.adb.list(extended=True):
                if info.tags.get("model"):
                    models[info.serial] = info.tags["model"]
        except (AdbError, OSError):
            pass
        with self.lock:
            states = dict(self.attached)
            adb_serials = dict(self.adb_serials)
        for state in {*states.values(), "device", "offline"}:
            metrics.HUB_DEVICES.labels(state).set(sum(1 for s in states.values() if s == state))
        devices = [
            DeviceInfo(
                serial=s,
                state=st,
                model=models.get(adb_serials.get(s, s)),
                properties={"adb_serial": adb_serials.get(s, s)},
            )
            for s, st in sorted(states.items())
        ]
        self.reporter.devices(devices)
        self._last_device_report = time.monotonic()

    # --- periodic reports -----------------------------------------------------------------------

    def _tick(self) -> None:
        interval = self.settings.heartbeat_interval_seconds
        while not self.stopping.wait(interval):
            try:
                with self.lock:
                    running = list(self.running.values())
                    ending = [
                        AttemptRef(task_id=task_id, attempt=attempt, serial=str(report["serial"]))
                        for (task_id, attempt), (_, _, report) in self.outbox.items()
                    ][:ENDING_PER_HEARTBEAT]
                if running or ending:
                    self._keep_alive(
                        [(r.spec.task_id, r.spec.attempt) for r in running] + [(e.task_id, e.attempt) for e in ending]
                    )
                    self.reporter.heartbeat([r.ref for r in running], ending)
                self._resend_unacknowledged()
                self.save_outbox()
                for task in running:
                    lines = task.take_lines()
                    if lines:
                        self.reporter.logs(task.spec.task_id, task.spec.attempt, task.spec.serial, lines)
                if time.monotonic() - self._last_device_report >= DEVICE_REPORT_SECONDS:
                    self.report_devices()
            except Exception:
                log.exception("tick_failed")

    def _consumer_stalled(self) -> bool:
        """True if a message waits in the queue of an attached phone that runs nothing."""
        with self.lock:
            idle = sorted(s for s in self.consuming if s not in self.running)
        if not idle:
            return False
        pipe = get_redis().pipeline(transaction=False)
        for serial in idle:
            pipe.llen(device_queue(serial))
        return any(int(length) > 0 for length in pipe.execute())

    def _record_end(self, task_id: int, attempt: int, report: dict[str, Any]) -> None:
        """Write the end beside the queued report (see shared.queues.ended_key); the screenshot only
        travels in the report."""
        light = {k: v for k, v in report.items() if k != "screenshot_png_b64"}
        try:
            get_redis().set(ended_key(task_id, attempt), json.dumps(light), ex=ENDED_TTL_SECONDS)
        except Exception as exc:  # the report and its re-sends still carry it
            log.warning("end_key_failed", task_id=task_id, attempt=attempt, error=str(exc))

    def _alive_ttl(self) -> int:
        # Written straight to Redis, so it goes stale soon after the hub dies; long enough to ride out
        # a hub busy for a few heartbeats.
        interval, timeout = self.settings.heartbeat_interval_seconds, self.settings.heartbeat_timeout_seconds
        return max(1, math.ceil(max(3 * interval, timeout / 2)))

    def _keep_alive(self, attempts: list[tuple[int, int]]) -> None:
        """Refresh the alive keys of these attempts (see shared.queues.alive_key)."""
        ttl = self._alive_ttl()
        try:
            pipe = get_redis().pipeline(transaction=False)
            for task_id, attempt in attempts:
                pipe.set(alive_key(task_id, attempt), self.name, ex=ttl)
            pipe.execute()
        except Exception as exc:  # the heartbeat reports still carry the news
            log.warning("alive_keys_failed", error=str(exc))

    def _resend_unacknowledged(self) -> None:
        """Re-send end reports the dispatcher has not acknowledged, each less often than the last time
        (5 s, 10 s, 20 s … 5 min), so that a dispatcher working through a backlog is not buried by it."""
        with self.lock:
            pending = list(self.outbox.items())
        if not pending:
            return
        acked = get_redis().mget([ack_key(task_id, attempt) for (task_id, attempt), _ in pending])
        now = time.monotonic()
        for (key, (due, wait, report)), ack in zip(pending, acked, strict=True):
            if ack is not None:
                with self.lock:
                    if self.outbox.pop(key, None) is not None:
                        self._outbox_version += 1
            elif now >= due:
                log.info("finished_report_resent", task_id=key[0], attempt=key[1], next_in_seconds=wait * 2)
                self.reporter.finished_raw(report)
                with self.lock:
                    if key in self.outbox:
                        self.outbox[key] = (now + wait, min(wait * 2, OUTBOX_RESEND_MAX_SECONDS), report)

    def save_outbox(self) -> None:
        """Write the unacknowledged ends to disk if they changed since the last save."""
        with self.lock:
            if self._outbox_version == self._outbox_saved:
                return
            version = self._outbox_version
            reports = [report for _, _, report in self.outbox.values()]
        try:
            self.outbox_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.outbox_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(reports))
            tmp.replace(self.outbox_path)
        except OSError as exc:  # a read-only disk costs the restart safety net, nothing else
            log.warning("outbox_save_failed", path=str(self.outbox_path), error=str(exc))
            return
        with self.lock:
            self._outbox_saved = version

    def _restore_outbox(self) -> None:
        """Take back the ends the previous run of this hub had not seen acknowledged: write their end
        keys again (Redis may have lost them) and send them now; the dispatcher ignores any it has."""
        try:
            reports = json.loads(self.outbox_path.read_text())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.warning("outbox_restore_failed", path=str(self.outbox_path), error=str(exc))
            return
        now = time.monotonic()
        with self.lock:
            for report in reports:
                key = (int(report["task_id"]), int(report["attempt"]))
                self.outbox[key] = (now + OUTBOX_RESEND_SECONDS, OUTBOX_RESEND_SECONDS * 2, report)
            self._outbox_version += 1
        for report in reports:
            self._record_end(int(report["task_id"]), int(report["attempt"]), report)
            self.reporter.finished_raw(report)
        log.info("outbox_restored", reports=len(reports), path=str(self.outbox_path))

    # --- cancellation ---------------------------------------------------------------------------

    def _listen_cancels(self) -> None:
        while not self.stopping.is_set():
            try:
                client = get_redis()
                pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
                pubsub.subscribe(cancel_channel(client))
                last_poll = 0.0
                while not self.stopping.is_set():
                    message = pubsub.get_message(timeout=0.2)
                    if message is not None:
                        task_id, _, attempt = message["data"].decode().partition(":")
                        self._cancel(int(task_id), int(attempt))
                    if time.monotonic() - last_poll >= CANCEL_POLL_SECONDS:
                        self._poll_cancel_keys()
                        last_poll = time.monotonic()
            except Exception as exc:
                log.warning("cancel_listener_reconnecting", error=str(exc))
                self.stopping.wait(1.0)

    def _cancel(self, task_id: int, attempt: int) -> None:
        with self.lock:
            targets = [r for r in self.running.values() if r.spec.task_id == task_id and r.spec.attempt <= attempt]
        for running in targets:
            log.info("stop_received", task_id=task_id, attempt=running.spec.attempt, serial=running.spec.serial)
            running.stop("stopped")

    def _poll_cancel_keys(self) -> None:
        with self.lock:
            running = list(self.running.values())
        if not running:
            return
        values = get_redis().mget([cancel_key(r.spec.task_id) for r in running])
        for task, value in zip(running, values, strict=True):
            if value is not None and int(value) >= task.spec.attempt:
                task.stop("stopped")

    # --- running one attempt --------------------------------------------------------------------

    def run(self, order: dict[str, Any]) -> None:
        """Run one dispatched attempt on its phone, unless it must be refused."""
        spec = TaskSpec(
            task_id=int(order["task_id"]),
            attempt=int(order["attempt"]),
            serial=str(order["serial"]),
            script_name=str(order["script_name"]),
            script_config=dict(order.get("script_config") or {}),
            platform=str(order.get("platform") or "tiktok"),
            username=order.get("username"),
            packagename=order.get("packagename"),
        )
        bound = log.bind(task_id=spec.task_id, attempt=spec.attempt, serial=spec.serial)
        with self.lock:
            state = self.attached.get(spec.serial)
            adb_serial = self.adb_serials.get(spec.serial, spec.serial)
        if state != "device":
            bound.info("refused_not_attached", state=state)
            metrics.HUB_REFUSED.labels("not_attached").inc()
            self.reporter.refused(spec.task_id, spec.attempt, spec.serial, "not_attached", f"state {state}")
            return
        # One round trip: was it stopped on its way here, is this its first delivery (the claim), and
        # the first alive key (an attempt refused below leaves a key that expires unread).
        redis = get_redis()
        claim = f"{CLAIM_KEY_PREFIX}{spec.task_id}:{spec.attempt}"
        pipe = redis.pipeline(transaction=False)
        pipe.get(cancel_key(spec.task_id))
        pipe.set(claim, self.name, nx=True, ex=CLAIM_TTL_SECONDS)
        pipe.set(alive_key(spec.task_id, spec.attempt), self.name, ex=self._alive_ttl())
        cancelled, claimed, _ = pipe.execute()
        if cancelled is not None and int(cancelled) >= spec.attempt:
            bound.info("refused_cancelled")
            metrics.HUB_REFUSED.labels("cancelled").inc()
            self.reporter.refused(spec.task_id, spec.attempt, spec.serial, "cancelled")
            return
        if not claimed:
            bound.warning("refused_duplicate_delivery", claimed_by=redis.get(claim))
            metrics.HUB_REFUSED.labels("duplicate").inc()
            self.reporter.refused(spec.task_id, spec.attempt, spec.serial, "duplicate")
            return
        running = RunningTask(spec=spec)
        with self.lock:
            busy = self.running.get(spec.serial)
            if busy is None:
                self.running[spec.serial] = running
                metrics.HUB_RUNNING.set(len(self.running))
        if busy is not None:
            bound.error("refused_phone_busy", running_task=busy.spec.task_id)
            metrics.HUB_REFUSED.labels("busy").inc()
            self.reporter.refused(spec.task_id, spec.attempt, spec.serial, "busy", f"running {busy.spec.task_id}")
            return
        try:
            self.reporter.started(spec.task_id, spec.attempt, spec.serial)
            bound.info("task_started", script=spec.script_name)
            began = time.monotonic()
            outcome, screenshot = self._execute(running, adb_serial)
            elapsed = time.monotonic() - began
            metrics.HUB_SCRIPT_SECONDS.labels(spec.script_name, outcome.outcome).observe(elapsed)
            bound.info("task_ended", outcome=outcome.outcome, remark=outcome.remark, seconds=round(elapsed, 3))
        finally:
            with self.lock:
                self.running.pop(spec.serial, None)
                metrics.HUB_RUNNING.set(len(self.running))
        report = self.reporter.finished_report(
            task_id=spec.task_id,
            attempt=spec.attempt,
            serial=spec.serial,
            outcome=outcome.outcome,
            remark=outcome.remark,
            failure_kind=outcome.failure_kind.value if outcome.failure_kind else None,
            screenshot_png_b64=base64.b64encode(screenshot).decode() if screenshot else None,
            lines=running.take_lines(),
        )
        self._record_end(spec.task_id, spec.attempt, report)
        with self.lock:
            first = OUTBOX_RESEND_SECONDS
            self.outbox[(spec.task_id, spec.attempt)] = (time.monotonic() + first, first * 2, report)
            self._outbox_version += 1
            if len(self.outbox) > OUTBOX_LIMIT:
                oldest = min(self.outbox, key=lambda k: self.outbox[k][0])  # the one due soonest: the oldest
                self.outbox.pop(oldest)
        self.reporter.finished_raw(report)

    def _execute(self, running: RunningTask, adb_serial: str) -> tuple[Outcome, bytes | None]:
        spec = running.spec
        device = self.adb.device(adb_serial)
        context = HubContext(running, device, self.env)
        try:
            context.checkpoint()
            remark = run_script(context)
            return Outcome("completed", remark or "done"), None
        except ShutdownInterrupt:
            return Outcome("failed", "interrupted: hub shutting down", FailureKind.HUB_LOST), None
        except TaskStopped:
            return Outcome("failed", "stopped by user", FailureKind.STOPPED), None
        except ScriptFailure as failure:
            outcome = Outcome("failed", failure.message, failure.kind)
        except Exception as exc:  # run_script classifies; this is the last line of defence
            log.exception("script_crashed", task_id=spec.task_id, attempt=spec.attempt, serial=spec.serial)
            outcome = Outcome("failed", f"script error: {type(exc).__name__}: {exc}", FailureKind.SCRIPT_ERROR)
        with self.lock:
            gone = self.attached.get(spec.serial) != "device"
        if gone or running.reason == "offline":
            # Whatever the script was doing when the cable went, the user's answer is the same.
            return Outcome("failed", OFFLINE_REMARK, FailureKind.DEVICE_OFFLINE), None
        if outcome.failure_kind is FailureKind.DEVICE_OFFLINE:
            return outcome, None
        return outcome, self._screenshot(device)

    def _screenshot(self, device: adbutils.AdbDevice) -> bytes | None:
        """The phone's screen as PNG, for the failure report; None if the phone cannot give one."""
        try:
            data = device.shell("screencap -p", encoding=None, timeout=SCREENSHOT_TIMEOUT_SECONDS)
        except (AdbError, AdbTimeout, OSError) as exc:
            log.info("screenshot_failed", serial=device.serial, error=str(exc))
            return None
        if isinstance(data, bytes) and data.startswith(b"\x89PNG"):
            return data
        return None
