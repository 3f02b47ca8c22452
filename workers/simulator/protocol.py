"""The adb transport's wire format: 24-byte little-endian headers followed by a payload.

Only what the device side needs is here. The simulator answers version ``0x01000001``, the version
from which neither side has to verify payload checksums, but still fills in the checksum of its
``CNXN`` because the server reads that packet before the version is agreed.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

A_SYNC = 0x434E5953
A_CNXN = 0x4E584E43
A_OPEN = 0x4E45504F
A_OKAY = 0x59414B4F
A_CLSE = 0x45534C43
A_WRTE = 0x45545257
A_AUTH = 0x48545541
A_STLS = 0x534C5453

A_VERSION_MIN = 0x01000000
A_VERSION_SKIP_CHECKSUM = 0x01000001

# What current phones advertise: 1 MiB since Android 9, 256 KiB before. The server never sends more
# than the smaller of the two sides' values, and neither do we.
DEVICE_MAX_PAYLOAD = 256 * 1024
HEADER = struct.Struct("<6I")
HEADER_SIZE = HEADER.size

_NAMES = {
    A_SYNC: "SYNC",
    A_CNXN: "CNXN",
    A_OPEN: "OPEN",
    A_OKAY: "OKAY",
    A_CLSE: "CLSE",
    A_WRTE: "WRTE",
    A_AUTH: "AUTH",
    A_STLS: "STLS",
}


class ProtocolError(Exception):
    """The peer sent something that is not an adb packet."""


class Header(NamedTuple):
    """A decoded packet header."""

    command: int
    arg0: int
    arg1: int
    data_length: int
    data_check: int
    magic: int


def checksum(data: bytes) -> int:
    """The pre-1.0.0.1 payload checksum: the byte sum, modulo 2**32."""
    return sum(data) & 0xFFFFFFFF


def encode(command: int, arg0: int, arg1: int, data: bytes = b"", *, with_checksum: bool = False) -> bytes:
    """One packet, header and payload, ready to write to the socket."""
    check = checksum(data) if with_checksum else 0
    return HEADER.pack(command, arg0, arg1, len(data), check, command ^ 0xFFFFFFFF) + data


def decode_header(raw: bytes) -> Header:
    """Parse a 24-byte header; raises :class:`ProtocolError` when the magic does not match."""
    header = Header(*HEADER.unpack(raw))
    if header.magic != header.command ^ 0xFFFFFFFF:
        raise ProtocolError(f"bad magic in packet {header.command:#x}")
    return header


def command_name(command: int) -> str:
    """The four-letter name of a command, for logs."""
    return _NAMES.get(command, f"{command:#x}")
