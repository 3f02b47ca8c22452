"""Load generators.

``ClosedLoop``: N threads, each with its own client (a psycopg pool for the baselines), each sending its
next request as soon as the previous one is answered, for a fixed time.

``RawHttp`` and ``http_closed_loop``: the api's clients. A load generator on the same 2 cores as the api
takes CPU from it, so the api figures use the cheapest client that still speaks real HTTP/1.1 over
keep-alive connections: requests are pre-encoded bytes written to a plain socket, answers are read up
to their ``Content-Length`` (no chunked bodies: the api always sends a length). httpx spent ~1.7 ms of
CPU per request; this spends ~0.1 ms. Every api figure (create, batch, list) uses these two, so their
client cost is the same.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode, urlsplit

C = TypeVar("C")


@dataclass
class LoadResult:
    ok: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    first_error: str | None = None

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0


@dataclass
class ClosedLoop(Generic[C]):
    """``request(client, thread_index, n)`` returns True when the request succeeded."""

    make_client: Callable[[], C]
    close_client: Callable[[C], None]
    request: Callable[[C, int, int], bool]
    threads: int
    clients: list[C] = field(default_factory=list)

    def close(self) -> None:
        for client in self.clients:
            self.close_client(client)
        self.clients = []

    def run(self, seconds: float) -> LoadResult:
        """Run for ``seconds``; the clients are made on the first run and kept (keep-alive) until ``close``."""
        result = LoadResult()
        lock = threading.Lock()
        if not self.clients:
            self.clients = [self.make_client() for _ in range(self.threads)]
        clients = self.clients
        barrier = threading.Barrier(self.threads + 1)
        deadline = [0.0]

        def worker(index: int) -> None:
            client = clients[index]
            ok = errors = 0
            latencies: list[float] = []
            error: str | None = None
            barrier.wait()
            n = 0
            while time.monotonic() < deadline[0]:
                began = time.monotonic()
                try:
                    good = self.request(client, index, n)
                except Exception as exc:
                    good = False
                    error = error or f"{type(exc).__name__}: {exc}"
                latencies.append(time.monotonic() - began)
                n += 1
                if good:
                    ok += 1
                else:
                    errors += 1
            with lock:
                result.ok += ok
                result.errors += errors
                result.latencies.extend(latencies)
                result.first_error = result.first_error or error

        workers = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(self.threads)]
        for thread in workers:
            thread.start()
        began = time.monotonic()
        deadline[0] = began + seconds
        barrier.wait()
        for thread in workers:
            thread.join()
        result.seconds = time.monotonic() - began
        return result


# --- raw HTTP/1.1 ------------------------------------------------------------------------------------


def encode_request(
    method: str, host: str, path: str, *, headers: dict[str, str] | None = None, body: Any = None
) -> bytes:
    """One HTTP/1.1 keep-alive request as bytes; ``body`` (if not None) is sent as JSON."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    payload = b""
    if body is not None:
        payload = json.dumps(body, separators=(",", ":")).encode()
        lines.append("Content-Type: application/json")
    if body is not None or method in ("POST", "PUT", "PATCH", "DELETE"):
        lines.append(f"Content-Length: {len(payload)}")
    lines.extend(f"{name}: {value}" for name, value in (headers or {}).items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def _parse_head(head: bytes) -> tuple[int, int]:
    """Status and Content-Length of a response head (without the blank line)."""
    status_line, _, rest = head.partition(b"\r\n")
    status = int(status_line.split(b" ", 2)[1])
    length = -1
    for line in rest.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length < 0:
        raise RuntimeError(f"response without Content-Length: {head[:200]!r}")
    return status, length


@dataclass
class Response:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class RawHttp:
    """One blocking keep-alive connection, for sequential requests (batch, list, stats)."""

    def __init__(self, base_url: str, headers: dict[str, str] | None = None, timeout: float = 60.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"RawHttp needs http://HOST:PORT[/prefix], got {base_url!r}")
        self.host = f"{parts.hostname}:{parts.port}"
        self.address = (parts.hostname, parts.port)
        self.prefix = parts.path.rstrip("/")
        self.headers = dict(headers or {})
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._buffer = b""

    def encode(self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None) -> bytes:
        target = self.prefix + path + ("?" + urlencode(params) if params else "")
        return encode_request(method, self.host, target, headers=self.headers, body=body)

    def _connect(self) -> socket.socket:
        if self._sock is None:
            sock = socket.create_connection(self.address, timeout=self.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock, self._buffer = sock, b""
        return self._sock

    def send(self, raw: bytes) -> Response:
        """Send pre-encoded request bytes and read the whole answer."""
        sock = self._connect()
        try:
            sock.sendall(raw)
            buffer = self._buffer
            while (end := buffer.find(b"\r\n\r\n")) < 0:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("connection closed by the server")
                buffer += chunk
            status, length = _parse_head(buffer[:end])
            start = end + 4
            while len(buffer) - start < length:
                chunk = sock.recv(max(65536, length))
                if not chunk:
                    raise ConnectionError("connection closed by the server")
                buffer += chunk
            self._buffer = buffer[start + length :]
            return Response(status, buffer[start : start + length])
        except BaseException:
            self.close()
            raise

    def get(self, path: str, params: dict[str, Any] | None = None) -> Response:
        return self.send(self.encode("GET", path, params=params))

    def post(self, path: str, body: Any) -> Response:
        return self.send(self.encode("POST", path, body=body))

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> RawHttp:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


async def _read_response(reader: asyncio.StreamReader) -> Response:
    head = await reader.readuntil(b"\r\n\r\n")
    status, length = _parse_head(head[:-4])
    return Response(status, await reader.readexactly(length) if length else b"")


def http_closed_loop(
    base_url: str,
    connections: int,
    seconds: float,
    make_request: Callable[[int, int], bytes],
    check: Callable[[Response], bool],
) -> LoadResult:
    """``connections`` keep-alive connections driven by one asyncio loop in the calling thread, each
    sending its next request (``make_request(connection_index, n)``, encoded bytes) as soon as the
    previous one is answered, for ``seconds``. ``check`` tells a good answer."""
    parts = urlsplit(base_url)
    assert parts.hostname is not None and parts.port is not None
    host, port = parts.hostname, parts.port
    result = LoadResult()

    async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection(host, port)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return reader, writer

    async def connection(
        index: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, deadline: list[float]
    ) -> None:
        n = 0
        try:
            while time.monotonic() < deadline[0]:
                raw = make_request(index, n)
                n += 1
                began = time.monotonic()
                try:
                    writer.write(raw)
                    response = await _read_response(reader)
                    good = check(response)
                except Exception as exc:
                    result.latencies.append(time.monotonic() - began)
                    result.errors += 1
                    result.first_error = result.first_error or f"{type(exc).__name__}: {exc}"
                    return
                result.latencies.append(time.monotonic() - began)
                if good:
                    result.ok += 1
                else:
                    result.errors += 1
                    if result.first_error is None:
                        result.first_error = f"HTTP {response.status}: {response.body[:300]!r}"
        finally:
            writer.close()

    async def main() -> None:
        # Every connection is open before the clock starts. They are opened one after another, a
        # millisecond apart, as separate clients would: a burst of connects lands in one accept loop
        # of one uvicorn worker (asyncio accepts up to its backlog per wake-up), which would leave the
        # other workers of ``--workers N`` without clients.
        opened = []
        for _ in range(connections):
            opened.append(await connect())
            await asyncio.sleep(0.001)
        began = time.monotonic()
        deadline = [began + seconds]
        await asyncio.gather(*(connection(i, r, w, deadline) for i, (r, w) in enumerate(opened)))
        result.seconds = time.monotonic() - began

    asyncio.run(main())
    return result
