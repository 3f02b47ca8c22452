"""The post script against simulated phones through the real adb server."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from shared.failures import FailureKind
from tests.scripts.conftest import MP4, MakeContext, run_in_thread
from tests.simulator.support import wait_until
from workers.scripts import run_script
from workers.scripts.base import HubEnvironment, ScriptFailure, TaskStopped
from workers.simulator.phone import SimulatedPhone


def _fails(ctx: object, kind: FailureKind) -> ScriptFailure:
    with pytest.raises(ScriptFailure) as caught:
        run_script(ctx)  # type: ignore[arg-type]
    assert caught.value.kind == kind, caught.value.message
    return caught.value


def test_video_to_tiktok(make_ctx: MakeContext, phone: SimulatedPhone, media_root: Path) -> None:
    ctx = make_ctx(
        {"material_list": [str(media_root / "clips/one.mp4")], "captions": "hello world", "upload_wait_time": 0}
    )
    assert run_script(ctx) == "posted video to tiktok as @alice"
    [post] = phone.posts()
    assert (post.platform, post.account, post.kind, post.caption, post.title) == (
        "tiktok",
        "alice",
        "video",
        "hello world",
        "",
    )
    assert phone.read_file(post.files[0]) == (media_root / "clips/one.mp4").read_bytes()
    # the keyboard the user had is back
    assert phone.settings["secure"]["default_input_method"] == "com.android.inputmethod.latin/.LatinIME"


def test_images_title_split_and_emoji(make_ctx: MakeContext, phone: SimulatedPhone, media_root: Path) -> None:
    caption = "Sunday 🐈 vibes##Trois chats, un café ☕️ — 猫 👨‍👩‍👧 #cats\nline two"
    files = [str(media_root / f"cats/cat{i}.jpg") for i in (1, 2, 3)]
    ctx = make_ctx({"content_type": 1, "material_list": files, "captions": caption, "upload_wait_time": 0})
    assert run_script(ctx) == "posted 3 images to tiktok as @alice"
    [post] = phone.posts()
    assert post.kind == "images" and len(post.files) == 3
    assert post.title == "Sunday 🐈 vibes"
    assert post.caption == "Trois chats, un café ☕️ — 猫 👨‍👩‍👧 #cats\nline two"


def test_spintax_is_resolved(make_ctx: MakeContext, phone: SimulatedPhone, media_root: Path) -> None:
    ctx = make_ctx(
        {
            "material_list": [str(media_root / "clips/two.mp4")],
            "captions": "{Hello|Hi|Hey} {world|there} {braces kept}",
            "upload_wait_time": 0,
        }
    )
    run_script(ctx)
    [post] = phone.posts()
    first, second, *rest = post.caption.split(" ")
    assert first in ("Hello", "Hi", "Hey") and second in ("world", "there")
    assert " ".join(rest) == "{braces kept}"


def test_account_switch(make_ctx: MakeContext, phone: SimulatedPhone, media_root: Path) -> None:
    ctx = make_ctx({"material_list": [str(media_root / "clips/one.mp4")], "upload_wait_time": 0}, username="bob")
    assert run_script(ctx).endswith("as @bob")
    assert phone.posts()[0].account == "bob"
    assert phone.app().current == "bob"


def test_unknown_account_is_account_missing(make_ctx: MakeContext, media_root: Path) -> None:
    ctx = make_ctx({"material_list": [str(media_root / "clips/one.mp4")]}, username="mallory")
    _fails(ctx, FailureKind.ACCOUNT_MISSING)


def test_instagram_reel_story_and_carousel(make_ctx: MakeContext, phone: SimulatedPhone, media_root: Path) -> None:
    reel = make_ctx(
        {"material_list": [str(media_root / "clips/one.mp4")], "captions": "reel ✨##not split", "upload_wait_time": 0},
        platform="instagram",
        username="dave",
    )
    assert run_script(reel) == "posted video to instagram reel as @dave"
    story = make_ctx(
        {"material_list": [str(media_root / "clips/two.mp4")], "placement": "story", "upload_wait_time": 0},
        platform="instagram",
    )
    assert run_script(story).endswith("story as @dave")
    carousel = make_ctx(
        {
            "content_type": 1,
            "material_list": [str(media_root / "folder/a.jpg"), str(media_root / "folder/b.jpg")],
            "upload_wait_time": 0,
        },
        platform="instagram",
    )
    run_script(carousel)
    posts = phone.posts()
    assert [(p.placement, p.kind, p.account) for p in posts] == [
        ("reel", "video", "dave"),
        ("story", "video", "dave"),
        ("post", "images", "dave"),
    ]
    assert posts[0].caption == "reel ✨##not split" and posts[0].title == ""


def test_clone_package(make_ctx: MakeContext, phone: SimulatedPhone, media_root: Path) -> None:
    phone.install_clone("com.zhiliaoapp.musically.clone", "tiktok", ["erin"])
    ctx = make_ctx(
        {"material_list": [str(media_root / "clips/one.mp4")], "upload_wait_time": 0},
        username="erin",
        packagename="com.zhiliaoapp.musically.clone",
    )
    assert run_script(ctx) == "posted video to tiktok as @erin"
    [post] = phone.posts()
    assert post.package == "com.zhiliaoapp.musically.clone"


def test_material_library_tags_and_local_folder(make_ctx: MakeContext, phone: SimulatedPhone) -> None:
    run_script(make_ctx({"materials_tags": "dogs", "upload_wait_time": 0}))
    run_script(
        make_ctx(
            {
                "content_type": 1,
                "image_count": 2,
                "material_source": "localFolder",
                "material_path": "folder",
                "upload_wait_time": 0,
            }
        )
    )
    first, second = phone.posts()
    assert phone.read_file(first.files[0]).endswith(b"dog")
    assert sorted(phone.read_file(f)[-1:] for f in second.files) == [b"a", b"b"]
    _fails(make_ctx({"materials_tags": "birds"}), FailureKind.MATERIAL_MISSING)


def test_paths_outside_media_roots_are_refused(make_ctx: MakeContext, media_root: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.mp4"
    secret.write_bytes(MP4)
    os.symlink(secret, media_root / "clips" / "link.mp4")
    for item in (
        str(secret),
        str(media_root / "clips" / ".." / ".." / "secret.mp4"),
        "clips/../../secret.mp4",
        str(media_root / "clips" / "link.mp4"),
        "/etc/passwd",
    ):
        failure = _fails(make_ctx({"material_list": [item]}), FailureKind.PATH_REFUSED)
        assert "outside" in failure.message
    _fails(make_ctx({"material_source": "localFolder", "material_path": str(tmp_path)}), FailureKind.PATH_REFUSED)
    _fails(make_ctx({"material_list": [str(media_root / "clips/none.mp4")]}), FailureKind.MATERIAL_MISSING)
    _fails(make_ctx({"material_list": ["ftp://example.invalid/x.mp4"]}), FailureKind.BAD_CONFIG)


def test_url_download_is_cached(
    make_ctx: MakeContext, phone: SimulatedPhone, env: HubEnvironment, http_files: tuple[str, list[str]]
) -> None:
    base, requests = http_files
    for _ in range(2):
        run_script(make_ctx({"material_list": [f"{base}/clip.mp4"], "upload_wait_time": 0}))
    assert requests.count("/clip.mp4") == 1
    posts = phone.posts()
    assert len(posts) == 2 and phone.read_file(posts[0].files[0]) == MP4 + b"web"
    cached = [p for p in env.media_cache_dir.iterdir() if p.is_file()]
    assert [p.suffix for p in cached] == [".mp4"]
    # no extension in the URL: the type is sniffed from the bytes
    run_script(make_ctx({"material_list": [f"{base}/noext"], "upload_wait_time": 0}))
    _fails(make_ctx({"material_list": [f"{base}/missing.mp4"]}), FailureKind.MATERIAL_MISSING)
    small = HubEnvironment(
        media_roots=env.media_roots, media_cache_dir=env.media_cache_dir / "s", download_max_bytes=100
    )
    _fails(make_ctx({"material_list": [f"{base}/clip.mp4?big"]}, environment=small), FailureKind.MATERIAL_MISSING)


def test_stop_during_upload_wait_lands_within_a_second(
    make_ctx: MakeContext, phone: SimulatedPhone, media_root: Path
) -> None:
    ctx = make_ctx({"material_list": [str(media_root / "clips/one.mp4")], "upload_wait_time": 30})
    thread, outcome = run_in_thread(lambda: run_script(ctx))
    wait_until(lambda: any(message == "posting" for message, _ in ctx.logs), timeout=20, what="posting")
    stopped_at = time.monotonic()
    ctx.stop.set()
    thread.join(5)
    assert isinstance(outcome.get("error"), TaskStopped)
    assert outcome["ended_at"] - stopped_at < 1.0


def test_login_wall_and_ban_are_final(make_ctx: MakeContext, phone: SimulatedPhone, media_root: Path) -> None:
    config = {"material_list": [str(media_root / "clips/one.mp4")], "upload_wait_time": 0}
    phone.inject("login_wall", platform="tiktok")
    _fails(make_ctx(config), FailureKind.LOGIN_WALL)
    phone.clear("login_wall")
    phone.inject("banned", platform="tiktok", account="bob")
    _fails(make_ctx(config, username="bob"), FailureKind.ACCOUNT_BANNED)
    assert run_script(make_ctx(config, username="alice")).endswith("@alice")


def test_crash_is_app_crash(make_ctx: MakeContext, phone: SimulatedPhone, media_root: Path) -> None:
    config = {"material_list": [str(media_root / "clips/one.mp4")], "upload_wait_time": 0}
    phone.inject("crash", platform="tiktok")
    failure = _fails(make_ctx(config), FailureKind.APP_CRASH)
    assert "stopped unexpectedly" in failure.message
    assert phone.crash_dialog is None  # the script closed the dialog
    run_script(make_ctx(config))


def test_unplug_mid_task_is_device_offline(make_ctx: MakeContext, phone: SimulatedPhone, media_root: Path) -> None:
    ctx = make_ctx({"material_list": [str(media_root / "clips/one.mp4")], "upload_wait_time": 1})
    thread, outcome = run_in_thread(lambda: run_script(ctx))
    wait_until(lambda: any(message == "posting" for message, _ in ctx.logs), timeout=20, what="posting")
    phone.unplug()
    thread.join(15)
    error = outcome.get("error")
    assert isinstance(error, ScriptFailure) and error.kind == FailureKind.DEVICE_OFFLINE, error
    # and a new task on the unplugged phone fails the same retryable way
    _fails(make_ctx({"material_list": [str(media_root / "clips/one.mp4")]}), FailureKind.DEVICE_OFFLINE)


def test_hang_is_timeout(make_ctx: MakeContext, phone: SimulatedPhone, media_root: Path) -> None:
    from workers.scripts._device import DeviceSession

    ctx = make_ctx({"material_list": [str(media_root / "clips/one.mp4")]})
    phone.inject("hang")
    try:
        with pytest.raises(ScriptFailure) as caught:
            DeviceSession(ctx, command_timeout=0.5).sh("echo hi")
        assert caught.value.kind == FailureKind.TIMEOUT
    finally:
        phone.clear("hang")


def test_bad_configs(make_ctx: MakeContext, media_root: Path) -> None:
    _fails(make_ctx({"content_type": 3}), FailureKind.BAD_CONFIG)
    _fails(make_ctx({"material_list": [str(media_root / "cats/cat1.jpg")]}), FailureKind.BAD_CONFIG)
    _fails(
        make_ctx({"material_list": [str(media_root / "clips/one.mp4")], "post_way": "useSound"}), FailureKind.BAD_CONFIG
    )


def test_add_button_with_custom_sound_and_volumes(
    make_ctx: MakeContext, phone: SimulatedPhone, media_root: Path
) -> None:
    files = [str(media_root / "cats/cat1.jpg"), str(media_root / "cats/cat2.jpg")]
    config = {"content_type": 1, "material_list": files, "post_way": "addButton", "add_sound": "custom",
              "custom_sound_keyword": "lofi", "origin_sound_volume": 30, "add_sound_volume": 80,
              "sound_wait_time": 0, "captions": "via the + button", "upload_wait_time": 0}  # fmt: skip
    assert run_script(make_ctx(config)) == "posted 2 images to tiktok as @alice"
    [post] = phone.posts()
    assert (post.sound, post.original_volume, post.added_volume) == ("Lofi beats to study to", 30, 80)
    assert len(post.files) == 2 and post.caption == "via the + button"


def test_named_sound_and_missing_sound(make_ctx: MakeContext, phone: SimulatedPhone, media_root: Path) -> None:
    video = [str(media_root / "clips/one.mp4")]
    config = {"material_list": video, "add_sound": 1, "sound_name": "Flowers", "sound_wait_time": 0,
              "upload_wait_time": 0}  # fmt: skip
    run_script(make_ctx(config))
    assert phone.posts()[0].sound == "Flowers - Miley Cyrus"
    _fails(make_ctx({**config, "sound_name": "no such tune"}), FailureKind.MATERIAL_MISSING)
    _fails(make_ctx({**config, "post_way": "addButton"}, platform="instagram"), FailureKind.BAD_CONFIG)
