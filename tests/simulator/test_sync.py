"""adb sync against a simulated phone: push, pull, stat, list; byte-exact for a few MB."""

from __future__ import annotations

import io
import os
import stat
import time
from pathlib import Path

import adbutils
import pytest

from workers.adb.server import AdbServer
from workers.adb.sync import push_file
from workers.simulator.phone import SimulatedPhone

SIZE = 3 * 1024 * 1024 + 17


@pytest.fixture(scope="module")
def payload() -> bytes:
    return os.urandom(SIZE)


def test_adbutils_push_pull_stat_byte_exact(dev: adbutils.AdbDevice, phone: SimulatedPhone, payload: bytes) -> None:
    pushed = dev.sync.push(io.BytesIO(payload), "/sdcard/Movies/big.bin", mode=0o644)
    assert pushed == SIZE
    assert phone.read_file("/sdcard/Movies/big.bin") == payload
    info = dev.sync.stat("/sdcard/Movies/big.bin")
    assert info.size == SIZE and stat.S_ISREG(info.mode)
    assert dev.sync.read_bytes("/sdcard/Movies/big.bin") == payload
    names = [entry.path for entry in dev.sync.list("/sdcard/Movies")]
    assert "big.bin" in names
    missing = dev.sync.stat("/sdcard/nothing-here")
    assert missing.mode == 0 and missing.mtime is None
    with pytest.raises(adbutils.AdbError, match="No such file"):
        dev.sync.read_bytes("/sdcard/nothing-here")


def test_cli_push_pull_ls(adb_server: AdbServer, phone: SimulatedPhone, payload: bytes, tmp_path: Path) -> None:
    source = tmp_path / "clip.mp4"
    source.write_bytes(payload)
    pushed = adb_server.run("-s", phone.serial, "push", str(source), "/sdcard/new/dir/clip.mp4")
    assert pushed.returncode == 0, pushed.stderr
    assert phone.read_file("/storage/emulated/0/new/dir/clip.mp4") == payload  # parents made (fixed_push_mkdir)
    back = tmp_path / "back.mp4"
    pulled = adb_server.run("-s", phone.serial, "pull", "/sdcard/new/dir/clip.mp4", str(back))
    assert pulled.returncode == 0, pulled.stderr
    assert back.read_bytes() == payload
    listing = adb_server.run("-s", phone.serial, "ls", "/sdcard/new/dir").stdout
    assert "clip.mp4" in listing
    failed = adb_server.run("-s", phone.serial, "pull", "/sdcard/none.bin", str(tmp_path / "x"))
    assert failed.returncode != 0 and "No such file" in failed.stderr


def test_cli_pull_directory(adb_server: AdbServer, phone: SimulatedPhone, tmp_path: Path) -> None:
    phone.push_file("/sdcard/Pictures/set/a.jpg", b"A" * 10)
    phone.push_file("/sdcard/Pictures/set/sub/b.jpg", b"B" * 20)
    result = adb_server.run("-s", phone.serial, "pull", "/sdcard/Pictures/set", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "set" / "a.jpg").read_bytes() == b"A" * 10
    assert (tmp_path / "set" / "sub" / "b.jpg").read_bytes() == b"B" * 20


def test_push_file_helper_with_deadline(dev: adbutils.AdbDevice, phone: SimulatedPhone, tmp_path: Path) -> None:
    source = tmp_path / "x.bin"
    source.write_bytes(b"z" * 200_000)
    calls: list[int] = []
    sent = push_file(dev, source, "/sdcard/Download/x.bin", timeout=5, between_chunks=lambda: calls.append(1))
    assert sent == 200_000 and len(calls) == 4
    assert phone.read_file("/sdcard/Download/x.bin") == b"z" * 200_000


def test_slow_fault_caps_transfer_rate(dev: adbutils.AdbDevice, phone: SimulatedPhone) -> None:
    phone.inject("slow", bytes_per_second=400_000)
    started = time.monotonic()
    dev.sync.push(io.BytesIO(b"s" * 200_000), "/sdcard/Download/slow.bin")
    elapsed = time.monotonic() - started
    assert elapsed >= 0.45
    phone.clear("slow")
    started = time.monotonic()
    dev.sync.push(io.BytesIO(b"s" * 200_000), "/sdcard/Download/fast.bin")
    assert time.monotonic() - started < elapsed
