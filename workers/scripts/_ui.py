"""Reading the screen (``uiautomator dump``) and matching it against the selector files.

A selector is a dict whose keys must all match one view (``id``, ``text``, ``text_contains``,
``desc``, ``desc_contains``, ``class``), or a list of such dicts of which any may match. ``id`` is
relative to the package being driven unless it already names a package (``android:id/...``).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

SELECTOR_DIR = Path(__file__).with_name("selectors")
_BOUNDS = re.compile(r"\[(-?\d+),(-?\d+)\]\[(-?\d+),(-?\d+)\]")

SelectorSpec = dict[str, str] | list[dict[str, str]]


@dataclass(frozen=True)
class AppSelectors:
    """One app's selector file: what the script believes the app looks like."""

    platform: str
    default_package: str
    versions: tuple[str, ...]
    activities: dict[str, str]
    selectors: dict[str, SelectorSpec]
    screen_seconds: float
    confirm_seconds: float

    def get(self, name: str) -> SelectorSpec:
        """A named selector; KeyError names the file if it lacks one."""
        try:
            return self.selectors[name]
        except KeyError:
            raise KeyError(f"selector {name!r} missing from selectors/{self.platform}.json") from None


@lru_cache(maxsize=8)
def load_selectors(platform: str) -> AppSelectors:
    """Read ``selectors/<platform>.json`` once per process."""
    raw: dict[str, Any] = json.loads((SELECTOR_DIR / f"{platform}.json").read_text(encoding="utf-8"))
    timeouts = raw.get("timeouts", {})
    return AppSelectors(
        platform=raw["platform"],
        default_package=raw["package"],
        versions=tuple(raw.get("written_for_versions", ())),
        activities=dict(raw["activities"]),
        selectors=dict(raw["selectors"]),
        screen_seconds=float(timeouts.get("screen_seconds", 20)),
        confirm_seconds=float(timeouts.get("confirm_seconds", 60)),
    )


@dataclass(frozen=True)
class View:
    """One node of a dump."""

    rid: str
    text: str
    desc: str
    cls: str
    package: str
    bounds: tuple[int, int, int, int]
    clickable: bool
    focused: bool
    checked: bool

    @property
    def center(self) -> tuple[int, int]:
        """Where a tap on this view lands."""
        left, top, right, bottom = self.bounds
        return (left + right) // 2, (top + bottom) // 2


class Screen:
    """A parsed dump, searchable with selectors."""

    def __init__(self, xml: str, package: str) -> None:
        self.xml = xml
        self.package = package
        # The dump comes from the task's own phone, and expat (>= 2.4) caps entity expansion.
        root = ET.fromstring(xml)  # noqa: S314
        self.views: list[View] = []
        for node in root.iter("node"):
            match = _BOUNDS.fullmatch(node.get("bounds", ""))
            bounds = tuple(int(v) for v in match.groups()) if match else (0, 0, 0, 0)
            self.views.append(
                View(
                    rid=node.get("resource-id", ""),
                    text=node.get("text", ""),
                    desc=node.get("content-desc", ""),
                    cls=node.get("class", ""),
                    package=node.get("package", ""),
                    bounds=(bounds[0], bounds[1], bounds[2], bounds[3]),
                    clickable=node.get("clickable") == "true",
                    focused=node.get("focused") == "true",
                    checked=node.get("checked") == "true",
                )
            )
        self.top_package = self.views[0].package if self.views else ""

    def _matches(self, view: View, rule: dict[str, str]) -> bool:
        for key, expected in rule.items():
            if key == "id":
                wanted = expected if ":id/" in expected else f"{self.package}:id/{expected}"
                if view.rid != wanted:
                    return False
            elif (
                (key == "text" and view.text != expected)
                or (key == "text_contains" and expected.lower() not in view.text.lower())
                or (key == "desc" and view.desc != expected)
                or (key == "desc_contains" and expected.lower() not in view.desc.lower())
                or (key == "class" and view.cls != expected)
            ):
                return False
        return True

    def find_all(self, spec: SelectorSpec) -> list[View]:
        """Every view any rule of the selector matches, in document order."""
        rules = spec if isinstance(spec, list) else [spec]
        return [view for view in self.views if any(self._matches(view, rule) for rule in rules)]

    def find(self, spec: SelectorSpec) -> View | None:
        """The first matching view, or None."""
        found = self.find_all(spec)
        return found[0] if found else None

    def has(self, spec: SelectorSpec) -> bool:
        """True if something matches."""
        return self.find(spec) is not None


def extract_dump(output: str) -> str:
    """The XML part of ``uiautomator dump /dev/tty`` output (it is followed by a status line)."""
    start = output.find("<?xml")
    end = output.rfind("</hierarchy>")
    if start < 0 or end < 0:
        raise ValueError("no hierarchy in uiautomator output: " + output[:200])
    return output[start : end + len("</hierarchy>")]
