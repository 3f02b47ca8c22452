"""The ``sync:`` service: file transfer and stat, as adbd implements it (file_sync_service.cpp).

Requests are ``<id:4><length:u32><path>``; ``SEND`` is followed by ``DATA`` chunks and ``DONE``.
Supported: STAT, STA2, LST2 (stat_v2), LIST, LIS2 (ls_v2), SEND, RECV, QUIT. SND2/RCV2 are not, and
the banner does not advertise ``sendrecv_v2``, so clients never ask for them.
"""

from __future__ import annotations

import errno
import os
import struct
from typing import TYPE_CHECKING

from workers.simulator.adbd import Stream, StreamClosed
from workers.simulator.fs import DirNode, FsError, Node, normalize

if TYPE_CHECKING:
    from workers.simulator.phone import SimulatedPhone

SYNC_DATA_MAX = 64 * 1024
MAX_PATH = 1024
_STAT_V1 = struct.Struct("<4sIII")
_STAT_V2 = struct.Struct("<4sIQQIIIIQqqq")
_DENT_V1 = struct.Struct("<4sIIII")
_DENT_V2 = struct.Struct("<4sIQQIIIIQqqqI")
_SHELL_UID, _SDCARD_GID = 2000, 1015


def _fail(message: str) -> bytes:
    data = message.encode("utf-8")
    return b"FAIL" + struct.pack("<I", len(data)) + data


def _stat_v2(tag: bytes, node: Node | None, inode: int) -> bytes:
    if node is None:
        return _STAT_V2.pack(tag, errno.ENOENT, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    nlink = 2 if isinstance(node, DirNode) else 1
    return _STAT_V2.pack(
        tag,
        0,
        0xFD00,
        inode,
        node.st_mode,
        nlink,
        _SHELL_UID,
        _SDCARD_GID,
        node.size,
        node.mtime,
        node.mtime,
        node.mtime,
    )


async def serve_sync(phone: SimulatedPhone, stream: Stream) -> None:
    """Answer sync requests until QUIT or the stream closes."""
    try:
        while True:
            head = await stream.read_exact(8)
            tag, length = head[:4], struct.unpack("<I", head[4:])[0]
            if tag == b"QUIT":
                return
            if length > MAX_PATH:
                await stream.write(_fail("path too long"))
                return
            path = (await stream.read_exact(length)).decode("utf-8", errors="replace")
            if tag == b"STAT":
                with phone.lock:
                    node = phone.fs.lookup(path)
                if node is None:
                    await stream.write(_STAT_V1.pack(b"STAT", 0, 0, 0))
                else:
                    await stream.write(_STAT_V1.pack(b"STAT", node.st_mode, node.size & 0xFFFFFFFF, node.mtime))
            elif tag in (b"STA2", b"LST2"):
                with phone.lock:
                    node = phone.fs.lookup(path)
                await stream.write(_stat_v2(tag, node, abs(hash(normalize(path))) & 0xFFFFFFFF))
            elif tag in (b"LIST", b"LIS2"):
                await _list(phone, stream, path, v2=tag == b"LIS2")
            elif tag == b"RECV":
                await _recv(phone, stream, path)
            elif tag == b"SEND":
                if not await _send(phone, stream, path):
                    return
            else:
                await stream.write(_fail(f"unknown sync command {tag!r}"))
                return
    except StreamClosed:
        return


async def _list(phone: SimulatedPhone, stream: Stream, path: str, *, v2: bool) -> None:
    with phone.lock:
        node = phone.fs.lookup(path)
        entries: list[tuple[str, Node]] = []
        if isinstance(node, DirNode):
            entries = [(".", node), ("..", node), *phone.fs.listdir(path)]
    out = bytearray()
    for index, (name, child) in enumerate(entries):
        raw = name.encode("utf-8")
        if v2:
            out += _DENT_V2.pack(
                b"DNT2",
                0,
                0xFD00,
                index + 1,
                child.st_mode,
                1,
                _SHELL_UID,
                _SDCARD_GID,
                child.size,
                child.mtime,
                child.mtime,
                child.mtime,
                len(raw),
            )
        else:
            out += _DENT_V1.pack(b"DENT", child.st_mode, child.size & 0xFFFFFFFF, child.mtime, len(raw))
        out += raw
    if v2:
        out += _DENT_V2.pack(b"DONE", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    else:
        out += _DENT_V1.pack(b"DONE", 0, 0, 0, 0)
    await stream.write(bytes(out))


async def _recv(phone: SimulatedPhone, stream: Stream, path: str) -> None:
    try:
        with phone.lock:
            data = phone.fs.read(path)
    except FsError as exc:
        await stream.write(_fail(f"open failed: {exc.reason}"))
        return
    view = memoryview(data)
    for start in range(0, len(view), SYNC_DATA_MAX):
        chunk = bytes(view[start : start + SYNC_DATA_MAX])
        await phone.throttle(len(chunk))
        await stream.write(b"DATA" + struct.pack("<I", len(chunk)) + chunk)
    await stream.write(b"DONE" + struct.pack("<I", 0))


async def _send(phone: SimulatedPhone, stream: Stream, spec: str) -> bool:
    path, _, mode_text = spec.rpartition(",")
    if not path:
        path, mode_text = spec, "33188"
    try:
        mode = int(mode_text)
    except ValueError:
        mode = 0o100644
    received = bytearray()
    while True:
        head = await stream.read_exact(8)
        tag, value = head[:4], struct.unpack("<I", head[4:])[0]
        if tag == b"DATA":
            if value > SYNC_DATA_MAX:
                await stream.write(_fail("data chunk too large"))
                return False
            received += await stream.read_exact(value)
            await phone.throttle(value)
        elif tag == b"DONE":
            mtime = value
            break
        else:
            await stream.write(_fail(f"invalid data message {tag!r}"))
            return False
    try:
        with phone.lock:
            phone.fs.write(path, bytes(received), mode=mode & 0o7777, mtime=mtime, make_parents=True)
    except FsError as exc:
        await stream.write(_fail(f"failed to create {path}: {os.strerror(exc.code)}"))
        return True
    await stream.write(b"OKAY" + struct.pack("<I", 0))
    return True
