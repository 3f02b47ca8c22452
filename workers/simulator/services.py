"""The services a phone answers on an OPEN: ``shell:``, ``shell,v2,...:``, ``exec:``, ``sync:``."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from typing import TYPE_CHECKING

from workers.simulator.adbd import Service, Stream
from workers.simulator.commands import COMMANDS
from workers.simulator.shell import Shell
from workers.simulator.syncsvc import serve_sync

if TYPE_CHECKING:
    from workers.simulator.phone import SimulatedPhone

# shell protocol v2 packet ids (adb's shell_protocol.h)
ID_STDIN, ID_STDOUT, ID_STDERR, ID_EXIT, ID_CLOSE_STDIN, ID_WINDOW_SIZE = 0, 1, 2, 3, 4, 5


def v2_packet(kind: int, data: bytes) -> bytes:
    """One shell-protocol packet: id byte, little-endian length, data."""
    return struct.pack("<BI", kind, len(data)) + data


def resolve(phone: SimulatedPhone, name: str) -> Service | None:
    """The handler for a service name, or None (the OPEN is refused, as adbd does for unknown ones)."""
    if name.startswith(("shell,", "shell:")):
        head, _, command = name.partition(":")
        options = head.split(",")[1:]
        if "v2" in options:
            return lambda stream: _shell_v2(phone, command, stream)
        return lambda stream: _shell_raw(phone, command, stream)
    if name.startswith("exec:"):
        return lambda stream: _shell_raw(phone, name[len("exec:") :], stream)
    if name == "sync:":
        return lambda stream: serve_sync(phone, stream)
    if name in ("root:", "unroot:"):
        return lambda stream: stream.write(b"adbd cannot run as root in production builds\n")
    if name.startswith("reboot:"):
        return lambda stream: _nothing(stream)
    return None


async def _nothing(stream: Stream) -> None:
    return None


async def _shell_raw(phone: SimulatedPhone, command: str, stream: Stream) -> None:
    """v1: stdout and stderr mixed on the stream; the end of output is the stream closing."""
    shell = Shell(phone, COMMANDS)
    if not command.strip():
        await _interactive(shell, stream)
        return
    # Nothing reads stdin, but it must be consumed or the client's writes would stall.
    drain = asyncio.get_running_loop().create_task(stream.drain_input())
    try:
        await shell.run(command, stream.write, stream.write)
    finally:
        drain.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await drain


async def _interactive(shell: Shell, stream: Stream) -> None:
    # A line-based stand-in for an interactive session (no pty): prompt, read a line, run it.
    pending = b""
    while True:
        await stream.write(b"panther:/ $ ")
        while b"\n" not in pending:
            chunk = await stream.read()
            if not chunk:
                return
            pending += chunk.replace(b"\r", b"\n")
        line, _, pending = pending.partition(b"\n")
        text = line.decode("utf-8", errors="replace").strip()
        if text == "exit":
            return
        if text:
            await shell.run(text, stream.write, stream.write)


async def _shell_v2(phone: SimulatedPhone, command: str, stream: Stream) -> None:
    """v2: stdout, stderr and the exit status in separate packets; stdin is read and ignored."""
    shell = Shell(phone, COMMANDS)

    async def out(data: bytes) -> None:
        if data:
            await stream.write(v2_packet(ID_STDOUT, data))

    async def err(data: bytes) -> None:
        if data:
            await stream.write(v2_packet(ID_STDERR, data))

    drain = asyncio.get_running_loop().create_task(stream.drain_input())
    try:
        status = await shell.run(command, out, err) if command.strip() else 0
        await stream.write(v2_packet(ID_EXIT, bytes([status & 0xFF])))
    finally:
        drain.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await drain
