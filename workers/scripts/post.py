"""``post``: publish a video or images on TikTok or Instagram, the way a person would.

Steps, with a stop checkpoint between each: validate the config; find the materials on the hub;
launch the app fresh and switch to the task's account; push the files to
``/sdcard/DCIM/phonefleet/`` and have the media scanner index them; open the app's share activity
with their content:// URIs; walk the editor to the caption screen; type the caption (spintax resolved;
TikTok's ``title##description`` split) through ADBKeyBoard; post; wait for the app's confirmation,
at most ``upload_wait_time`` (the upload) plus ``confirm_timeout`` (a phonefleet extension of
script_config) seconds.

Screens are found through ``selectors/<platform>.json``.
"""

from __future__ import annotations

import random
import time

from pydantic import ValidationError

from shared.failures import FailureKind
from shared.scripts import DEFAULT_PACKAGES, PostConfig
from workers.scripts._app import AppDriver
from workers.scripts._caption import resolve_spintax, split_title
from workers.scripts._device import DeviceSession
from workers.scripts._materials import Material, file_digest, resolve_materials
from workers.scripts._ui import load_selectors
from workers.scripts.base import ScriptContext, ScriptFailure

SCRIPT_NAME = "post"
REMOTE_DIR = "/sdcard/DCIM/phonefleet"
_SCAN_SECONDS = 15.0


def _config(ctx: ScriptContext) -> PostConfig:
    try:
        return PostConfig.model_validate(ctx.spec.script_config)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "script_config"
        raise ScriptFailure(FailureKind.BAD_CONFIG, f"{where}: {first['msg']}") from exc


def _unsupported(config: PostConfig, platform: str) -> str | None:
    """Options of TikMatrix's table this script cannot carry out yet (failing beats ignoring them)."""
    if config.post_way == "useSound":
        return "post_way 'useSound' (only 'share' and, on TikTok, 'addButton' are implemented)"
    if platform == "instagram" and config.post_way == "addButton":
        return "post_way 'addButton' on Instagram (only 'share' is implemented there)"
    if platform == "instagram" and config.add_sound in ("1", "custom"):
        return f"add_sound {config.add_sound!r} on Instagram (sounds are implemented for TikTok)"
    if platform == "tiktok" and config.add_product_link == 1:
        return "add_product_link 1 (product links are not implemented)"
    return None


def _publish_media(session: DeviceSession, material: Material) -> tuple[str, str]:
    """Push one file (skipped when the phone already has it); return its content:// URI and name."""
    sha256, md5 = file_digest(material.path)
    name = f"{sha256[:20]}{material.extension}"
    remote = f"{REMOTE_DIR}/{name}"
    present = session.sh(["md5sum", remote])
    if not (present.ok and present.stdout.split()[:1] == [md5]):
        session.check(["mkdir", "-p", REMOTE_DIR])
        session.push(material.path, remote)
        check = session.check(["md5sum", remote])
        if check.stdout.split()[:1] != [md5]:
            raise ScriptFailure(FailureKind.DEVICE_OFFLINE, f"{remote}: pushed file is corrupt")
    session.check(["am", "broadcast", "-a", "android.intent.action.MEDIA_SCANNER_SCAN_FILE", "-d", f"file://{remote}"])
    table = "video" if material.kind == "video" else "images"
    base = f"content://media/external/{table}/media"
    deadline = time.monotonic() + _SCAN_SECONDS
    while True:
        # The scanner works in the background on a real phone: poll for the row.
        rows = session.check(
            ["content", "query", "--uri", base, "--projection", "_id", "--where", f"_display_name='{name}'"]
        ).stdout
        for line in rows.splitlines():
            if line.startswith("Row:") and "_id=" in line:
                media_id = line.split("_id=", 1)[1].split(",", 1)[0].strip()
                if media_id.isdigit():
                    return f"{base}/{media_id}", name
        if time.monotonic() > deadline:
            raise ScriptFailure(FailureKind.TIMEOUT, f"{remote}: the media scanner did not index it")
        session.ctx.sleep(0.3)


def run(ctx: ScriptContext) -> str:
    """Publish the post; returns e.g. ``posted video to tiktok as @alice``."""
    spec = ctx.spec
    config = _config(ctx)
    platform = spec.platform or config.platform or "tiktok"
    if platform not in DEFAULT_PACKAGES:
        raise ScriptFailure(FailureKind.BAD_CONFIG, f"unknown platform {platform!r}")
    missing_feature = _unsupported(config, platform)
    if missing_feature:
        raise ScriptFailure(FailureKind.BAD_CONFIG, f"not supported by phonefleet's post script: {missing_feature}")
    package = spec.packagename or DEFAULT_PACKAGES[platform]
    selectors = load_selectors(platform)
    confirm_timeout = float(getattr(config, "confirm_timeout", None) or selectors.confirm_seconds)
    ctx.checkpoint()

    materials = resolve_materials(config, ctx.env, seed=spec.task_id, between_chunks=ctx.checkpoint)
    kind = materials[0].kind
    ctx.log("materials resolved", files=[str(m.path) for m in materials], kind=kind)

    rng = random.Random(f"{spec.task_id}")  # same caption on every attempt of the task
    caption = resolve_spintax(config.captions, rng)
    title, description = split_title(caption) if platform == "tiktok" else ("", caption)

    session = DeviceSession(ctx)
    ctx.checkpoint()
    if not session.package_installed(package):
        raise ScriptFailure(FailureKind.BAD_CONFIG, f"{package} is not installed on {spec.serial}")
    app = AppDriver(session, selectors, package)
    version = app.installed_version()
    if version and selectors.versions and version not in selectors.versions:
        ctx.log("app version differs from the selector file", installed=version, written_for=selectors.versions)

    app.restart(spec.username)
    ctx.checkpoint()
    if spec.username:
        app.switch_account(spec.username)
        account = spec.username
    else:
        account = app.current_account()
    ctx.log("account ready", account=account, package=package)

    published = [_publish_media(session, material) for material in materials]
    uris = [uri for uri, _ in published]
    names = [name for _, name in published]
    ctx.log("media on the phone", uris=uris)
    ctx.checkpoint()

    if config.post_way == "addButton":
        app.pick_in_gallery(names)
    else:
        mime = materials[0].mime if len(materials) == 1 else f"{'video' if kind == 'video' else 'image'}/*"
        app.share(uris, mime)
    if platform == "instagram":
        app.wait_for("share_choice")
        choice = "choose_story" if config.placement == "story" else "choose_reel" if kind == "video" else "choose_post"
        app.tap(choice)
    app.wait_for("editor")
    if config.add_sound in ("1", "custom"):
        query = config.custom_sound_keyword if config.add_sound == "custom" else config.sound_name
        sound = app.add_sound(query, config.sound_name if config.add_sound == "1" else "")
        ctx.log("sound added", sound=sound)
        if config.sound_wait_time:
            ctx.sleep(config.sound_wait_time)  # the app downloads the sound meanwhile
        app.set_volumes(config.origin_sound_volume, config.add_sound_volume)
    ctx.checkpoint()
    app.tap("editor_next")
    app.wait_for("publish")
    ctx.checkpoint()
    if title:
        app.type_text("title_field", title)
    if description:
        app.type_text("caption_field", description)
    ctx.checkpoint()
    app.tap("post_button")
    ctx.log("posting", upload_wait_time=config.upload_wait_time)
    # upload_wait_time bounds the upload; the phone is released as soon as the app confirms the post.
    app.wait_for("posted", timeout=config.upload_wait_time + confirm_timeout)

    what = "video" if kind == "video" else f"{len(materials)} image{'s' if len(materials) > 1 else ''}"
    where = platform if platform == "tiktok" else f"instagram {config.placement}"
    return f"posted {what} to {where} as @{account}"
