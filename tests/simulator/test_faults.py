"""Each fault a phone can be told to show, as adb and the screen see it."""

from __future__ import annotations

import time

import adbutils
import pytest

from tests.simulator.support import wait_until
from workers.adb.server import AdbServer
from workers.simulator.fleet import Fleet
from workers.simulator.phone import SimulatedPhone


def test_unplug_refuses_reconnection_until_replug(adb_server: AdbServer, fleet: Fleet, phone: SimulatedPhone) -> None:
    fleet.unplug(phone.serial)
    wait_until(lambda: fleet.adb_states().get(phone.serial) != "device", what="not a device any more")
    assert not phone.online
    # adb itself cannot bring it back while it is unplugged
    adb_server.run("connect", phone.serial)
    time.sleep(0.3)  # a negative check: give adb a moment to (fail to) reconnect
    assert fleet.adb_states().get(phone.serial) != "device"
    result = adb_server.run("-s", phone.serial, "shell", "echo", "x")
    assert result.returncode != 0
    with pytest.raises(adbutils.AdbError):
        adb_server.client().device(phone.serial).shell2("echo x", timeout=3, v2=True)
    fleet.replug(phone.serial)
    assert fleet.adb_states()[phone.serial] == "device"
    assert adb_server.run("-s", phone.serial, "shell", "echo", "back").stdout == "back\n"


def test_hang_stops_answering_then_recovers(dev: adbutils.AdbDevice, phone: SimulatedPhone, fleet: Fleet) -> None:
    phone.inject("hang")
    started = time.monotonic()
    with pytest.raises(adbutils.AdbTimeout):
        dev.shell2("echo hi", timeout=0.5, v2=True)
    assert time.monotonic() - started < 3
    assert fleet.adb_states()[phone.serial] == "device"  # the socket is still open: adb does not notice
    phone.clear("hang")
    assert dev.shell2("echo hi", timeout=5, v2=True).stdout == "hi\n"


def test_crash_lands_on_keeps_stopping_dialog(dev: adbutils.AdbDevice, phone: SimulatedPhone) -> None:
    dev.app_start("com.zhiliaoapp.musically")
    phone.inject("crash", platform="tiktok")
    assert dev.app_current().package == "com.zhiliaoapp.musically"  # nothing happens until it is used
    dev.click(540, 1200)
    xml = dev.dump_hierarchy()
    assert "TikTok keeps stopping" in xml and 'resource-id="android:id/aerr_close"' in xml
    assert "Application Error" in dev.shell("dumpsys window | grep mCurrentFocus")
    dev.keyevent("KEYCODE_BACK")
    assert dev.app_current().package == "com.google.android.apps.nexuslauncher"
    dev.app_start("com.zhiliaoapp.musically")  # crashes only once
    assert dev.app_current().package == "com.zhiliaoapp.musically"


def test_login_wall_and_ban_screens(dev: adbutils.AdbDevice, phone: SimulatedPhone) -> None:
    phone.inject("login_wall", platform="instagram")
    dev.app_start("com.instagram.android")
    assert 'resource-id="com.instagram.android:id/login_button"' in dev.dump_hierarchy()
    phone.clear("login_wall")
    assert "login_button" not in dev.dump_hierarchy()
    phone.inject("banned", platform="instagram")
    assert "We suspended your account" in dev.dump_hierarchy()
    assert phone.faults() == {"banned": {"com.instagram.android": ["carol"]}}
    phone.clear()
    assert phone.faults() == {}


def test_app_logged_out_shows_login(dev: adbutils.AdbDevice, phone: SimulatedPhone) -> None:
    phone.remove_account("alice")
    phone.remove_account("bob")
    dev.app_start("com.zhiliaoapp.musically")
    assert "Log in to TikTok" in dev.dump_hierarchy()
