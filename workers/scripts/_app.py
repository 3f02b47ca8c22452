"""Driving TikTok or Instagram through their screens, by the selector file's names.

Every wait polls ``uiautomator dump`` through ``ctx.sleep`` (so a stop lands at once) and checks the
screens that end a task whatever step it is on: the crash dialog, the login wall, the ban notice,
the media error, and the app leaving the foreground.
"""

from __future__ import annotations

import base64
import time

from shared.failures import FailureKind
from workers.scripts._device import DeviceSession
from workers.scripts._ui import AppSelectors, Screen, View, extract_dump
from workers.scripts.base import ScriptFailure

ADB_IME = "com.android.adbkeyboard/.AdbIME"
ADB_KEYBOARD = "com.android.adbkeyboard"
_POLL_SECONDS = 0.25
_TEXT_CHUNK = 300  # characters per ADBKeyBoard broadcast: keeps each shell line short


class AppDriver:
    """One app (default or clone package) on one phone, seen through its selector file."""

    def __init__(self, session: DeviceSession, selectors: AppSelectors, package: str) -> None:
        self.session = session
        self.sel = selectors
        self.package = package
        self.ctx = session.ctx

    # ------------------------------------------------------------------ looking
    def dump(self) -> Screen:
        """The current screen."""
        result = self.session.sh(["uiautomator", "dump", "/dev/tty"])
        try:
            return Screen(extract_dump(result.stdout), self.package)
        except (ValueError, SyntaxError) as exc:
            raise ScriptFailure(FailureKind.TIMEOUT, f"uiautomator dump failed: {exc}") from exc

    def check_blockers(self, screen: Screen) -> None:
        """Raise the failure a blocking screen means, if one is showing."""
        if screen.has(self.sel.get("crash_dialog")):
            close = screen.find(self.sel.get("crash_close"))
            if close is not None:
                self.session.tap(*close.center)
            raise ScriptFailure(FailureKind.APP_CRASH, f"{self.sel.platform} ({self.package}) stopped unexpectedly")
        if screen.top_package == self.package:
            if screen.has(self.sel.get("login_wall")):
                raise ScriptFailure(FailureKind.LOGIN_WALL, f"{self.sel.platform} shows its login screen")
            if screen.has(self.sel.get("banned")):
                raise ScriptFailure(FailureKind.ACCOUNT_BANNED, f"the {self.sel.platform} account is banned")
            if screen.has(self.sel.get("media_error")):
                raise ScriptFailure(FailureKind.MATERIAL_MISSING, f"{self.sel.platform} could not open the media")

    def wait_for(self, *names: str, timeout: float | None = None) -> tuple[str, Screen]:
        """Poll until one of the named selectors shows; returns its name and the screen."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.sel.screen_seconds)
        away = 0
        while True:
            screen = self.dump()
            self.check_blockers(screen)
            for name in names:
                if screen.has(self.sel.get(name)):
                    return name, screen
            # Launching takes a moment on a real phone; a few polls elsewhere mean the app died.
            away = away + 1 if screen.top_package != self.package else 0
            if away >= 8:
                raise ScriptFailure(
                    FailureKind.APP_CRASH, f"{self.sel.platform} left the foreground (now {screen.top_package})"
                )
            if time.monotonic() > deadline:
                raise ScriptFailure(
                    FailureKind.TIMEOUT,
                    f"{self.sel.platform}: none of {', '.join(names)} appeared within the deadline "
                    f"(selectors/{self.sel.platform}.json may be out of date for this app version)",
                )
            self.ctx.sleep(_POLL_SECONDS)

    def tap_view(self, view: View) -> None:
        """Tap the middle of a view."""
        self.session.tap(*view.center)

    def tap(self, name: str, screen: Screen | None = None) -> None:
        """Tap the view a selector names (waiting for it when no screen is given)."""
        if screen is None or not screen.has(self.sel.get(name)):
            _, screen = self.wait_for(name)
        view = screen.find(self.sel.get(name))
        assert view is not None
        self.tap_view(view)

    # ------------------------------------------------------------------ lifecycle
    def installed_version(self) -> str | None:
        """``versionName`` from ``dumpsys package``."""
        result = self.session.sh(["dumpsys", "package", self.package])
        for line in result.stdout.splitlines():
            line = line.strip()
            if line.startswith("versionName="):
                return line.split("=", 1)[1]
        return None

    def restart(self, username: str | None = None) -> None:
        """Force-stop and relaunch the app from its launcher entry; wait for its home screen.

        If the app opens on another account's ban notice and the task names an account, switch
        away from it: the ban is not this task's account's.
        """
        self.session.sh(["am", "force-stop", self.package])
        launched = self.session.sh(["monkey", "-p", self.package, "-c", "android.intent.category.LAUNCHER", "1"])
        if not launched.ok:
            raise ScriptFailure(FailureKind.SCRIPT_ERROR, f"cannot launch {self.package}: {launched.stderr.strip()}")
        try:
            self.wait_for("home")
        except ScriptFailure as failure:
            if failure.kind != FailureKind.ACCOUNT_BANNED or not username:
                raise
            screen = self.dump()
            shown = screen.find(self.sel.get("banned_account"))
            if shown is None or shown.text.lstrip("@").strip() == username:
                raise
            self.tap("banned_switch_account", screen)
            self._pick_in_switcher(username)

    def _pick_in_switcher(self, username: str) -> None:
        _, screen = self.wait_for("switcher_sheet")
        rows = screen.find_all(self.sel.get("switcher_account_name"))
        target = next((row for row in rows if row.text.lstrip("@").strip() == username), None)
        if target is None:
            self.session.key("KEYCODE_BACK")
            known = ", ".join(row.text for row in rows) or "none"
            raise ScriptFailure(
                FailureKind.ACCOUNT_MISSING, f"@{username} is not logged in to {self.package} (accounts: {known})"
            )
        self.tap_view(target)

    # ------------------------------------------------------------------ accounts
    def current_account(self) -> str:
        """The account the app is using (read on the profile tab)."""
        self.tap("profile_tab")
        _, screen = self.wait_for("account_switch")
        view = screen.find(self.sel.get("account_switch"))
        assert view is not None
        return view.text.lstrip("@").strip()

    def switch_account(self, username: str) -> None:
        """Make ``username`` the current account through the account switcher."""
        if self.current_account() == username:
            return
        self.tap("account_switch")
        self._pick_in_switcher(username)
        deadline = time.monotonic() + self.sel.screen_seconds
        while True:
            _, screen = self.wait_for("account_switch")
            view = screen.find(self.sel.get("account_switch"))
            if view is not None and view.text.lstrip("@").strip() == username:
                return
            if time.monotonic() > deadline:
                raise ScriptFailure(FailureKind.TIMEOUT, f"switching to @{username} did not take effect")
            self.ctx.sleep(_POLL_SECONDS)

    # ------------------------------------------------------------------ sharing and typing
    def share(self, uris: list[str], mime: str) -> None:
        """Open the app's share activity with the media (SEND, or SEND_MULTIPLE for several)."""
        action = "android.intent.action.SEND" if len(uris) == 1 else "android.intent.action.SEND_MULTIPLE"
        stream = (
            ["--eu", "android.intent.extra.STREAM", uris[0]]
            if len(uris) == 1
            else ["--eua", "android.intent.extra.STREAM", ",".join(uris)]
        )
        component = f"{self.package}/{self.sel.activities['share']}"
        result = self.session.sh(
            ["am", "start", "-a", action, "-t", mime, *stream, "--grant-read-uri-permission", "-n", component]
        )
        if not result.ok or "Error" in result.stderr:
            raise ScriptFailure(FailureKind.SCRIPT_ERROR, f"share intent refused: {result.stderr.strip()[:300]}")

    def pick_in_gallery(self, names: list[str]) -> None:
        """The create button's path: camera → Upload → select the files by name → Next."""
        self.tap("create_button")
        self.tap("camera_upload")
        _, screen = self.wait_for("gallery")
        for name in names:
            item = next((v for v in screen.find_all(self.sel.get("gallery_item")) if v.desc == name), None)
            if item is None:
                raise ScriptFailure(FailureKind.MATERIAL_MISSING, f"{name} is not in {self.sel.platform}'s gallery")
            self.tap_view(item)
            _, screen = self.wait_for("gallery")
        self.tap("gallery_next", screen)

    def add_sound(self, query: str, prefer: str) -> str:
        """Editor → sound picker; search ``query`` (if any), pick the first result containing
        ``prefer`` (or the first one); back in the editor. Returns the sound's title."""
        self.tap("add_sound")
        _, screen = self.wait_for("sounds")
        if query:
            self.type_text("sound_search", query)
            _, screen = self.wait_for("sounds")
        results = screen.find_all(self.sel.get("sound_item"))
        wanted = prefer.lower().strip()
        choice = next((v for v in results if wanted and wanted in v.text.lower()), results[0] if results else None)
        if choice is None:
            self.session.key("KEYCODE_BACK")
            raise ScriptFailure(FailureKind.MATERIAL_MISSING, f"no sound found for {query!r}")
        self.tap_view(choice)
        self.wait_for("editor")
        return choice.text

    def set_volumes(self, original: int, added: int) -> None:
        """Editor → volume panel: drag both sliders to the percentages, check them, Done."""
        self.tap("volume_button")
        _, screen = self.wait_for("volume_panel")
        for name, value in (("volume_original", original), ("volume_added", added)):
            slider = screen.find(self.sel.get(name))
            if slider is None:
                raise ScriptFailure(FailureKind.TIMEOUT, f"{name} not on the volume panel")
            left, top, right, bottom = slider.bounds
            x = min(right - 1, left + round((right - left) * value / 100))
            self.session.tap(x, (top + bottom) // 2)
            _, screen = self.wait_for("volume_panel")
            shown = screen.find(self.sel.get(name))
            if shown is None or shown.text != str(value):
                raise ScriptFailure(
                    FailureKind.SCRIPT_ERROR, f"{name}: asked {value}, the app shows {shown and shown.text}"
                )
        self.tap("volume_done", screen)
        self.wait_for("editor")

    def type_text(self, field: str, text: str) -> None:
        """Put ``text`` into a field exactly (emoji and all) and check that it arrived intact."""
        _, screen = self.wait_for(field)
        view = screen.find(self.sel.get(field))
        assert view is not None
        self.tap_view(view)
        if self.session.package_installed(ADB_KEYBOARD):
            self._type_with_adb_keyboard(text)
        elif all(" " <= ch <= "~" for ch in text):
            # Without ADBKeyBoard only `input text` is left, and it only knows ASCII.
            for start in range(0, len(text), 100):
                piece = text[start : start + 100].replace(" ", "%s")
                self.session.check(["input", "text", piece])
        else:
            raise ScriptFailure(
                FailureKind.SCRIPT_ERROR,
                "ADBKeyBoard (com.android.adbkeyboard) is not installed; it is needed to type non-ASCII text",
            )
        _, screen = self.wait_for(field)
        typed = screen.find(self.sel.get(field))
        if typed is None or typed.text != text:
            got = typed.text if typed is not None else None
            raise ScriptFailure(FailureKind.SCRIPT_ERROR, f"{field}: typed text did not arrive intact (got {got!r})")

    def _type_with_adb_keyboard(self, text: str) -> None:
        previous = self.session.sh(["settings", "get", "secure", "default_input_method"]).stdout.strip()
        if previous != ADB_IME:
            self.session.check(["ime", "enable", ADB_IME])
            self.session.check(["ime", "set", ADB_IME])
        try:
            self.session.check(["am", "broadcast", "-a", "ADB_CLEAR_TEXT"])
            for start in range(0, len(text), _TEXT_CHUNK):
                encoded = base64.b64encode(text[start : start + _TEXT_CHUNK].encode("utf-8")).decode("ascii")
                self.session.check(["am", "broadcast", "-a", "ADB_INPUT_B64", "--es", "msg", encoded])
        finally:
            if previous and previous not in (ADB_IME, "null"):
                # Hand the phone back with the keyboard its user had.
                self.session.sh(["ime", "set", previous], checkpoint=False)
