"""Screenshots, UI dumps and input routing."""

from __future__ import annotations

import xml.etree.ElementTree as ET  # the XML is our own simulator's

import adbutils

from workers.simulator.phone import SimulatedPhone


def test_screenshot_is_a_real_png_of_the_screen_size(dev: adbutils.AdbDevice) -> None:
    image = dev.screenshot(error_ok=False)
    assert image.size == (1080, 2400)
    raw = dev.shell("screencap -p", encoding=None)
    assert isinstance(raw, bytes) and raw.startswith(b"\x89PNG\r\n\x1a\n")


def test_screenshot_at_another_resolution(adb_server: object, fleet: object) -> None:
    from tests.simulator.support import device, fresh_phone
    from workers.adb.server import AdbServer
    from workers.simulator.fleet import Fleet

    assert isinstance(adb_server, AdbServer) and isinstance(fleet, Fleet)
    for small in fresh_phone(fleet, width=720, height=1600):
        d = device(adb_server, small)
        assert d.window_size() == (720, 1600)
        assert d.screenshot(error_ok=False).size == (720, 1600)


def test_uiautomator_dump_parses(dev: adbutils.AdbDevice) -> None:
    xml = dev.dump_hierarchy()
    root = ET.fromstring(xml)  # noqa: S314
    assert root.tag == "hierarchy"
    nodes = list(root.iter("node"))
    assert any(node.get("text") == "TikTok" and node.get("clickable") == "true" for node in nodes)
    for node in nodes:
        assert node.get("bounds", "").startswith("[")
    tty = dev.shell("uiautomator dump /dev/tty")
    assert tty.startswith("<?xml") and tty.endswith("UI hierchary dumped to: /dev/tty")
    default = dev.shell("uiautomator dump")
    assert default == "UI hierchary dumped to: /sdcard/window_dump.xml"
    ET.fromstring(dev.sync.read_text("/sdcard/window_dump.xml"))  # noqa: S314


def _center(xml: str, **attrs: str) -> tuple[int, int]:
    for node in ET.fromstring(xml).iter("node"):  # noqa: S314
        if all(node.get(k.replace("_", "-")) == v for k, v in attrs.items()):
            left, top, right, bottom = (
                int(v) for v in node.get("bounds", "").replace("][", ",").strip("[]").split(",")
            )
            return (left + right) // 2, (top + bottom) // 2
    raise AssertionError(f"no node {attrs}")


def test_tap_on_launcher_icon_opens_the_app(dev: adbutils.AdbDevice, phone: SimulatedPhone) -> None:
    x, y = _center(dev.dump_hierarchy(), text="Instagram")
    dev.click(x, y)
    assert dev.app_current().package == "com.instagram.android"
    assert phone.screen_name("com.instagram.android") == "home"
    dev.keyevent("KEYCODE_BACK")
    assert dev.app_current().package == "com.google.android.apps.nexuslauncher"


def test_input_text_only_types_ascii(dev: adbutils.AdbDevice, phone: SimulatedPhone) -> None:
    phone.push_file("/sdcard/DCIM/v.mp4", b"\x00\x00\x00\x18ftypmp42")
    dev.shell("am broadcast -a android.intent.action.MEDIA_SCANNER_SCAN_FILE -d file:///sdcard/DCIM/v.mp4")
    row = dev.shell("content query --uri content://media/external/video/media --projection _id:_data")
    media_id = row.split("_id=")[1].split(",")[0]
    assert "_data=/storage/emulated/0/DCIM/v.mp4" in row
    dev.shell(
        [
            "am",
            "start",
            "-a",
            "android.intent.action.SEND",
            "-t",
            "video/mp4",
            "--eu",
            "android.intent.extra.STREAM",
            f"content://media/external/video/media/{media_id}",
            "-n",
            "com.zhiliaoapp.musically/com.ss.android.ugc.aweme.share.SystemShareActivity",
        ]
    )
    dev.click(*_center(dev.dump_hierarchy(), resource_id="com.zhiliaoapp.musically:id/editor_next"))
    dev.click(*_center(dev.dump_hierarchy(), resource_id="com.zhiliaoapp.musically:id/publish_description"))
    dev.shell(["input", "text", "hi%sthere-é😀!"])
    draft = phone.app().draft
    assert draft is not None and draft.caption == "hi there-!"
