"""The real adb server and adbutils see simulated phones as phones: devices, tracking, shells."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import adbutils
import pytest

from tests.simulator.support import wait_until
from workers.adb.server import AdbServer
from workers.simulator.fleet import Fleet
from workers.simulator.phone import SimulatedPhone


def test_devices_l_lists_product_model_device(adb_server: AdbServer, phone: SimulatedPhone) -> None:
    out = adb_server.run("devices", "-l").stdout
    line = next(line for line in out.splitlines() if line.startswith(phone.serial))
    fields = line.split()
    assert fields[1] == "device"
    assert "product:panther" in fields
    assert "model:Pixel_7" in fields
    assert "device:panther" in fields
    assert any(f.startswith("transport_id:") for f in fields)
    info = {i.serial: i for i in adb_server.client().list(extended=True)}[phone.serial]
    assert info.tags["model"] == "Pixel_7"


def test_features_are_what_the_banner_advertises(dev: adbutils.AdbDevice) -> None:
    assert set(dev.get_features().split(",")) == {"shell_v2", "cmd", "stat_v2", "ls_v2", "fixed_push_mkdir"}
    assert dev.get_state() == "device"


def test_track_devices_sees_connect_unplug_replug(adb_server: AdbServer, fleet: Fleet) -> None:
    events: list[tuple[str, str]] = []
    client = adb_server.client()
    stop = threading.Event()

    def track() -> None:
        for event in client.track_devices():
            events.append((event.serial, event.status))
            if stop.is_set():
                return

    threading.Thread(target=track, daemon=True).start()
    phone = fleet.add_phone(SimulatedPhone())
    try:
        wait_until(lambda: (phone.serial, "device") in events, what="device event")
        fleet.unplug(phone.serial)
        wait_until(lambda: events[-1][0] == phone.serial and events[-1][1] in ("offline", "absent"), what="unplug")
        assert adb_server.client().list() and {i.serial: i.state for i in client.list()}.get(phone.serial) != "device"
        fleet.replug(phone.serial)
        wait_until(lambda: events[-1] == (phone.serial, "device"), what="replug event")
    finally:
        stop.set()
        fleet.remove(phone)


def test_cli_shell_v2_separates_stdout_stderr_and_exit_code(adb_server: AdbServer, phone: SimulatedPhone) -> None:
    result = adb_server.run("-s", phone.serial, "shell", "echo out; echo err >&2; exit 3")
    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "err\n")
    missing = adb_server.run("-s", phone.serial, "shell", "frobnicate --now")
    assert missing.returncode == 127
    assert missing.stderr == "/system/bin/sh: frobnicate: inaccessible or not found\n"
    ls = adb_server.run("-s", phone.serial, "shell", "ls", "/nope")
    assert ls.returncode == 1 and "No such file or directory" in ls.stderr


def test_cli_exec_out_and_v1_shell(adb_server: AdbServer, phone: SimulatedPhone) -> None:
    result = adb_server.run("-s", phone.serial, "exec-out", "echo", "hello")
    assert result.stdout == "hello\n"
    forced_v1 = adb_server.run("-s", phone.serial, "shell", "-x", "getprop ro.product.model")
    assert forced_v1.stdout.strip() == "Pixel 7"


def test_adbutils_shells(dev: adbutils.AdbDevice) -> None:
    assert dev.shell("echo hi; echo there") == "hi\nthere"
    v1 = dev.shell2("ls /nope")
    assert v1.returncode == 1 and "No such file or directory" in v1.output
    v2 = dev.shell2("echo a; echo b >&2; false", v2=True)
    assert (v2.returncode, v2.stdout, v2.stderr) == (1, "a\n", "b\n")
    assert dev.shell(["echo", "it's quoted; not run"]) == "it's quoted; not run"
    assert dev.getprop("ro.build.version.sdk") == "33"
    assert dev.shell("test -e /sdcard/DCIM && echo yes || echo no") == "yes"
    assert dev.shell("sh -c 'echo $((1))x' ; echo $?").endswith("0")


def test_shell_chaining_and_pipes(dev: adbutils.AdbDevice) -> None:
    dev.shell("mkdir -p /sdcard/a/b && echo data > /sdcard/a/b/f.txt")
    assert dev.shell("cat /sdcard/a/b/f.txt") == "data"
    assert dev.shell("false && echo no; echo yes") == "yes"
    assert dev.shell("false || echo fallback") == "fallback"
    assert dev.shell("dumpsys window | grep mCurrentFocus").strip().startswith("mCurrentFocus=Window{")
    assert dev.shell("md5sum /sdcard/a/b/f.txt").split()[0] == "6137cde4893c59f76f005a8123d8e8e6"
    assert dev.shell("stat -c %s /sdcard/a/b/f.txt") == "5"
    assert dev.shell("rm /sdcard/a/b/f.txt; ls /sdcard/a/b; echo $?") == "0"
    assert dev.shell("sleep 0.05; echo slept") == "slept"


def test_packages_props_and_window(dev: adbutils.AdbDevice) -> None:
    packages = dev.list_packages()
    assert {"com.zhiliaoapp.musically", "com.instagram.android", "com.android.adbkeyboard"} <= set(packages)
    assert dev.app_info("com.zhiliaoapp.musically") is not None
    assert dev.window_size() == (1080, 2400)
    dev.app_start("com.zhiliaoapp.musically")
    assert dev.app_current().package == "com.zhiliaoapp.musically"
    dev.app_stop("com.zhiliaoapp.musically")
    assert dev.app_current().package == "com.google.android.apps.nexuslauncher"


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("settings get secure default_input_method", "com.android.inputmethod.latin/.LatinIME"),
        ("settings put system screen_brightness 77; settings get system screen_brightness", "77"),
        ("ime list -s", "com.android.inputmethod.latin/.LatinIME"),
        ("getprop no.such.prop", ""),
        ("echo $EXTERNAL_STORAGE", "/sdcard"),
    ],
)
def test_small_commands(dev: adbutils.AdbDevice, command: str, expected: str) -> None:
    assert dev.shell(command) == expected


def _v2_packets(conn: adbutils.AdbConnection) -> list[tuple[int, bytes]]:
    packets = []
    while True:
        header = conn.read_exact(5)
        size = int.from_bytes(header[1:], "little")
        packets.append((header[0], conn.read_exact(size)))
        if header[0] == 3:
            return packets


@pytest.mark.parametrize("service", ["shell,v2,raw:", "shell,v2,TERM=xterm-256color,raw:", "shell,v2:"])
def test_shell_v2_service_variants(dev: adbutils.AdbDevice, service: str) -> None:
    with dev.open_transport(timeout=5) as conn:
        conn.send_command(service + "echo out; echo err >&2; exit 4")
        conn.check_okay()
        packets = _v2_packets(conn)
    assert packets == [(1, b"out\n"), (2, b"err\n"), (3, b"\x04")]


def test_unknown_service_is_refused(dev: adbutils.AdbDevice) -> None:
    with dev.open_transport(timeout=5) as conn:
        conn.send_command("framebuffer:")
        with pytest.raises(adbutils.AdbError):
            conn.check_okay()


def test_wrapper_pins_the_port(adb_server: AdbServer, tmp_path: Path) -> None:
    wrapper = adb_server.wrapper(tmp_path)
    out = subprocess.run([str(wrapper), "devices"], capture_output=True, text=True, check=True, timeout=10).stdout
    assert out.startswith("List of devices attached")
    explicit = [str(wrapper), "-P", str(adb_server.port), "devices"]
    assert subprocess.run(explicit, capture_output=True, text=True, check=True, timeout=10).stdout == out
