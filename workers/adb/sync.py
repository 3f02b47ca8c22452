"""``adb push`` with a per-chunk deadline and a hook between chunks.

adbutils' ``Sync.push`` opens its connection without a timeout, so a phone that stops answering
blocks it forever, and a long transfer cannot be interrupted. This speaks the same sync ``SEND``
request on a connection with a socket timeout and calls ``between_chunks`` (e.g. the task's
checkpoint) after every chunk.
"""

from __future__ import annotations

import stat
import struct
import time
from collections.abc import Callable
from pathlib import Path

import adbutils

CHUNK = 64 * 1024


def push_file(
    device: adbutils.AdbDevice,
    local: Path,
    remote: str,
    *,
    mode: int = 0o644,
    timeout: float = 30.0,
    between_chunks: Callable[[], None] | None = None,
) -> int:
    """Copy ``local`` to ``remote`` on the device; returns the bytes sent.

    ``timeout`` bounds every single socket operation (so a hung phone fails within it). Raises
    ``adbutils.AdbTimeout`` or ``adbutils.AdbError`` (including the device's own FAIL message).
    """
    sent = 0
    with device.open_transport(timeout=timeout) as conn:
        conn.send_command("sync:")
        conn.check_okay()
        target = f"{remote},{stat.S_IFREG | mode}".encode()
        conn.conn.sendall(b"SEND" + struct.pack("<I", len(target)) + target)
        with local.open("rb") as source:
            while True:
                chunk = source.read(CHUNK)
                if not chunk:
                    break
                conn.conn.sendall(b"DATA" + struct.pack("<I", len(chunk)) + chunk)
                sent += len(chunk)
                if between_chunks is not None:
                    between_chunks()
        conn.conn.sendall(b"DONE" + struct.pack("<I", int(time.time())))
        reply = conn.read_exact(8)
        if reply[:4] == b"FAIL":
            size = struct.unpack("<I", reply[4:])[0]
            raise adbutils.AdbError(conn.read_exact(size).decode("utf-8", "replace"))
        if reply[:4] != b"OKAY":
            raise adbutils.AdbError(f"unexpected sync reply {reply[:4]!r}")
        conn.conn.sendall(b"QUIT" + struct.pack("<I", 0))
    return sent
