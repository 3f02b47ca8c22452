"""The selector files (the script's belief) against the simulator's own screens (the app): every
selector must match something on the screen it is meant for."""

from __future__ import annotations

import time

import pytest

from workers.scripts._ui import Screen, load_selectors
from workers.simulator.apps import Canvas, InstagramApp, SocialApp, TikTokApp
from workers.simulator.phone import SimulatedPhone
from workers.simulator.ui import hierarchy_xml


def _screen(app: SocialApp) -> Screen:
    return Screen(hierarchy_xml(app.render(Canvas(1080, 2400), time.monotonic())), app.package)


def _walk(app: SocialApp, kind: str) -> dict[str, Screen]:
    """Drive the app model through every screen; return the screens by name."""
    seen: dict[str, Screen] = {}
    app.add_account("alice")
    app.add_account("bob")
    app.launch()
    seen["home"] = _screen(app)
    if app.platform == "tiktok":
        app.gallery_source = lambda: [("/storage/emulated/0/DCIM/a.mp4", kind)]
        app.handle("create", 0)
        seen["camera"] = _screen(app)
        app.handle("open_gallery", 0)
        seen["gallery"] = _screen(app)
        app.handle("nav:home", 0)
    app.handle("nav:profile", 0)
    seen["profile"] = _screen(app)
    app.handle("open_switcher", 0)
    seen["switcher"] = _screen(app)
    app.handle("close_switcher", 0)
    app.share(kind, ["/storage/emulated/0/x"])
    if app.platform == "instagram":
        seen["share_choice"] = _screen(app)
        app.handle("choose:reel" if kind == "video" else "choose:post", 0)
    seen["editor"] = _screen(app)
    if app.platform == "tiktok":
        app.handle("open_sounds", 0)
        seen["sounds"] = _screen(app)
        app.handle("sound:Flowers - Miley Cyrus", 0)
        app.handle("open_volume", 0)
        seen["volume"] = _screen(app)
        app.handle("volume_done", 0)
    app.handle("next", 0)
    seen["publish"] = _screen(app)
    app.upload_seconds = 1000
    app.handle("post", time.monotonic())
    seen["uploading"] = _screen(app)
    app.tick(time.monotonic() + 2000)
    seen["posted"] = _screen(app)
    app.media_error()
    seen["media_error"] = _screen(app)
    app.login_wall = True
    seen["login_wall"] = _screen(app)
    app.login_wall = False
    app.banned.add("alice")
    seen["banned"] = _screen(app)
    return seen


WHERE = {
    "home": "home",
    "profile_tab": "home",
    "account_switch": "profile",
    "switcher_sheet": "switcher",
    "switcher_account_name": "switcher",
    "share_choice": "share_choice",
    "editor": "editor",
    "editor_next": "editor",
    "publish": "publish",
    "title_field": "publish",
    "caption_field": "publish",
    "post_button": "publish",
    "uploading": "uploading",
    "posted": "posted",
    "media_error": "media_error",
    "media_error_ok": "media_error",
    "login_wall": "login_wall",
    "banned": "banned",
    "banned_account": "banned",
    "banned_switch_account": "banned",
}


# TikTok's create-button path, sound picker and volume panel
WHERE.update(
    {
        "create_button": "home",
        "camera": "camera",
        "camera_upload": "camera",
        "gallery": "gallery",
        "gallery_item": "gallery",
        "gallery_next": "gallery",
        "add_sound": "editor",
        "volume_button": "editor",
        "sounds": "sounds",
        "sound_search": "sounds",
        "sound_item": "sounds",
        "volume_panel": "volume",
        "volume_original": "volume",
        "volume_added": "volume",
        "volume_done": "volume",
    }
)


@pytest.mark.parametrize(("platform", "app_class"), [("tiktok", TikTokApp), ("instagram", InstagramApp)])
@pytest.mark.parametrize("package", [None, "clone.package.name"])
def test_every_selector_matches_its_screen(platform: str, app_class: type[SocialApp], package: str | None) -> None:
    selectors = load_selectors(platform)
    for kind in ("video", "images"):
        app = app_class(package) if package else app_class()  # type: ignore[call-arg]
        screens = _walk(app, kind)
        for name, spec in selectors.selectors.items():
            where = WHERE.get(name)
            if where is None or where not in screens:
                continue
            assert screens[where].has(spec), f"{platform}: selector {name} not on {where} ({kind})"
        # and the screens that must not be confused with each other are not
        assert not screens["home"].has(selectors.get("posted"))
        assert not screens["editor"].has(selectors.get("publish"))
        assert not screens["publish"].has(selectors.get("editor"))
    assert app.has_activity(selectors.activities["share"])
    assert app.has_activity(selectors.activities["launcher"])


def test_photo_mode_and_choices() -> None:
    tiktok = load_selectors("tiktok")
    app = TikTokApp()
    app.add_account("a")
    app.share("images", ["/x", "/y"])
    assert _screen(app).has(tiktok.get("photo_mode"))
    instagram = load_selectors("instagram")
    ig = InstagramApp()
    ig.add_account("a")
    ig.share("images", ["/x"])
    screen = _screen(ig)
    assert screen.has(instagram.get("choose_post")) and screen.has(instagram.get("choose_story"))
    assert not screen.has(instagram.get("choose_reel"))


def test_crash_dialog_selectors() -> None:
    phone = SimulatedPhone(tiktok_accounts=["a"])
    phone.inject("crash")
    phone.launch("com.zhiliaoapp.musically")
    screen = Screen(phone.dump_xml(), "com.zhiliaoapp.musically")
    for platform in ("tiktok", "instagram"):
        selectors = load_selectors(platform)
        assert screen.has(selectors.get("crash_dialog")) and screen.has(selectors.get("crash_close"))
