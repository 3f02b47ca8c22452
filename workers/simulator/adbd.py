"""The device side of the adb transport over TCP: what ``adbd`` does on a phone in ``tcpip`` mode.

One :class:`Adbd` per simulated phone listens on a loopback port. The adb server connects to it
(``adb connect``), sends ``CNXN`` and then multiplexes streams with ``OPEN``/``WRTE``/``OKAY``/``CLSE``.
Each stream runs one service (``shell:``, ``sync:``...) as an asyncio task; the phone decides which.

Flow control follows adb without ``delayed_ack``: a side sends one ``WRTE`` per stream and waits for the
peer's ``OKAY`` before the next. We answer ``OKAY`` only once a service has consumed the data, so a
slow service (or a throttled phone) slows the sender down exactly as a real phone does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

from workers.simulator import protocol as p

log = logging.getLogger(__name__)

Service = Callable[["Stream"], Awaitable[None]]


class StreamClosed(Exception):
    """The adb server closed the stream (its client went away)."""


class DeviceHost(Protocol):
    """What the transport needs from the phone behind it."""

    def banner(self) -> bytes:
        """The ``CNXN`` payload: ``device::<props>;features=...``."""

    def open_service(self, name: str) -> Service | None:
        """The handler for a service name, or None to refuse the ``OPEN``."""

    def accepting(self) -> bool:
        """False while the phone is unplugged."""

    async def wait_awake(self) -> None:
        """Return at once, or once a hang fault is cleared."""


class Stream:
    """One logical adb stream, as a service sees it: read bytes in, write bytes out."""

    def __init__(self, conn: DeviceConnection, local_id: int, remote_id: int, name: str) -> None:
        self.conn = conn
        self.local_id = local_id
        self.remote_id = remote_id
        self.name = name
        self.closed = False
        self._inbox: deque[bytes] = deque()
        self._readable = asyncio.Event()
        self._acked = asyncio.Event()
        self._acked.set()
        self._buffer = bytearray()
        self.task: asyncio.Task[None] | None = None

    # -- called by the connection -------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        """Data from the server; acknowledged when a service reads it."""
        self._inbox.append(data)
        self._readable.set()

    def on_okay(self) -> None:
        """The server consumed our last ``WRTE``."""
        self._acked.set()

    def on_close(self) -> None:
        """The server closed the stream; wake every waiter."""
        self.closed = True
        self._readable.set()
        self._acked.set()

    # -- used by services ---------------------------------------------------------------------
    async def read(self) -> bytes:
        """The next chunk the server wrote, or ``b""`` once the stream is closed."""
        if self._buffer:
            chunk = bytes(self._buffer)
            self._buffer.clear()
            return chunk
        while not self._inbox:
            if self.closed:
                return b""
            self._readable.clear()
            await self._readable.wait()
        chunk = self._inbox.popleft()
        if not self.closed:
            # Acknowledge only now: this is what paces the sender.
            self.conn.send(p.A_OKAY, self.local_id, self.remote_id)
        return chunk

    async def read_exact(self, size: int) -> bytes:
        """Exactly ``size`` bytes; raises :class:`StreamClosed` if the stream ends first."""
        while len(self._buffer) < size:
            while not self._inbox:
                if self.closed:
                    raise StreamClosed(self.name)
                self._readable.clear()
                await self._readable.wait()
            self._buffer += self._inbox.popleft()
            if not self.closed:
                self.conn.send(p.A_OKAY, self.local_id, self.remote_id)
        out = bytes(self._buffer[:size])
        del self._buffer[:size]
        return out

    async def write(self, data: bytes) -> None:
        """Send ``data``, split to the negotiated payload size, one ``WRTE`` in flight at a time."""
        view = memoryview(data)
        step = self.conn.max_payload
        for start in range(0, len(view), step):
            await self._acked.wait()
            if self.closed:
                raise StreamClosed(self.name)
            await self.conn.host.wait_awake()
            self._acked.clear()
            self.conn.send(p.A_WRTE, self.local_id, self.remote_id, bytes(view[start : start + step]))
            await self.conn.drain()

    async def drain_input(self) -> None:
        """Read and drop whatever the server sends until the stream closes (e.g. unused stdin)."""
        while await self.read():
            pass

    def close(self) -> None:
        """Close our end; the server then closes its socket to the client."""
        if self.closed:
            return
        self.closed = True
        self._readable.set()
        self._acked.set()
        self.conn.send(p.A_CLSE, self.local_id, self.remote_id)
        self.conn.forget(self)


class DeviceConnection:
    """One TCP connection from the adb server, i.e. one transport."""

    def __init__(self, host: DeviceHost, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.host = host
        self._reader = reader
        self._writer = writer
        self.max_payload = p.DEVICE_MAX_PAYLOAD
        self.connected = False
        self._streams: dict[int, Stream] = {}
        self._next_id = 1

    def send(self, command: int, arg0: int, arg1: int, data: bytes = b"", *, with_checksum: bool = False) -> None:
        """Queue one packet on the socket (the loop writes it in order)."""
        if self._writer.is_closing():
            return
        self._writer.write(p.encode(command, arg0, arg1, data, with_checksum=with_checksum))

    async def drain(self) -> None:
        """Wait for the socket buffer to empty; a vanished server is ignored here and seen by run()."""
        with contextlib.suppress(ConnectionError):
            await self._writer.drain()

    def forget(self, stream: Stream) -> None:
        """Drop a finished stream from the table."""
        if self._streams.get(stream.local_id) is stream:
            del self._streams[stream.local_id]

    def abort(self) -> None:
        """Cut the TCP connection at once (an unplugged cable)."""
        transport = self._writer.transport
        transport.abort()

    async def run(self) -> None:
        """Read packets until the server goes away; then stop every service of this transport."""
        try:
            while True:
                raw = await self._reader.readexactly(p.HEADER_SIZE)
                header = p.decode_header(raw)
                data = await self._reader.readexactly(header.data_length) if header.data_length else b""
                # A hung phone keeps its socket open but answers nothing.
                await self.host.wait_awake()
                self._handle(header, data)
        except (asyncio.IncompleteReadError, ConnectionError, p.ProtocolError, OSError) as exc:
            log.debug("transport ended: %r", exc)
        finally:
            self._teardown()

    def _teardown(self) -> None:
        for stream in list(self._streams.values()):
            stream.on_close()
            if stream.task is not None:
                stream.task.cancel()
        self._streams.clear()
        self.connected = False
        if not self._writer.is_closing():
            self._writer.close()

    def _handle(self, header: p.Header, data: bytes) -> None:
        command = header.command
        if command == p.A_CNXN:
            self._on_connect(header, data)
            return
        if not self.connected:
            return  # nothing but CNXN is valid before the handshake
        if command == p.A_OPEN:
            self._on_open(header.arg0, data)
        elif command == p.A_WRTE:
            stream = self._streams.get(header.arg1)
            if stream is None:
                self.send(p.A_CLSE, 0, header.arg0)
            else:
                stream.feed(data)
        elif command == p.A_OKAY:
            stream = self._streams.get(header.arg1)
            if stream is not None:
                stream.remote_id = header.arg0
                stream.on_okay()
        elif command == p.A_CLSE:
            stream = self._streams.pop(header.arg1, None)
            if stream is not None:
                stream.on_close()
                if stream.task is not None:
                    stream.task.cancel()

    def _on_connect(self, header: p.Header, data: bytes) -> None:
        # A second CNXN means the server restarted its side: forget the old streams.
        for stream in list(self._streams.values()):
            stream.on_close()
            if stream.task is not None:
                stream.task.cancel()
        self._streams.clear()
        version = min(header.arg0, p.A_VERSION_SKIP_CHECKSUM)
        self.max_payload = max(1024, min(header.arg1, p.DEVICE_MAX_PAYLOAD))
        self.send(p.A_CNXN, version, p.DEVICE_MAX_PAYLOAD, self.host.banner(), with_checksum=True)
        self.connected = True

    def _on_open(self, remote_id: int, data: bytes) -> None:
        name = data.rstrip(b"\0").decode("utf-8", errors="replace")
        service = self.host.open_service(name)
        if service is None:
            self.send(p.A_CLSE, 0, remote_id)
            return
        local_id = self._next_id
        self._next_id = (self._next_id % 0x7FFFFFFF) + 1
        stream = Stream(self, local_id, remote_id, name)
        self._streams[local_id] = stream
        self.send(p.A_OKAY, local_id, remote_id)
        stream.task = asyncio.get_running_loop().create_task(self._serve(stream, service))

    async def _serve(self, stream: Stream, service: Service) -> None:
        try:
            await service(stream)
        except (StreamClosed, asyncio.CancelledError):
            pass
        except Exception:
            log.exception("service %r failed", stream.name)
        finally:
            stream.close()


class Adbd:
    """The listening side of one phone: accepts the adb server's connections on a loopback port."""

    def __init__(self, host: DeviceHost) -> None:
        self.host = host
        self.connections: set[DeviceConnection] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def listen(self, address: str = "127.0.0.1", port: int = 0) -> int:
        """Bind (port 0 = any free port) and start accepting; returns the port."""
        self._server = await asyncio.start_server(self._accept, address, port, backlog=16)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.host.accepting():
            # Unplugged: the port stays ours, but nobody answers behind it.
            writer.transport.abort()
            return
        conn = DeviceConnection(self.host, reader, writer)
        self.connections.add(conn)
        try:
            await conn.run()
        finally:
            self.connections.discard(conn)

    def drop_connections(self) -> None:
        """Abort every live transport (unplug)."""
        for conn in list(self.connections):
            conn.abort()

    @property
    def online(self) -> bool:
        """True while some adb server holds a handshaken transport to us."""
        return any(conn.connected for conn in self.connections)

    async def close(self) -> None:
        """Stop listening and cut every transport."""
        if self._server is not None:
            self._server.close()
        self.drop_connections()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
