"""Plain records the simulator keeps and the control API sends (JSON-ready dataclasses)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Fault(StrEnum):
    """Faults a phone can be told to show."""

    UNPLUG = "unplug"  # transport dropped, reconnection refused until replug
    HANG = "hang"  # socket stays open, nothing is answered
    SLOW = "slow"  # sync transfers capped at `bytes_per_second`
    CRASH = "crash"  # the app dies at its next interaction ("keeps stopping")
    LOGIN_WALL = "login_wall"  # the app shows its login screen
    BANNED = "banned"  # the account (or the current one) is banned


@dataclass
class PostRecord:
    """One published post, as the app would show it on the account's profile."""

    id: int
    package: str
    platform: str
    account: str
    kind: str  # "video" or "images"
    title: str
    caption: str
    files: list[str]
    placement: str  # "feed" (TikTok), or Instagram's "reel" / "story" / "post"
    posted_at: float
    sound: str = ""  # the added sound's title, "" for none
    original_volume: int = 100  # percent
    added_volume: int | None = None  # percent, when a sound was added

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> PostRecord:
        """Inverse of :meth:`to_json`."""
        return cls(**raw)


@dataclass
class AppInfo:
    """An installed social app on a phone."""

    package: str
    platform: str
    version: str
    accounts: list[str]
    current: str | None
    banned: list[str]
    login_wall: bool
    running: bool
    screen: str

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> AppInfo:
        """Inverse of :meth:`to_json`."""
        return cls(**raw)


@dataclass
class PhoneInfo:
    """A phone as the control API lists it."""

    serial: str
    port: int
    model: str
    online: bool  # an adb server holds a transport to it
    faults: dict[str, Any]
    foreground: str
    ime: str
    apps: list[AppInfo] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> PhoneInfo:
        """Inverse of :meth:`to_json`."""
        apps = [AppInfo.from_json(a) for a in raw.get("apps", [])]
        return cls(**{**raw, "apps": apps})


@dataclass
class FileEntry:
    """A regular file on a phone."""

    path: str
    size: int
    mode: int
    mtime: int
    md5: str

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> FileEntry:
        """Inverse of :meth:`to_json`."""
        return cls(**raw)
