"""The screen as a view tree: what ``uiautomator dump`` prints, what a tap hits, what a screenshot shows."""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from xml.sax.saxutils import escape

from PIL import Image, ImageDraw, ImageFont

Bounds = tuple[int, int, int, int]  # left, top, right, bottom

_XML_ENTITIES = {'"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}


@dataclass
class Node:
    """One view: the attributes uiautomator reports, plus the app action a tap on it triggers."""

    cls: str = "android.widget.FrameLayout"
    bounds: Bounds = (0, 0, 0, 0)
    rid: str = ""
    text: str = ""
    desc: str = ""
    hint: str = ""
    package: str = ""
    action: str | None = None
    clickable: bool = False
    focusable: bool = False
    focused: bool = False
    enabled: bool = True
    selected: bool = False
    checkable: bool = False
    checked: bool = False
    scrollable: bool = False
    password: bool = False
    children: list[Node] = field(default_factory=list)

    def add(self, *children: Node) -> Node:
        """Append children (inheriting the package when unset); returns self for chaining."""
        for child in children:
            if not child.package:
                child.package = self.package
            child._inherit(self.package)
            self.children.append(child)
        return self

    def _inherit(self, package: str) -> None:
        for child in self.children:
            if not child.package:
                child.package = package
            child._inherit(package)

    def walk(self) -> Iterator[Node]:
        """This node and every descendant, depth first in drawing order."""
        yield self
        for child in self.children:
            yield from child.walk()

    def contains(self, x: int, y: int) -> bool:
        """True if the point is inside the bounds (right and bottom edges excluded)."""
        left, top, right, bottom = self.bounds
        return left <= x < right and top <= y < bottom

    def hit(self, x: int, y: int) -> Node | None:
        """The topmost node with an action under the point, as Android dispatches a touch."""
        if not self.contains(x, y):
            return None
        for child in reversed(self.children):
            found = child.hit(x, y)
            if found is not None:
                return found
        return self if (self.action is not None and self.enabled) else None


def _attr(value: str) -> str:
    return escape(value, _XML_ENTITIES)


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _node_xml(node: Node, index: int, out: list[str]) -> None:
    left, top, right, bottom = node.bounds
    out.append(
        f'<node index="{index}" text="{_attr(node.text)}" resource-id="{_attr(node.rid)}" '
        f'class="{node.cls}" package="{node.package}" content-desc="{_attr(node.desc)}" '
        f'checkable="{_flag(node.checkable)}" checked="{_flag(node.checked)}" '
        f'clickable="{_flag(node.clickable or node.action is not None)}" enabled="{_flag(node.enabled)}" '
        f'focusable="{_flag(node.focusable)}" focused="{_flag(node.focused)}" '
        f'scrollable="{_flag(node.scrollable)}" long-clickable="false" password="{_flag(node.password)}" '
        f'selected="{_flag(node.selected)}" bounds="[{left},{top}][{right},{bottom}]"'
    )
    if node.hint:
        out.append(f' hint="{_attr(node.hint)}"')
    if not node.children:
        out.append(" />")
        return
    out.append(">")
    for child_index, child in enumerate(node.children):
        _node_xml(child, child_index, out)
    out.append("</node>")


def hierarchy_xml(root: Node, rotation: int = 0) -> str:
    """The dump in the format of ``uiautomator dump`` (one line, UTF-8)."""
    out = ["<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>", f'<hierarchy rotation="{rotation}">']
    _node_xml(root, 0, out)
    out.append("</hierarchy>")
    return "".join(out)


# -- screenshots ---------------------------------------------------------------------------------

_PALETTE = {
    "com.zhiliaoapp.musically": (18, 18, 18),
    "com.instagram.android": (250, 250, 250),
    "android": (48, 48, 56),
}
_render_lock = threading.Lock()


@lru_cache(maxsize=4)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):
        return ImageFont.load_default()


def _background(package: str) -> tuple[int, int, int]:
    for prefix, colour in _PALETTE.items():
        if package.startswith(prefix):
            return colour
    return (33, 66, 99)


def _render(root: Node, width: int, height: int) -> bytes:
    background = _background(root.package)
    dark = sum(background) < 384
    ink = (240, 240, 240) if dark else (20, 20, 20)
    image = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(image)
    font = _font(34)
    for node in root.walk():
        if node is root:
            continue
        left, top, right, bottom = node.bounds
        if right <= left or bottom <= top:
            continue
        if node.action is not None:
            fill = (254, 44, 85) if node.text in ("Post", "Share", "Next") else None
            draw.rounded_rectangle((left, top, right - 1, bottom - 1), radius=12, outline=ink, fill=fill, width=2)
        label = node.text or node.hint or node.desc
        if label:
            draw.text((left + 16, top + 12), label[:60], fill=ink, font=font)
    buffer = io.BytesIO()
    # Level 1: a screenshot is taken often and thrown away; speed matters more than bytes.
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


_png_cache: dict[str, bytes] = {}


def render_png(root: Node, width: int, height: int) -> bytes:
    """A real PNG of the screen: background, outlined clickable views, their texts. Cached by content."""
    key = hashlib.sha256(f"{width}x{height}".encode() + hierarchy_xml(root).encode()).hexdigest()
    cached = _png_cache.get(key)
    if cached is not None:
        return cached
    with _render_lock:  # Pillow's font objects are shared; keep drawing single-file
        data = _render(root, width, height)
    if len(_png_cache) > 64:
        _png_cache.clear()
    _png_cache[key] = data
    return data
