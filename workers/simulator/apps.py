"""The simulated TikTok and Instagram apps: accounts, screens and the posting flows as state machines.

This is the simulator's own model of the apps. The ``post`` script carries its own belief about them
(``workers/scripts/selectors/*.json``); tests prove the two agree, as a real phone would.

Screens are laid out on a 1080x2400 canvas and scaled to the phone's size. Every view that reacts to
a tap carries an ``action`` the app handles; resource ids are prefixed with the app's package, as
they are in a renamed (clone) package too.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from workers.simulator.models import AppInfo, PostRecord
from workers.simulator.ui import Node

BASE_W, BASE_H = 1080, 2400
_post_ids = itertools.count(1)


@dataclass
class Draft:
    """What the user is about to post."""

    kind: str  # "video" | "images"
    files: list[str]
    title: str = ""
    caption: str = ""
    placement: str = ""
    sound: str = ""
    sound_query: str = ""
    original_volume: int = 100
    added_volume: int = 100


@dataclass
class Upload:
    """A post on its way to the server."""

    draft: Draft
    account: str
    started: float
    done_at: float


@dataclass
class Canvas:
    """Scales 1080x2400 layout coordinates to the phone's real size."""

    width: int
    height: int

    def box(self, left: int, top: int, right: int, bottom: int) -> tuple[int, int, int, int]:
        """Bounds on the real screen for a box drawn on the 1080x2400 canvas."""
        sx = self.width / BASE_W
        sy = self.height / BASE_H
        return (round(left * sx), round(top * sy), round(right * sx), round(bottom * sy))


@dataclass
class SocialApp:
    """State shared by both apps; subclasses draw the screens and route the taps."""

    package: str
    platform: str = ""
    label: str = ""
    version: str = ""
    version_code: int = 0
    accounts: list[str] = field(default_factory=list)
    current: str | None = None
    banned: set[str] = field(default_factory=set)
    login_wall: bool = False
    crash_pending: bool = False
    upload_seconds: float = 1.0
    running: bool = False
    screen: str = "home"
    draft: Draft | None = None
    focused_field: str | None = None
    upload: Upload | None = None
    status_text: str | None = None
    posts: list[PostRecord] = field(default_factory=list)
    selected_media: list[str] = field(default_factory=list)
    # The phone's media store, newest first, as (path, kind): what the in-app gallery lists.
    gallery_source: Callable[[], list[tuple[str, str]]] | None = None

    # -- identity --------------------------------------------------------------------------
    def rid(self, name: str) -> str:
        """A resource id of this app: ``<package>:id/<name>``."""
        return f"{self.package}:id/{name}"

    def info(self) -> AppInfo:
        """A snapshot for the control API."""
        return AppInfo(
            package=self.package,
            platform=self.platform,
            version=self.version,
            accounts=list(self.accounts),
            current=self.current,
            banned=sorted(self.banned),
            login_wall=self.login_wall,
            running=self.running,
            screen=self.visible_screen(),
        )

    # -- accounts --------------------------------------------------------------------------
    def add_account(self, username: str, *, make_current: bool = False) -> None:
        """Log an account in (it joins the account switcher)."""
        if username not in self.accounts:
            self.accounts.append(username)
        if make_current or self.current is None:
            self.current = username

    def remove_account(self, username: str) -> None:
        """Log an account out."""
        if username in self.accounts:
            self.accounts.remove(username)
        if self.current == username:
            self.current = self.accounts[0] if self.accounts else None

    # -- lifecycle -------------------------------------------------------------------------
    def gate(self) -> str | None:
        """The screen that blocks everything else: login wall or ban notice, if any."""
        if self.login_wall or self.current is None:
            return "login"
        if self.current in self.banned:
            return "banned"
        return None

    def visible_screen(self) -> str:
        """The screen the user would see if the app were in front."""
        if not self.running:
            return "stopped"
        return self.gate() or self.screen

    def launch(self) -> None:
        """Start from the launcher icon: a running app comes back where it was."""
        if not self.running:
            self.running = True
            self._reset_ui()

    def force_stop(self) -> None:
        """``am force-stop``: the process dies, an upload in flight is lost."""
        self.running = False
        self.upload = None
        self._reset_ui()

    def crash(self) -> None:
        """The process dies unexpectedly (the phone shows the "keeps stopping" dialog)."""
        self.crash_pending = False
        self.force_stop()

    def _reset_ui(self) -> None:
        self.screen = "home"
        self.draft = None
        self.focused_field = None
        self.status_text = None

    def share(self, kind: str, files: list[str]) -> None:
        """A share intent arrives with media the app could read."""
        self.running = True
        self._reset_ui()
        self.draft = Draft(kind=kind, files=list(files))
        self.screen = self.first_share_screen(kind)

    def media_error(self) -> None:
        """A share intent arrives but the media cannot be opened."""
        self.running = True
        self._reset_ui()
        self.screen = "media_error"

    def tick(self, now: float) -> None:
        """Advance time: finish an upload whose time has come."""
        upload = self.upload
        if upload is None or now < upload.done_at:
            return
        self.upload = None
        draft = upload.draft
        record = PostRecord(
            id=next(_post_ids),
            package=self.package,
            platform=self.platform,
            account=upload.account,
            kind=draft.kind,
            title=draft.title,
            caption=draft.caption,
            files=list(draft.files),
            placement=draft.placement,
            posted_at=time.time(),
            sound=draft.sound,
            original_volume=draft.original_volume,
            added_volume=draft.added_volume if draft.sound else None,
        )
        self.posts.append(record)
        self.status_text = self.done_text(draft)

    def start_upload(self, now: float) -> None:
        """The user pressed Post/Share."""
        assert self.draft is not None and self.current is not None
        self.upload = Upload(self.draft, self.current, now, now + self.upload_seconds)
        self.draft = None
        self.focused_field = None
        self.status_text = None
        self.screen = "home"

    def progress_text(self, now: float) -> str:
        """What the app shows while uploading."""
        upload = self.upload
        assert upload is not None
        span = max(upload.done_at - upload.started, 1e-6)
        percent = min(99, int((now - upload.started) / span * 100))
        return self.uploading_text(percent)

    # -- input ------------------------------------------------------------------------------
    def type_text(self, text: str) -> bool:
        """Insert text into the focused field; False when no field has focus."""
        if self.draft is None or self.focused_field is None or self.gate():
            return False
        value = getattr(self.draft, self.focused_field) + text
        setattr(self.draft, self.focused_field, value)
        return True

    def clear_text(self) -> None:
        """Empty the focused field."""
        if self.draft is not None and self.focused_field is not None:
            setattr(self.draft, self.focused_field, "")

    def delete_char(self) -> None:
        """Backspace in the focused field."""
        if self.draft is not None and self.focused_field is not None:
            value = getattr(self.draft, self.focused_field)
            setattr(self.draft, self.focused_field, value[:-1])

    def back(self) -> bool:
        """The back key; False when the app closes (back from its home screen)."""
        if self.gate() or self.screen == "home":
            return False
        self.screen = self.back_target()
        self.focused_field = None
        if self.screen == "home":
            self.draft = None
        return True

    def handle(self, action: str, now: float, point: tuple[int, int] | None = None) -> None:
        """A tap (at ``point``) on a view with ``action``."""
        gate = self.gate()
        # A banned account can still reach the account switcher, as in the real apps.
        switching = action in ("open_switcher", "close_switcher") or action.startswith("switch:")
        if gate and not (gate == "banned" and switching):
            return
        if action.startswith("switch:"):
            name = action.split(":", 1)[1]
            if name in self.accounts:
                self.current = name
            self.screen = "profile"
            return
        if action.startswith("focus:"):
            self.focused_field = action.split(":", 1)[1]
            return
        if action == "nav:home":
            self.screen = "home"
        elif action == "nav:profile":
            self.screen = "profile"
        elif action == "open_switcher":
            self.screen = "switcher"
        elif action == "close_switcher":
            self.screen = "profile"
        elif action == "back":
            self.back()
        elif action == "dismiss":
            self.screen = "home"
        elif action == "post" and self.draft is not None:
            self.start_upload(now)
        else:
            self.handle_flow(action, point)

    # -- drawing ----------------------------------------------------------------------------
    def render(self, canvas: Canvas, now: float) -> Node:
        """The app's current screen as a view tree."""
        root = Node(bounds=canvas.box(0, 0, BASE_W, BASE_H), package=self.package)
        content = Node(rid="android:id/content", bounds=canvas.box(0, 80, BASE_W, BASE_H))
        root.add(content)
        gate = self.gate()
        screen = "switcher" if gate == "banned" and self.screen == "switcher" else gate or self.screen
        content.add(*self.draw(screen, canvas, now))
        return root

    def status_nodes(self, canvas: Canvas, now: float) -> list[Node]:
        """The upload progress / result strip shown on the main screens."""
        if self.upload is not None:
            text = self.progress_text(now)
            return [Node("android.widget.TextView", canvas.box(40, 100, 1040, 180), self.progress_id, text)]
        if self.status_text:
            return [Node("android.widget.TextView", canvas.box(40, 100, 1040, 180), self.status_id, self.status_text)]
        return []

    # -- what subclasses provide --------------------------------------------------------------
    progress_id = ""
    status_id = ""
    launcher_activity = ""
    share_activity = ""
    other_activities: ClassVar[tuple[str, ...]] = ()

    def has_activity(self, name: str) -> bool:
        """True if ``name`` is an exported activity of this app (what ``am start -n`` may name)."""
        return name in (self.launcher_activity, self.share_activity, *self.other_activities)

    def first_share_screen(self, kind: str) -> str:
        """Where a share intent lands."""
        raise NotImplementedError

    def back_target(self) -> str:
        """The screen the back key leads to from the current one."""
        raise NotImplementedError

    def handle_flow(self, action: str, point: tuple[int, int] | None) -> None:
        """Taps specific to the posting flow."""
        raise NotImplementedError

    def draw(self, screen: str, canvas: Canvas, now: float) -> list[Node]:
        """The views of one screen."""
        raise NotImplementedError

    def uploading_text(self, percent: int) -> str:
        """Progress text."""
        raise NotImplementedError

    def done_text(self, draft: Draft) -> str:
        """Confirmation text once the post is live."""
        raise NotImplementedError

    def activity(self) -> str:
        """The focused activity's class name (for ``dumpsys window``)."""
        raise NotImplementedError


def _text(canvas: Canvas, box: tuple[int, int, int, int], rid: str, text: str, **kw: object) -> Node:
    node = Node("android.widget.TextView", canvas.box(*box), rid, text)
    for key, value in kw.items():
        setattr(node, key, value)
    return node


def _button(
    canvas: Canvas, box: tuple[int, int, int, int], rid: str, text: str, action: str, *, desc: str = ""
) -> Node:
    return Node("android.widget.Button", canvas.box(*box), rid, text, desc=desc, action=action, focusable=True)


def _edit(
    canvas: Canvas, box: tuple[int, int, int, int], rid: str, value: str, hint: str, field_name: str, focused: bool
) -> Node:
    return Node(
        "android.widget.EditText",
        canvas.box(*box),
        rid,
        value,
        hint=hint,
        action=f"focus:{field_name}",
        focusable=True,
        focused=focused,
    )


class TikTokApp(SocialApp):
    """TikTok: share → editor (photo mode for images) → Next → publish page → Post → uploading → done."""

    launcher_activity = "com.ss.android.ugc.aweme.splash.SplashActivity"
    share_activity = "com.ss.android.ugc.aweme.share.SystemShareActivity"
    other_activities = ("com.ss.android.ugc.aweme.main.MainActivity",)

    def __init__(self, package: str = "com.zhiliaoapp.musically", **kw: object) -> None:
        super().__init__(package=package, platform="tiktok", label="TikTok", version="37.5.4", version_code=2023705040)
        for key, value in kw.items():
            setattr(self, key, value)
        self.progress_id = self.rid("publish_progress")
        self.status_id = self.rid("publish_status")

    def first_share_screen(self, kind: str) -> str:
        """Shared media opens the editor."""
        return "editor"

    def back_target(self) -> str:
        """publish → editor → home; profile/switcher step back."""
        return {
            "publish": "editor",
            "editor": "home",
            "switcher": "profile",
            "profile": "home",
            "camera": "home",
            "gallery": "camera",
            "sounds": "editor",
            "volume": "editor",
        }.get(self.screen, "home")

    def handle_flow(self, action: str, point: tuple[int, int] | None) -> None:
        """The create button, the in-app gallery, sounds, volumes, and Next in the editor."""
        draft = self.draft
        if action == "create":
            self.screen = "camera"
            self.draft = None
        elif action == "open_gallery" and self.screen == "camera":
            self.screen = "gallery"
            self.selected_media = []
        elif action.startswith("pick:") and self.screen == "gallery":
            path = action.split(":", 1)[1]
            if path in self.selected_media:
                self.selected_media.remove(path)
            else:
                self.selected_media.append(path)
        elif action == "gallery_next" and self.screen == "gallery":
            kinds = dict(self.gallery_source() if self.gallery_source else [])
            picked = [kinds.get(path, "") for path in self.selected_media]
            if picked and len(set(picked)) == 1 and not (picked[0] == "video" and len(picked) > 1):
                self.draft = Draft(kind=picked[0], files=list(self.selected_media))
                self.screen = "editor"
        elif draft is None:
            return
        elif action == "next" and self.screen == "editor":
            self.screen = "publish"
            draft.placement = "feed"
        elif action == "open_sounds" and self.screen == "editor":
            self.screen = "sounds"
            draft.sound_query = ""
            self.focused_field = None
        elif action.startswith("sound:") and self.screen == "sounds":
            draft.sound = action.split(":", 1)[1]
            self.focused_field = None
            self.screen = "editor"
        elif action == "open_volume" and self.screen == "editor":
            self.screen = "volume"
        elif action == "volume_done" and self.screen == "volume":
            self.screen = "editor"
        elif action.startswith("volume:") and point is not None:
            _, which, left, right = action.split(":")
            value = round((point[0] - int(left)) / max(1, int(right) - int(left)) * 100)
            setattr(draft, f"{which}_volume", max(0, min(100, value)))

    SOUNDS: ClassVar[tuple[str, ...]] = (
        "Espresso - Sabrina Carpenter",
        "Flowers - Miley Cyrus",
        "Paint The Town Red - Doja Cat",
        "Lofi beats to study to",
        "Summer vibes (instrumental)",
        "Cupid (Twin Ver.) - FIFTY FIFTY",
        "Original sound - phonefleet",
    )

    def sound_results(self, query: str) -> list[str]:
        """The sound picker's list: recommendations, or titles containing the query."""
        if not query.strip():
            return list(self.SOUNDS[:5])
        return [title for title in self.SOUNDS if query.strip().lower() in title.lower()]

    def uploading_text(self, percent: int) -> str:
        """TikTok's progress strip."""
        return f"Posting {percent}%"

    def done_text(self, draft: Draft) -> str:
        """TikTok's confirmation."""
        return "Your photos have been posted" if draft.kind == "images" else "Your video has been posted"

    def activity(self) -> str:
        """Activity names as a real TikTok reports them."""
        screen = self.gate() or self.screen
        return {
            "editor": "com.ss.android.ugc.aweme.shortvideo.edit.VEVideoPublishEditActivity",
            "publish": "com.ss.android.ugc.aweme.shortvideo.publish.VideoPublishActivity",
            "login": "com.ss.android.ugc.aweme.account.login.v2.ui.SignUpOrLoginActivity",
        }.get(screen, "com.ss.android.ugc.aweme.main.MainActivity")

    def _nav(self, c: Canvas, selected: str) -> list[Node]:
        tabs = [
            ("tab_home", "Home", "nav:home"),
            ("tab_friends", "Friends", "nav:home"),
            ("tab_create", "", "create"),
            ("tab_inbox", "Inbox", "nav:home"),
            ("tab_profile", "Profile", "nav:profile"),
        ]
        nodes = []
        for index, (name, text, action) in enumerate(tabs):
            left = index * 216
            node = _button(
                c,
                (left, 2250, left + 216, 2400),
                self.rid(name),
                text,
                action,
                desc="Create" if name == "tab_create" else text,
            )
            node.cls = "android.widget.FrameLayout"
            node.selected = name == selected
            nodes.append(node)
        return nodes

    def draw(self, screen: str, c: Canvas, now: float) -> list[Node]:
        """The views of one TikTok screen."""
        r = self.rid
        if screen == "login":
            return [
                _text(c, (80, 500, 1000, 600), r("login_title"), "Log in to TikTok"),
                _button(c, (80, 900, 1000, 1020), r("login_use_phone"), "Use phone / email / username", "noop"),
                _button(c, (80, 1060, 1000, 1180), r("login_google"), "Continue with Google", "noop"),
            ]
        if screen == "banned":
            return [
                _text(c, (80, 500, 1000, 640), r("ban_title"), "Your account was permanently banned"),
                _text(
                    c,
                    (80, 660, 1000, 900),
                    r("ban_detail"),
                    "This is due to multiple violations of our Community Guidelines.",
                ),
                _text(c, (80, 920, 1000, 980), r("ban_account"), f"@{self.current}"),
                _button(c, (80, 1000, 1000, 1120), r("ban_appeal"), "Appeal", "noop"),
                _button(c, (80, 1140, 1000, 1260), r("ban_switch_account"), "Switch account", "open_switcher"),
            ]
        if screen == "media_error":
            return [
                _text(c, (80, 1000, 1000, 1100), r("dialog_message"), "This file can't be opened"),
                _button(c, (600, 1150, 1000, 1250), r("dialog_ok"), "OK", "dismiss"),
            ]
        if screen == "profile":
            handle = self.current or ""
            return [
                *self.status_nodes(c, now),
                _button(c, (300, 190, 780, 290), r("profile_account_switch"), handle, "open_switcher"),
                _text(c, (300, 600, 780, 680), r("profile_handle"), f"@{handle}"),
                _button(c, (300, 720, 780, 820), r("profile_edit"), "Edit profile", "noop"),
                *self._nav(c, "tab_profile"),
            ]
        if screen == "switcher":
            sheet = Node("android.widget.LinearLayout", c.box(0, 1200, 1080, 2400), r("switcher_sheet"))
            sheet.package = self.package
            sheet.add(_text(c, (40, 1220, 1040, 1320), r("switcher_title"), "Switch account"))
            for index, name in enumerate(self.accounts):
                top = 1340 + index * 140
                row = Node(
                    "android.widget.LinearLayout",
                    c.box(0, top, 1080, top + 130),
                    r("switcher_account_row"),
                    action=f"switch:{name}",
                    checkable=True,
                    checked=name == self.current,
                )
                row.add(_text(c, (140, top + 30, 1000, top + 100), r("switcher_account_name"), name))
                sheet.add(row)
            bottom = 1340 + len(self.accounts) * 140
            sheet.add(_button(c, (0, bottom, 1080, bottom + 130), r("switcher_add"), "Add account", "noop"))
            return [_button(c, (0, 80, 1080, 1200), r("switcher_scrim"), "", "close_switcher"), sheet]
        if screen == "editor":
            draft = self.draft
            nodes = [
                _button(c, (20, 100, 140, 220), r("editor_back"), "", "back", desc="Back"),
                Node("android.view.View", c.box(0, 240, 1080, 2000), r("editor_preview"), desc="Preview"),
                _button(
                    c,
                    (300, 110, 780, 210),
                    r("editor_add_sound"),
                    (draft.sound if draft else "") or "Add sound",
                    "open_sounds",
                ),
                _button(c, (900, 300, 1060, 420), r("editor_volume"), "Volume", "open_volume"),
                _button(c, (560, 2180, 1040, 2300), r("editor_next"), "Next", "next"),
            ]
            if draft is not None and draft.kind == "images":
                mode = _text(c, (40, 2050, 300, 2130), r("editor_photo_mode"), "Photo", selected=True)
                count = _text(c, (320, 2050, 700, 2130), r("editor_photo_count"), f"{len(draft.files)} photos")
                nodes += [mode, count]
            return nodes
        if screen == "camera":
            return [
                _button(c, (20, 100, 140, 220), r("camera_close"), "", "nav:home", desc="Close"),
                _button(c, (440, 1900, 640, 2100), r("camera_record"), "", "noop", desc="Record"),
                _button(c, (760, 1940, 1000, 2080), r("camera_upload"), "Upload", "open_gallery"),
            ]
        if screen == "gallery":
            items = self.gallery_source() if self.gallery_source else []
            nodes = [_text(c, (40, 100, 600, 200), r("gallery_title"), "All")]
            for index, (path, _kind) in enumerate(items[:24]):
                left, top = (index % 3) * 360, 240 + (index // 3) * 360
                picked = path in self.selected_media
                node = Node(
                    "android.widget.FrameLayout",
                    c.box(left, top, left + 350, top + 350),
                    r("gallery_item"),
                    desc=path.rsplit("/", 1)[-1],
                    action=f"pick:{path}",
                    checkable=True,
                    checked=picked,
                )
                nodes.append(node)
            selected = len(self.selected_media)
            nodes.append(
                _button(
                    c,
                    (700, 2180, 1040, 2300),
                    r("gallery_next"),
                    f"Next ({selected})" if selected else "Next",
                    "gallery_next",
                )
            )
            return nodes
        if screen == "sounds":
            draft = self.draft
            assert draft is not None
            nodes = [
                _text(c, (40, 100, 600, 200), r("sounds_title"), "Sounds"),
                _edit(
                    c,
                    (40, 220, 1040, 330),
                    r("sound_search"),
                    draft.sound_query,
                    "Search",
                    "sound_query",
                    self.focused_field == "sound_query",
                ),
            ]
            for index, title in enumerate(self.sound_results(draft.sound_query)):
                top = 360 + index * 140
                nodes.append(_button(c, (40, top, 1040, top + 130), r("sound_item"), title, f"sound:{title}"))
            return nodes
        if screen == "volume":
            draft = self.draft
            assert draft is not None
            nodes = [_text(c, (40, 1500, 1040, 1580), r("volume_title"), "Volume")]
            for index, (which, label) in enumerate((("original", "Original sound"), ("added", "Added sound"))):
                top = 1620 + index * 200
                box = c.box(140, top, 940, top + 120)
                value = getattr(draft, f"{which}_volume")
                slider = Node(
                    "android.widget.SeekBar",
                    box,
                    r(f"volume_{which}"),
                    str(value),
                    desc=label,
                    action=f"volume:{which}:{box[0]}:{box[2]}",
                )
                nodes.append(slider)
            nodes.append(_button(c, (760, 2180, 1040, 2300), r("volume_done"), "Done", "volume_done"))
            return nodes
        if screen == "publish":
            draft = self.draft
            assert draft is not None
            focus = self.focused_field
            return [
                _button(c, (20, 100, 140, 220), r("publish_back"), "", "back", desc="Back"),
                _edit(
                    c,
                    (40, 260, 760, 380),
                    r("publish_title"),
                    draft.title,
                    "Add a catchy title",
                    "title",
                    focus == "title",
                ),
                _edit(
                    c,
                    (40, 400, 760, 800),
                    r("publish_description"),
                    draft.caption,
                    "Add description...",
                    "caption",
                    focus == "caption",
                ),
                _button(c, (780, 260, 1040, 700), r("publish_cover"), "Select cover", "noop"),
                _button(c, (40, 2180, 520, 2300), r("publish_drafts"), "Drafts", "noop"),
                _button(c, (560, 2180, 1040, 2300), r("publish_post"), "Post", "post"),
            ]
        # home
        return [
            *self.status_nodes(c, now),
            Node("android.view.View", c.box(0, 200, 1080, 2240), r("feed_video"), desc="Video"),
            *self._nav(c, "tab_home"),
        ]


class InstagramApp(SocialApp):
    """Instagram: share → "Share to" (Reel/Post, Story) → editor → Next → caption → Share → done."""

    launcher_activity = "com.instagram.mainactivity.LauncherActivity"
    share_activity = "com.instagram.share.handleractivity.ShareHandlerActivity"
    other_activities = ("com.instagram.mainactivity.InstagramMainActivity",)

    def __init__(self, package: str = "com.instagram.android", **kw: object) -> None:
        super().__init__(
            package=package, platform="instagram", label="Instagram", version="360.0.0.30.109", version_code=374310001
        )
        for key, value in kw.items():
            setattr(self, key, value)
        self.progress_id = self.rid("upload_progress_text")
        self.status_id = self.rid("upload_status_text")

    def first_share_screen(self, kind: str) -> str:
        """Shared media first asks where to share it."""
        return "share_choice"

    def back_target(self) -> str:
        """caption → editor → share choice → home."""
        return {
            "caption": "editor",
            "editor": "share_choice",
            "share_choice": "home",
            "switcher": "profile",
            "profile": "home",
        }.get(self.screen, "home")

    def handle_flow(self, action: str, point: tuple[int, int] | None) -> None:
        """Placement choice and Next."""
        draft = self.draft
        if draft is None:
            return
        if action.startswith("choose:") and self.screen == "share_choice":
            draft.placement = action.split(":", 1)[1]
            self.screen = "editor"
        elif action == "next" and self.screen == "editor":
            self.screen = "caption"

    def uploading_text(self, percent: int) -> str:
        """Instagram's progress strip."""
        return f"Sharing… {percent}%"

    def done_text(self, draft: Draft) -> str:
        """Instagram's confirmation."""
        return f"Your {draft.placement or 'post'} has been shared."

    def activity(self) -> str:
        """Activity names as a real Instagram reports them."""
        screen = self.gate() or self.screen
        if screen in ("share_choice", "editor", "caption", "media_error"):
            return "com.instagram.share.handleractivity.ShareHandlerActivity"
        return "com.instagram.mainactivity.InstagramMainActivity"

    def _nav(self, c: Canvas, selected: str) -> list[Node]:
        tabs = [
            ("feed_tab", "Home", "nav:home"),
            ("search_tab", "Search and explore", "nav:home"),
            ("creation_tab", "Create", "nav:home"),
            ("clips_tab", "Reels", "nav:home"),
            ("profile_tab", "Profile", "nav:profile"),
        ]
        nodes = []
        for index, (name, desc, action) in enumerate(tabs):
            left = index * 216
            node = _button(c, (left, 2260, left + 216, 2400), self.rid(name), "", action, desc=desc)
            node.cls = "android.widget.FrameLayout"
            node.selected = name == selected
            nodes.append(node)
        return nodes

    def draw(self, screen: str, c: Canvas, now: float) -> list[Node]:
        """The views of one Instagram screen."""
        r = self.rid
        if screen == "login":
            return [
                _text(c, (80, 400, 1000, 520), r("login_title"), "Instagram"),
                Node(
                    "android.widget.EditText",
                    c.box(80, 700, 1000, 820),
                    r("login_username"),
                    "",
                    hint="Username, email or mobile number",
                ),
                Node(
                    "android.widget.EditText",
                    c.box(80, 850, 1000, 970),
                    r("login_password"),
                    "",
                    hint="Password",
                    password=True,
                ),
                _button(c, (80, 1010, 1000, 1130), r("login_button"), "Log in", "noop"),
            ]
        if screen == "banned":
            return [
                _text(c, (80, 500, 1000, 640), r("suspended_title"), "We suspended your account"),
                _text(c, (80, 660, 1000, 740), r("suspended_username"), f"@{self.current}"),
                _button(c, (80, 900, 1000, 1020), r("suspended_appeal"), "Disagree with decision", "noop"),
                _button(c, (80, 1040, 1000, 1160), r("suspended_switch_account"), "Switch account", "open_switcher"),
            ]
        if screen == "media_error":
            return [
                _text(c, (80, 1000, 1000, 1100), r("dialog_body"), "Couldn't load media"),
                _button(c, (600, 1150, 1000, 1250), r("dialog_ok"), "OK", "dismiss"),
            ]
        if screen == "profile":
            name = self.current or ""
            return [
                *self.status_nodes(c, now),
                _button(c, (40, 190, 700, 290), r("action_bar_title"), name, "open_switcher"),
                _text(c, (40, 600, 1040, 680), r("profile_header_full_name"), name.title()),
                _button(c, (40, 720, 520, 820), r("profile_edit_button"), "Edit profile", "noop"),
                *self._nav(c, "profile_tab"),
            ]
        if screen == "switcher":
            sheet = Node("android.widget.LinearLayout", c.box(0, 1300, 1080, 2400), r("bottom_sheet_container"))
            sheet.package = self.package
            for index, name in enumerate(self.accounts):
                top = 1340 + index * 140
                row = Node(
                    "android.widget.LinearLayout",
                    c.box(0, top, 1080, top + 130),
                    r("row_user_container"),
                    action=f"switch:{name}",
                    checkable=True,
                    checked=name == self.current,
                )
                row.add(_text(c, (160, top + 30, 1000, top + 100), r("row_user_primary_name"), name))
                sheet.add(row)
            bottom = 1340 + len(self.accounts) * 140
            sheet.add(
                _button(c, (0, bottom, 1080, bottom + 130), r("add_account_button"), "Add Instagram account", "noop")
            )
            return [_button(c, (0, 80, 1080, 1300), r("touch_outside"), "", "close_switcher"), sheet]
        if screen == "share_choice":
            draft = self.draft
            images = draft is not None and draft.kind == "images"
            first = (
                _button(c, (40, 1700, 1040, 1820), r("share_to_feed"), "Post", "choose:post")
                if images
                else _button(c, (40, 1700, 1040, 1820), r("share_to_reel"), "Reel", "choose:reel")
            )
            return [
                _text(c, (40, 1560, 1040, 1660), r("share_choice_title"), "Share to"),
                first,
                _button(c, (40, 1840, 1040, 1960), r("share_to_story"), "Story", "choose:story"),
            ]
        if screen == "editor":
            return [
                _button(c, (20, 100, 140, 220), r("action_bar_button_back"), "", "back", desc="Back"),
                Node("android.view.View", c.box(0, 240, 1080, 2100), r("media_preview"), desc="Media preview"),
                _button(c, (760, 2180, 1040, 2300), r("next_button_textview"), "Next", "next"),
            ]
        if screen == "caption":
            draft = self.draft
            assert draft is not None
            return [
                _button(c, (20, 100, 140, 220), r("action_bar_button_back"), "", "back", desc="Back"),
                _edit(
                    c,
                    (220, 260, 1040, 600),
                    r("caption_input_text_view"),
                    draft.caption,
                    "Write a caption…",
                    "caption",
                    self.focused_field == "caption",
                ),
                _button(c, (40, 2180, 1040, 2300), r("share_footer_button"), "Share", "post"),
            ]
        return [
            *self.status_nodes(c, now),
            Node("androidx.recyclerview.widget.RecyclerView", c.box(0, 200, 1080, 2260), r("list"), scrollable=True),
            *self._nav(c, "feed_tab"),
        ]
