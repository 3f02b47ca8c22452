"""One simulated phone: device state, the apps, the faults, and the adbd in front of them.

All state sits behind one re-entrant lock, so the asyncio loop that serves adb and any other thread
(tests, the control server) may call the public methods. Nothing awaits while holding the lock.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import posixpath
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from workers.simulator.adbd import Adbd, Service
from workers.simulator.apps import Canvas, InstagramApp, SocialApp, TikTokApp
from workers.simulator.fs import FileNode, FileSystem, FsError, normalize
from workers.simulator.models import AppInfo, Fault, FileEntry, PhoneInfo, PostRecord
from workers.simulator.ui import Node, hierarchy_xml, render_png

LAUNCHER = "com.google.android.apps.nexuslauncher"
LATIN_IME = "com.android.inputmethod.latin/.LatinIME"
ADB_IME = "com.android.adbkeyboard/.AdbIME"
ADB_KEYBOARD = "com.android.adbkeyboard"
FEATURES = "shell_v2,cmd,stat_v2,ls_v2,fixed_push_mkdir"

_SYSTEM_PACKAGES = (
    "android",
    "com.android.systemui",
    "com.android.settings",
    "com.android.providers.media",
    "com.android.vending",
    "com.google.android.gms",
    "com.android.chrome",
    "com.android.inputmethod.latin",
    LAUNCHER,
)

KEYCODES: dict[str, int] = {
    "HOME": 3,
    "BACK": 4,
    "DPAD_UP": 19,
    "DPAD_DOWN": 20,
    "POWER": 26,
    "TAB": 61,
    "SPACE": 62,
    "ENTER": 66,
    "DEL": 67,
    "MENU": 82,
    "ESCAPE": 111,
    "APP_SWITCH": 187,
    "SLEEP": 223,
    "WAKEUP": 224,
}


@dataclass
class MediaEntry:
    """A row of the media store (what a media scan adds)."""

    id: int
    path: str
    mime: str
    volume_kind: str  # "video" | "images" | "audio" | "file"
    date_added: int = field(default_factory=lambda: int(time.time()))

    @property
    def uri(self) -> str:
        """The row's content:// URI, as MediaStore hands it out."""
        if self.volume_kind == "file":
            return f"content://media/external/file/{self.id}"
        return f"content://media/external/{self.volume_kind}/media/{self.id}"


MIME_BY_EXT: dict[str, str] = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
    ".webm": "video/webm",
    ".3gp": "video/3gpp",
    ".mkv": "video/x-matroska",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".heic": "image/heic",
    ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4",
}


@dataclass
class Intent:
    """What ``am start`` / ``am broadcast`` was asked for."""

    action: str | None = None
    data: str | None = None
    mime: str | None = None
    component: str | None = None  # "pkg/activity"
    package: str | None = None
    categories: list[str] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)
    flags: int = 0

    def describe(self) -> str:
        """``Intent { act=... }`` the way am prints it."""
        parts = []
        if self.action:
            parts.append(f"act={self.action}")
        if self.categories:
            parts.append("cat=[" + ",".join(self.categories) + "]")
        if self.data:
            parts.append(f"dat={self.data}")
        if self.mime:
            parts.append(f"typ={self.mime}")
        if self.flags:
            parts.append(f"flg={self.flags:#x}")
        if self.package and not self.component:
            parts.append(f"pkg={self.package}")
        if self.component:
            parts.append(f"cmp={self.component}")
        if self.extras:
            parts.append("(has extras)")
        return "Intent { " + " ".join(parts) + " }"


class SimulatedPhone:
    """A phone with TikTok and Instagram installed, reachable by the real adb server once started."""

    def __init__(
        self,
        *,
        model: str | None = None,
        width: int = 1080,
        height: int = 2400,
        sdk: int = 33,
        tiktok_accounts: Iterable[str] = (),
        instagram_accounts: Iterable[str] = (),
        adb_keyboard: bool = True,
        upload_seconds: float = 1.0,
    ) -> None:
        # Unique across processes too: a hub may see phones of several simulators.
        serialno = "SIM" + uuid.uuid4().hex[:12].upper()
        self.lock = threading.RLock()
        self.model = model or "Pixel_7"
        self.width = width
        self.height = height
        self.serial = ""
        self.port = 0
        self.fs = FileSystem()
        self.props: dict[str, str] = {
            "ro.product.model": self.model.replace("_", " "),
            "ro.product.name": "panther",
            "ro.product.device": "panther",
            "ro.product.brand": "google",
            "ro.product.manufacturer": "Google",
            "ro.build.version.sdk": str(sdk),
            "ro.build.version.release": {33: "13", 34: "14", 35: "15"}.get(sdk, "13"),
            "ro.build.type": "user",
            "ro.debuggable": "0",
            "ro.serialno": serialno,
            "ro.boot.serialno": serialno,
            "ro.product.cpu.abi": "arm64-v8a",
            "sys.boot_completed": "1",
            "persist.sys.timezone": "UTC",
            "service.adb.tcp.port": "5555",
        }
        self.settings: dict[str, dict[str, str]] = {
            "system": {"screen_brightness": "128", "screen_brightness_mode": "1", "screen_off_timeout": "600000"},
            "secure": {
                "default_input_method": LATIN_IME,
                "enabled_input_methods": LATIN_IME,
                "android_id": uuid.uuid4().hex[:16],
            },
            "global": {"airplane_mode_on": "0", "adb_enabled": "1", "stay_on_while_plugged_in": "7"},
        }
        self.packages: set[str] = set(_SYSTEM_PACKAGES)
        if adb_keyboard:
            self.packages.add(ADB_KEYBOARD)
        self.apps: dict[str, SocialApp] = {}
        self.install_app(TikTokApp(upload_seconds=upload_seconds))
        self.install_app(InstagramApp(upload_seconds=upload_seconds))
        for name in tiktok_accounts:
            self.apps["com.zhiliaoapp.musically"].add_account(name)
        for name in instagram_accounts:
            self.apps["com.instagram.android"].add_account(name)
        self.media: dict[str, MediaEntry] = {}
        self._media_ids = itertools.count(1000)
        self.foreground: str | None = None  # an app package, or None for the launcher
        self.crash_dialog: str | None = None  # package whose "keeps stopping" dialog is up
        self.screen_on = True
        self.typed_log: list[str] = []  # every text that reached a field, for debugging
        # faults
        self.unplugged = False
        self.hung = False
        self.bytes_per_second: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._awake: asyncio.Event | None = None
        self.adbd = Adbd(self)

    # ================================================================= lifecycle on the loop
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Start listening (inside the loop that will serve it); returns the serial ``host:port``."""
        self._loop = asyncio.get_running_loop()
        self._awake = asyncio.Event()
        if not self.hung:
            self._awake.set()
        self.port = await self.adbd.listen(host, port)
        self.serial = f"{host}:{self.port}"
        return self.serial

    async def stop(self) -> None:
        """Stop listening and drop every transport."""
        await self.adbd.close()

    def _on_loop(self, callback: Any, *args: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            callback(*args)
        else:
            loop.call_soon_threadsafe(callback, *args)

    # ================================================================= DeviceHost protocol
    def banner(self) -> bytes:
        """The CNXN banner: what ``adb devices -l`` shows, and the features the client may use."""
        props = "".join(
            f"{key}={self.props[key]};" for key in ("ro.product.name", "ro.product.model", "ro.product.device")
        )
        return f"device::{props}features={FEATURES}".encode()

    def accepting(self) -> bool:
        """False while unplugged."""
        return not self.unplugged

    async def wait_awake(self) -> None:
        """Block while a hang fault is set."""
        awake = self._awake
        if awake is not None and not awake.is_set():
            await awake.wait()

    def open_service(self, name: str) -> Service | None:
        """Map an OPEN'd service name to its handler."""
        from workers.simulator import services

        return services.resolve(self, name)

    async def throttle(self, size: int) -> None:
        """Pace a sync transfer of ``size`` bytes when the slow-transfer fault is set."""
        rate = self.bytes_per_second
        if rate:
            await asyncio.sleep(size / rate)

    # ================================================================= faults
    def inject(self, fault: Fault | str, **params: Any) -> None:
        """Turn a fault on. ``slow`` takes ``bytes_per_second``; app faults take ``package`` or
        ``platform`` (default TikTok); ``banned`` takes ``account`` (default: the current one)."""
        kind = Fault(fault)
        with self.lock:
            if kind is Fault.UNPLUG:
                self.unplugged = True
                self._on_loop(self.adbd.drop_connections)
            elif kind is Fault.HANG:
                self.hung = True
                self._on_loop(self._set_awake, False)
            elif kind is Fault.SLOW:
                self.bytes_per_second = max(1, int(params.get("bytes_per_second", 64 * 1024)))
            else:
                app = self.app(params.get("package"), params.get("platform"))
                if kind is Fault.CRASH:
                    app.crash_pending = True
                elif kind is Fault.LOGIN_WALL:
                    app.login_wall = True
                elif kind is Fault.BANNED:
                    account = params.get("account") or app.current
                    if account:
                        app.banned.add(str(account))

    def clear(self, fault: Fault | str | None = None, **params: Any) -> None:
        """Turn one fault (or, with None, every fault) off. Clearing ``unplug`` is a replug."""
        kinds = list(Fault) if fault is None else [Fault(fault)]
        with self.lock:
            for kind in kinds:
                if kind is Fault.UNPLUG:
                    self.unplugged = False
                elif kind is Fault.HANG:
                    self.hung = False
                    self._on_loop(self._set_awake, True)
                elif kind is Fault.SLOW:
                    self.bytes_per_second = None
                else:
                    targets = (
                        [self.app(params.get("package"), params.get("platform"))]
                        if fault is not None and (params.get("package") or params.get("platform"))
                        else list(self.apps.values())
                    )
                    for app in targets:
                        if kind is Fault.CRASH:
                            app.crash_pending = False
                        elif kind is Fault.LOGIN_WALL:
                            app.login_wall = False
                        elif kind is Fault.BANNED:
                            if params.get("account"):
                                app.banned.discard(str(params["account"]))
                            else:
                                app.banned.clear()

    def _set_awake(self, awake: bool) -> None:
        if self._awake is not None:
            if awake:
                self._awake.set()
            else:
                self._awake.clear()

    def unplug(self) -> None:
        """Pull the cable: the transport drops and reconnections are refused until :meth:`replug`."""
        self.inject(Fault.UNPLUG)

    def replug(self) -> None:
        """Plug back in: connections are accepted again (the fleet then reattaches it to adb)."""
        self.clear(Fault.UNPLUG)

    def faults(self) -> dict[str, Any]:
        """The faults now set, for the control API."""
        with self.lock:
            found: dict[str, Any] = {}
            if self.unplugged:
                found["unplug"] = True
            if self.hung:
                found["hang"] = True
            if self.bytes_per_second:
                found["slow"] = {"bytes_per_second": self.bytes_per_second}
            for app in self.apps.values():
                if app.crash_pending:
                    found.setdefault("crash", []).append(app.package)
                if app.login_wall:
                    found.setdefault("login_wall", []).append(app.package)
                if app.banned:
                    found.setdefault("banned", {})[app.package] = sorted(app.banned)
            return found

    @property
    def online(self) -> bool:
        """True while an adb server holds a handshaken transport to this phone."""
        return self.adbd.online

    # ================================================================= apps & accounts
    def install_app(self, app: SocialApp) -> SocialApp:
        """Install a social app (a clone is the same app under another package name)."""
        with self.lock:
            app.gallery_source = self._gallery
            self.apps[app.package] = app
            self.packages.add(app.package)
            return app

    def install_clone(self, package: str, platform: str, accounts: Iterable[str] = ()) -> SocialApp:
        """Install a clone of TikTok or Instagram under ``package``."""
        app: SocialApp = TikTokApp(package) if platform == "tiktok" else InstagramApp(package)
        for name in accounts:
            app.add_account(name)
        return self.install_app(app)

    def app(self, package: str | None = None, platform: str | None = None) -> SocialApp:
        """The app of a package, or the default app of a platform (TikTok if neither is given)."""
        with self.lock:
            if package:
                return self.apps[package]
            default = "com.instagram.android" if platform == "instagram" else "com.zhiliaoapp.musically"
            return self.apps[default]

    def add_account(
        self, username: str, *, package: str | None = None, platform: str | None = None, current: bool = False
    ) -> None:
        """Log an account into an app (it appears in the switcher; first one becomes current)."""
        with self.lock:
            self.app(package, platform).add_account(username, make_current=current)

    def remove_account(self, username: str, *, package: str | None = None, platform: str | None = None) -> None:
        """Log an account out of an app."""
        with self.lock:
            self.app(package, platform).remove_account(username)

    def set_upload_seconds(self, seconds: float) -> None:
        """How long every app's uploads take from now on."""
        with self.lock:
            for app in self.apps.values():
                app.upload_seconds = seconds

    def posts(self) -> list[PostRecord]:
        """Every post published from this phone, oldest first."""
        with self.lock:
            now = time.monotonic()
            found: list[PostRecord] = []
            for app in self.apps.values():
                app.tick(now)
                found.extend(app.posts)
            return sorted(found, key=lambda post: post.id)

    def app_infos(self) -> list[AppInfo]:
        """The installed social apps, for the control API."""
        with self.lock:
            now = time.monotonic()
            for app in self.apps.values():
                app.tick(now)
            return [app.info() for app in self.apps.values()]

    def info(self) -> PhoneInfo:
        """A snapshot of this phone for the control API."""
        with self.lock:
            return PhoneInfo(
                serial=self.serial,
                port=self.port,
                model=self.props["ro.product.model"],
                online=self.online,
                faults=self.faults(),
                foreground=self.current_focus()[0],
                ime=self.settings["secure"]["default_input_method"],
                apps=self.app_infos(),
            )

    # ================================================================= files
    def push_file(self, path: str, data: bytes) -> None:
        """Put a file on the phone directly (test setup), creating parent folders."""
        with self.lock:
            self.fs.write(path, data, make_parents=True)

    def read_file(self, path: str) -> bytes:
        """A file's content (raises :class:`FsError`)."""
        with self.lock:
            return self.fs.read(path)

    def files(self, under: str = "/storage/emulated/0") -> list[FileEntry]:
        """Regular files under a folder, with sizes and MD5s."""
        with self.lock:
            return [
                FileEntry(path, node.size, node.st_mode, node.mtime, hashlib.md5(node.data).hexdigest())  # noqa: S324
                for path, node in self.fs.walk_files(under)
            ]

    # ================================================================= media store
    def media_scan(self, path: str) -> MediaEntry | None:
        """MEDIA_SCANNER_SCAN_FILE: index a file (or drop its row if it is gone)."""
        with self.lock:
            full = normalize(path)
            node = self.fs.lookup(full)
            if not isinstance(node, FileNode):
                self.media.pop(full, None)
                return None
            existing = self.media.get(full)
            if existing is not None:
                return existing
            mime = MIME_BY_EXT.get(posixpath.splitext(full)[1].lower(), "application/octet-stream")
            kind = {"video": "video", "image": "images", "audio": "audio"}.get(mime.split("/")[0], "file")
            entry = MediaEntry(next(self._media_ids), full, mime, kind)
            self.media[full] = entry
            return entry

    def _gallery(self) -> list[tuple[str, str]]:
        # What an app's media picker shows: scanned photos and videos, newest first.
        rows = self.media_rows("content://media/external/file")
        return [(row.path, row.volume_kind) for row in reversed(rows) if row.volume_kind in ("video", "images")]

    def media_rows(self, uri: str) -> list[MediaEntry]:
        """The rows a content query on ``uri`` sees (deleted files drop out, as a rescan would do)."""
        with self.lock:
            for path in [p for p in self.media if not isinstance(self.fs.lookup(p), FileNode)]:
                del self.media[path]
            rows = sorted(self.media.values(), key=lambda e: e.id)
            parts = uri.removeprefix("content://media/").split("/")
            # external/video/media[/id], external/images/media, external/file[/id]
            if len(parts) >= 2 and parts[1] in ("video", "images", "audio"):
                rows = [r for r in rows if r.volume_kind == parts[1]]
                wanted = parts[3] if len(parts) > 3 else None
            else:
                wanted = parts[2] if len(parts) > 2 else None
            if wanted:
                rows = [r for r in rows if str(r.id) == wanted]
            return rows

    def resolve_uri(self, uri: str) -> MediaEntry | None:
        """The media row behind a content:// URI, if it exists and its file is still there."""
        if not uri.startswith("content://media/"):
            return None
        rows = self.media_rows(uri)
        parts = uri.rstrip("/").split("/")
        if not parts[-1].isdigit() or len(rows) != 1:
            return None
        return rows[0]

    # ================================================================= screen
    def canvas(self) -> Canvas:
        """The layout canvas at this phone's resolution."""
        return Canvas(self.width, self.height)

    def _trigger_crash(self, app: SocialApp) -> bool:
        if not app.crash_pending:
            return False
        app.crash()
        self.foreground = None
        self.crash_dialog = app.package
        return True

    def screen_root(self) -> Node:
        """The view tree of what is on screen now."""
        with self.lock:
            now = time.monotonic()
            for app in self.apps.values():
                app.tick(now)
            canvas = self.canvas()
            if self.crash_dialog is not None:
                label = self.apps[self.crash_dialog].label
                root = Node(bounds=canvas.box(0, 0, 1080, 2400), package="android")
                panel = Node("android.widget.LinearLayout", canvas.box(90, 900, 990, 1500), "android:id/parentPanel")
                panel.add(
                    Node(
                        "android.widget.TextView",
                        canvas.box(150, 960, 930, 1060),
                        "android:id/alertTitle",
                        f"{label} keeps stopping",
                    ),
                    Node(
                        "android.widget.Button",
                        canvas.box(150, 1120, 930, 1230),
                        "android:id/aerr_app_info",
                        "App info",
                        action="dialog:close",
                    ),
                    Node(
                        "android.widget.Button",
                        canvas.box(150, 1250, 930, 1360),
                        "android:id/aerr_close",
                        "Close app",
                        action="dialog:close",
                    ),
                )
                return root.add(panel)
            front = self.apps.get(self.foreground or "")
            if front is not None and front.running:
                return front.render(canvas, now)
            return self._launcher(canvas)

    def _launcher(self, canvas: Canvas) -> Node:
        root = Node(bounds=canvas.box(0, 0, 1080, 2400), package=LAUNCHER)
        workspace = Node(
            "android.view.View", canvas.box(0, 80, 1080, 2400), f"{LAUNCHER}:id/workspace", scrollable=True
        )
        root.add(workspace)
        icons = [
            (
                app.label
                if app.package in ("com.zhiliaoapp.musically", "com.instagram.android")
                else f"{app.label} ({app.package.rsplit('.', 1)[-1]})",
                f"launch:{app.package}",
            )
            for app in self.apps.values()
        ]
        icons += [("Settings", "noop"), ("Chrome", "noop")]
        for index, (label, action) in enumerate(icons):
            col, row = index % 4, index // 4
            left, top = 40 + col * 250, 300 + row * 300
            workspace.add(
                Node(
                    "android.widget.TextView",
                    canvas.box(left, top, left + 230, top + 260),
                    "",
                    label,
                    desc=label,
                    action=action,
                )
            )
        return root

    def dump_xml(self) -> str:
        """What ``uiautomator dump`` writes."""
        return hierarchy_xml(self.screen_root())

    def screenshot_png(self) -> bytes:
        """What ``screencap -p`` writes."""
        return render_png(self.screen_root(), self.width, self.height)

    def current_focus(self) -> tuple[str, str]:
        """(package, activity) of the focused window."""
        with self.lock:
            if self.crash_dialog is not None:
                return "android", f"Application Error: {self.crash_dialog}"
            app = self.apps.get(self.foreground or "")
            if app is not None and app.running:
                return app.package, app.activity()
            return LAUNCHER, "com.google.android.apps.nexuslauncher.NexusLauncherActivity"

    def screen_name(self, package: str | None = None) -> str:
        """The screen an app is on (``stopped`` when not running)."""
        with self.lock:
            return self.app(package).visible_screen()

    # ================================================================= input
    def tap(self, x: int, y: int) -> None:
        """``input tap``: route the touch to the view under it."""
        with self.lock:
            if not self.screen_on:
                return
            app = self.apps.get(self.foreground or "")
            if self.crash_dialog is None and app is not None and app.running and self._trigger_crash(app):
                return
            node = self.screen_root().hit(x, y)
            if node is None or node.action is None:
                return
            action = node.action
            if action == "dialog:close":
                self.crash_dialog = None
            elif action.startswith("launch:"):
                self.launch(action.split(":", 1)[1])
            elif app is not None and node.package == app.package:
                app.handle(action, time.monotonic(), (x, y))

    def keyevent(self, code: int) -> None:
        """``input keyevent``: the keys scripts use (home, back, delete, power)."""
        with self.lock:
            if code in (26, 223, 224):
                self.screen_on = {26: not self.screen_on, 223: False, 224: True}[code]
                return
            app = self.apps.get(self.foreground or "")
            if code == 3:
                self.foreground = None
                self.crash_dialog = None
            elif code == 4:
                if self.crash_dialog is not None:
                    self.crash_dialog = None
                elif app is not None and app.running:
                    if self._trigger_crash(app):
                        return
                    if not app.back():
                        self.foreground = None
            elif code == 67 and app is not None and app.running:
                app.delete_char()

    def type_text(self, text: str) -> bool:
        """Text from an input method into the focused field of the foreground app."""
        with self.lock:
            app = self.apps.get(self.foreground or "")
            if self.crash_dialog is not None or app is None or not app.running:
                return False
            if self._trigger_crash(app):
                return False
            typed = app.type_text(text)
            if typed:
                self.typed_log.append(text)
            return typed

    def clear_text(self) -> None:
        """ADBKeyBoard's ADB_CLEAR_TEXT."""
        with self.lock:
            app = self.apps.get(self.foreground or "")
            if app is not None and app.running:
                app.clear_text()

    # ================================================================= activities
    def launch(self, package: str) -> bool:
        """Start an app's launcher activity; False if it is not installed."""
        with self.lock:
            app = self.apps.get(package)
            if app is None:
                return package in self.packages
            self.crash_dialog = None
            if self._trigger_crash(app):
                return True
            app.launch()
            self.foreground = package
            return True

    def force_stop(self, package: str) -> None:
        """``am force-stop``."""
        with self.lock:
            app = self.apps.get(package)
            if app is not None:
                app.force_stop()
            if self.foreground == package:
                self.foreground = None
            if self.crash_dialog == package:
                self.crash_dialog = None

    def deliver_share(self, package: str, mime: str, uris: list[str]) -> None:
        """A SEND/SEND_MULTIPLE intent reached an app's share activity."""
        with self.lock:
            app = self.apps[package]
            self.crash_dialog = None
            if self._trigger_crash(app):
                return
            self.foreground = package
            kind = "video" if mime.startswith("video/") else "images" if mime.startswith("image/") else ""
            entries = [self.resolve_uri(uri) for uri in uris]
            files = [entry.path for entry in entries if entry is not None]
            kinds = {entry.volume_kind for entry in entries if entry is not None}
            ok = (
                bool(uris)
                and len(files) == len(uris)
                and kind != ""
                and kinds <= {kind}
                and not (kind == "video" and len(files) != 1)
            )
            if ok:
                app.share(kind, files)
            else:
                app.media_error()


def file_md5(phone: SimulatedPhone, path: str) -> str:
    """MD5 of a file on the phone (raises :class:`FsError`)."""
    return hashlib.md5(phone.read_file(path)).hexdigest()  # noqa: S324


__all__ = ["FsError", "Intent", "MediaEntry", "SimulatedPhone"]
