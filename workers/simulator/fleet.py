"""Run many simulated phones in one process and attach them to an adb server.

One asyncio loop in a background thread serves every phone (an idle phone costs one listening socket
and one transport socket). :class:`Fleet` is the in-process handle; :func:`serve_fleet` is the
blocking entry point for the CLI (``phonefleet simulate`` / ``python -m workers.simulator``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

import adbutils

from workers.adb.server import adb_client
from workers.simulator.models import Fault
from workers.simulator.phone import SimulatedPhone

log = logging.getLogger(__name__)
T = TypeVar("T")


class Fleet:
    """Simulated phones on loopback ports, optionally attached to the adb server at ``adb_port``."""

    def __init__(self, adb_port: int | None = None, *, adb_host: str = "127.0.0.1", bind_host: str = "127.0.0.1"):
        self.adb_port = adb_port
        self.adb_host = adb_host
        self.bind_host = bind_host
        self._phones: dict[str, SimulatedPhone] = {}
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="phone-fleet", daemon=True)
        self._started = False
        self._control: Any = None

    # ------------------------------------------------------------------ loop
    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def start(self) -> Fleet:
        """Start the loop thread (idempotent)."""
        if not self._started:
            self._thread.start()
            self._started = True
        return self

    def call(self, coroutine: Any, timeout: float | None = 30.0) -> Any:
        """Run a coroutine on the fleet's loop and wait for its result."""
        self.start()
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    # ------------------------------------------------------------------ phones
    @property
    def phones(self) -> list[SimulatedPhone]:
        """Every phone, in the order they were added."""
        with self._lock:
            return list(self._phones.values())

    @property
    def serials(self) -> list[str]:
        """Serials (``127.0.0.1:PORT``) of every phone."""
        return [phone.serial for phone in self.phones]

    def phone(self, serial: str) -> SimulatedPhone:
        """The phone with this serial (``KeyError`` if unknown)."""
        with self._lock:
            return self._phones[serial]

    def add_phone(self, phone: SimulatedPhone | None = None, *, attach: bool = True) -> SimulatedPhone:
        """Start one phone (a new default one if none is given); attach it if the fleet has an adb port."""
        return self.add_phones(1, attach=attach, phones=[phone or SimulatedPhone()])[0]

    def add_phones(
        self,
        count: int,
        *,
        attach: bool = True,
        accounts_per_app: int = 0,
        phones: Iterable[SimulatedPhone] | None = None,
        **phone_options: Any,
    ) -> list[SimulatedPhone]:
        """Start ``count`` phones on free ports. ``accounts_per_app`` logs in generated accounts
        (``tt<N>a``, ``tt<N>b``... and ``ig<N>a``...), N being the phone's index in the fleet."""
        made = list(phones) if phones is not None else [SimulatedPhone(**phone_options) for _ in range(count)]
        base = len(self._phones)
        for offset, phone in enumerate(made):
            for k in range(accounts_per_app):
                suffix = chr(ord("a") + k)
                phone.add_account(f"tt{base + offset:04d}{suffix}", platform="tiktok")
                phone.add_account(f"ig{base + offset:04d}{suffix}", platform="instagram")

        async def start_all() -> None:
            for phone in made:
                await phone.start(self.bind_host)

        self.call(start_all(), timeout=60 + len(made) * 0.05)
        with self._lock:
            for phone in made:
                self._phones[phone.serial] = phone
        if attach and self.adb_port:
            self.attach(made)
        return made

    def remove(self, phone: SimulatedPhone) -> None:
        """Detach one phone from adb, stop it and forget it."""
        if self.adb_port:
            with suppress(adbutils.AdbError):
                self.detach(phone)
        self.call(phone.stop(), timeout=10)
        with self._lock:
            self._phones.pop(phone.serial, None)

    # ------------------------------------------------------------------ adb
    def _client(self) -> adbutils.AdbClient:
        if not self.adb_port:
            raise RuntimeError("this fleet has no adb server port")
        return adb_client(self.adb_port, self.adb_host, socket_timeout=15)

    def _parallel(self, fn: Callable[[SimulatedPhone], T], phones: list[SimulatedPhone], workers: int = 32) -> list[T]:
        with ThreadPoolExecutor(max_workers=min(workers, max(1, len(phones)))) as pool:
            return list(pool.map(fn, phones))

    def attach(self, phones: Iterable[SimulatedPhone] | None = None, timeout: float = 30.0) -> None:
        """``adb connect`` each phone and wait until adb lists all of them as ``device``."""
        targets = list(phones) if phones is not None else self.phones
        if not targets:
            return
        client = self._client()
        # Few at a time: adb's connect path select()s on the new socket and aborts once the server's
        # descriptors pass FD_SETSIZE (1024), so every concurrent request eats into ~1,010 devices.
        self._parallel(lambda phone: client.connect(phone.serial, timeout=10), targets, workers=4)
        self.wait_state(targets, "device", timeout=timeout)

    def detach(self, phone: SimulatedPhone) -> None:
        """``adb disconnect`` one phone."""
        self._client().disconnect(phone.serial)

    def adb_states(self) -> dict[str, str]:
        """What ``adb devices`` says about every transport it knows."""
        return {info.serial: info.state for info in self._client().list()}

    def wait_state(self, phones: Iterable[SimulatedPhone], state: str | None, timeout: float = 30.0) -> None:
        """Wait until adb shows each phone in ``state`` (None: absent); ``TimeoutError`` otherwise."""
        serials = {phone.serial for phone in phones}
        deadline = time.monotonic() + timeout
        while True:
            states = self.adb_states()
            pending = {s for s in serials if states.get(s) != state}
            if not pending:
                return
            if time.monotonic() > deadline:
                sample = {s: states.get(s) for s in sorted(pending)[:5]}
                raise TimeoutError(f"{len(pending)} phones not {state!r} in adb after {timeout}s: {sample}")
            time.sleep(0.05)

    # ------------------------------------------------------------------ faults at fleet level
    def unplug(self, serial: str) -> None:
        """Pull the phone's cable: adb sees the transport drop and cannot reconnect."""
        self.phone(serial).unplug()

    def replug(self, serial: str, *, wait: bool = True) -> None:
        """Plug it back in and reattach it to the fleet's adb server (as a hub's reconnect would)."""
        phone = self.phone(serial)
        phone.replug()
        if self.adb_port:
            client = self._client()
            # adb may still be retrying the old transport; start over so it comes back at once.
            client.disconnect(serial)
            client.connect(serial, timeout=10)
            if wait:
                self.wait_state([phone], "device", timeout=15)

    def inject(self, serial: str, fault: Fault | str, **params: Any) -> None:
        """Set a fault on one phone."""
        self.phone(serial).inject(fault, **params)

    def clear(self, serial: str, fault: Fault | str | None = None, **params: Any) -> None:
        """Clear one fault (or all); clearing ``unplug`` replugs the phone."""
        phone = self.phone(serial)
        was_unplugged = phone.unplugged
        phone.clear(fault, **params)
        if was_unplugged and not phone.unplugged and self.adb_port:
            phone.unplugged = True  # let replug() do the reattaching
            self.replug(serial)

    # ------------------------------------------------------------------ control server
    def serve_control(self, port: int = 0, host: str = "127.0.0.1") -> int:
        """Start the JSON control server in a thread; returns its port."""
        from workers.simulator.control import ControlServer

        if self._control is None:
            self._control = ControlServer(self, host, port)
            self._control.start()
        return int(self._control.port)

    @property
    def control_url(self) -> str | None:
        """Base URL of the control server, once started."""
        return None if self._control is None else f"http://{self._control.host}:{self._control.port}"

    # ------------------------------------------------------------------ shutdown
    def stop(self, *, detach: bool = True) -> None:
        """Detach from adb (best effort), stop the phones, the control server and the loop."""
        if self._control is not None:
            self._control.stop()
            self._control = None
        phones = self.phones
        if detach and self.adb_port and phones:
            try:
                client = self._client()
                self._parallel(lambda phone: client.disconnect(phone.serial), phones)
            except adbutils.AdbError:
                pass
        if self._started and self._loop.is_running():

            async def stop_all() -> None:
                await asyncio.gather(*(phone.stop() for phone in phones), return_exceptions=True)

            try:
                self.call(stop_all(), timeout=30)
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(timeout=10)
        with self._lock:
            self._phones.clear()

    def __enter__(self) -> Fleet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def running_fleet(phones: int, adb_port: int, **options: Any) -> Iterator[Fleet]:
    """A started fleet of ``phones`` phones attached to ``adb_port``, stopped on exit."""
    fleet = Fleet(adb_port).start()
    try:
        fleet.add_phones(phones, **options)
        yield fleet
    finally:
        fleet.stop()


def serve_fleet(
    phones: int,
    adb_port: int,
    control_port: int,
    *,
    accounts_per_app: int = 1,
    adb_host: str = "127.0.0.1",
    control_host: str = "127.0.0.1",
    upload_seconds: float = 1.0,
    first_serialno: str | None = None,
    ready_file: Path | None = None,
    stop_event: threading.Event | None = None,
    on_ready: Callable[[Fleet], None] | None = None,
) -> None:
    """Start ``phones`` phones, attach them to the adb server on ``adb_port``, serve the control API
    on ``control_port`` (0 = any free port), and block until SIGINT/SIGTERM or ``stop_event``.

    When ready it logs one line, writes ``ready_file`` (JSON: serials, adb_port, control_url) if given,
    and calls ``on_ready(fleet)``.
    """
    stop = stop_event or threading.Event()
    fleet = Fleet(adb_port, adb_host=adb_host).start()
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, lambda *_: stop.set())
    try:
        made = [SimulatedPhone(upload_seconds=upload_seconds) for _ in range(phones)]
        if first_serialno and made:
            # The demo names one phone after the seed's example serial, so its curl example runs as is.
            made[0].props["ro.serialno"] = made[0].props["ro.boot.serialno"] = first_serialno
        fleet.add_phones(phones, accounts_per_app=accounts_per_app, phones=made)
        fleet.serve_control(control_port, control_host)
        summary = {"serials": fleet.serials, "adb_port": adb_port, "control_url": fleet.control_url}
        if ready_file is not None:
            tmp = ready_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(summary))
            tmp.replace(ready_file)
        log.info("simulator ready: %d phones on adb port %d, control %s", phones, adb_port, fleet.control_url)
        if on_ready is not None:
            on_ready(fleet)
        while not stop.wait(0.5):
            pass
    finally:
        fleet.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
