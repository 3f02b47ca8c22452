"""Finding the files a ``post`` task publishes, on the hub, before anything touches the phone.

- ``material_list`` items are http(s) URLs (downloaded once, cached by content hash) or local paths.
- Local paths must resolve (symlinks and ``..`` included) inside one of ``env.media_roots``;
  anything else is refused with ``PATH_REFUSED``. Relative paths are looked up in each root in turn.
- ``materialLibrary`` picks from every media root; ``materials_tags`` (comma-separated) keeps only
  files that sit under a folder named like one of the tags, at any depth, ignoring case.
- ``localFolder`` picks from the files directly inside ``material_path`` (itself under a root).
- Picks are a seeded random sample (seed = task id), so a retried task posts the same files.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import tempfile
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from shared.failures import FailureKind
from shared.scripts import PostConfig
from workers.scripts.base import WINDOWS_DRIVE, HubEnvironment, ScriptFailure

VIDEO_TYPES = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
    ".webm": "video/webm",
    ".3gp": "video/3gpp",
    ".mkv": "video/x-matroska",
}
IMAGE_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".heic": "image/heic",
    ".gif": "image/gif",
}
_CONTENT_TYPE_EXT = {mime: ext for ext, mime in {**VIDEO_TYPES, **IMAGE_TYPES}.items() if ext not in (".m4v", ".jpeg")}


@dataclass(frozen=True)
class Material:
    """A file ready to push: where it is on the hub, and what it is."""

    path: Path
    kind: str  # "video" | "images"
    mime: str
    source: str  # what the task named (path or URL), for messages

    @property
    def extension(self) -> str:
        """The file's suffix, lower-case with the dot."""
        return self.path.suffix.lower()


def kind_of(path: Path) -> tuple[str, str] | None:
    """("video"|"images", mime) by extension, or None for anything else."""
    ext = path.suffix.lower()
    if ext in VIDEO_TYPES:
        return "video", VIDEO_TYPES[ext]
    if ext in IMAGE_TYPES:
        return "images", IMAGE_TYPES[ext]
    return None


def _sniff_extension(head: bytes) -> str | None:
    """File type from its first bytes, for URLs whose name and headers say nothing useful."""
    if head[4:8] == b"ftyp":
        return ".mov" if head[8:10] == b"qt" else ".mp4"
    if head.startswith(b"\xff\xd8\xff"):
        return ".jpg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return ".png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ".webp"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return ".webm"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return ".gif"
    return None


def safe_local_path(raw: str, roots: tuple[Path, ...]) -> Path:
    """Resolve a path the task named; refuse it unless it lands inside a media root."""
    if not roots:
        raise ScriptFailure(FailureKind.PATH_REFUSED, f"{raw}: no media roots are configured on this hub")
    resolved_roots = [root.resolve() for root in roots]
    given = Path(raw).expanduser()
    candidates = [given] if given.is_absolute() else [root / given for root in resolved_roots]
    for candidate in candidates:
        # resolve() follows symlinks and folds "..": what is checked is where the bytes really are.
        real = candidate.resolve()
        if not any(real == root or real.is_relative_to(root) for root in resolved_roots):
            raise ScriptFailure(FailureKind.PATH_REFUSED, f"{raw}: outside the hub's media roots")
        if real.exists():
            return real
    raise ScriptFailure(FailureKind.MATERIAL_MISSING, f"{raw}: no such file under the media roots")


def _pick(candidates: list[Path], count: int, seed: int, what: str) -> list[Path]:
    if len(candidates) < count:
        raise ScriptFailure(
            FailureKind.MATERIAL_MISSING, f"{what}: {count} file(s) needed, {len(candidates)} available"
        )
    return sorted(random.Random(seed).sample(sorted(candidates), count))


def _files_of_kind(folder: Path, kind: str, *, recursive: bool) -> list[Path]:
    pattern = folder.rglob("*") if recursive else folder.glob("*")
    found = []
    for path in pattern:
        detected = kind_of(path)
        if detected is not None and detected[0] == kind and path.is_file() and not path.name.startswith("."):
            found.append(path)
    return found


class MediaCache:
    """Downloaded materials, stored as ``<sha256><ext>`` with a URL index and an LRU size cap."""

    def __init__(self, env: HubEnvironment) -> None:
        self.root = env.media_cache_dir
        self.max_download = env.download_max_bytes
        self.max_total = env.media_cache_max_bytes

    def _index_file(self, url: str) -> Path:
        return self.root / "urls" / (hashlib.sha256(url.encode()).hexdigest() + ".json")

    def lookup(self, url: str) -> Path | None:
        """The cached file for ``url``, if it is still there (and mark it recently used)."""
        try:
            entry = json.loads(self._index_file(url).read_text())
        except (OSError, ValueError):
            return None
        path = self.root / f"{entry['sha256']}{entry['ext']}"
        if not path.is_file():
            return None
        os.utime(path)
        return path

    def fetch(self, url: str, between_chunks: Callable[[], None] | None = None, timeout: float = 60.0) -> Path:
        """The file behind ``url``, downloaded at most once."""
        cached = self.lookup(url)
        if cached is not None:
            return cached
        (self.root / "urls").mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        head = b""
        fd, tmp_name = tempfile.mkstemp(dir=self.root, prefix=".download-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out, httpx.stream("GET", url, follow_redirects=True, timeout=timeout) as resp:
                if resp.status_code >= 400:
                    kind = FailureKind.TIMEOUT if resp.status_code >= 500 else FailureKind.MATERIAL_MISSING
                    raise ScriptFailure(kind, f"{url}: HTTP {resp.status_code}")
                declared = int(resp.headers.get("content-length") or 0)
                if declared > self.max_download:
                    raise ScriptFailure(
                        FailureKind.MATERIAL_MISSING, f"{url}: {declared} bytes exceeds the {self.max_download} limit"
                    )
                content_type = resp.headers.get("content-type", "").split(";")[0].strip().lower()
                for chunk in resp.iter_bytes(256 * 1024):
                    size += len(chunk)
                    if size > self.max_download:
                        raise ScriptFailure(
                            FailureKind.MATERIAL_MISSING, f"{url}: larger than the {self.max_download}-byte limit"
                        )
                    if len(head) < 16:
                        head += chunk[:16]
                    digest.update(chunk)
                    out.write(chunk)
                    if between_chunks is not None:
                        between_chunks()
            ext = Path(urllib.parse.urlsplit(url).path).suffix.lower()
            if kind_of(Path("x" + ext)) is None:
                ext = _sniff_extension(head) or _CONTENT_TYPE_EXT.get(content_type, "")
            final = self.root / f"{digest.hexdigest()}{ext}"
            tmp.replace(final)  # atomic: two hubs threads fetching the same URL both end up right
            index = self._index_file(url)
            index.write_text(json.dumps({"url": url, "sha256": digest.hexdigest(), "ext": ext, "size": size}))
            self._evict(keep=final)
            return final
        except httpx.HTTPError as exc:
            raise ScriptFailure(FailureKind.TIMEOUT, f"{url}: download failed: {exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)

    def _evict(self, keep: Path) -> None:
        files = [p for p in self.root.iterdir() if p.is_file() and not p.name.startswith(".")]
        total = sum(p.stat().st_size for p in files)
        for path in sorted(files, key=lambda p: p.stat().st_mtime):
            if total <= self.max_total:
                break
            if path == keep:
                continue
            total -= path.stat().st_size
            path.unlink(missing_ok=True)


def resolve_materials(
    config: PostConfig,
    env: HubEnvironment,
    *,
    seed: int,
    between_chunks: Callable[[], None] | None = None,
) -> list[Material]:
    """The files this post publishes, in order, all present on the hub."""
    kind = "video" if config.content_type == 0 else "images"
    count = 1 if kind == "video" else config.image_count
    if config.material_list:
        cache = MediaCache(env)
        found: list[Material] = []
        for given in config.material_list:
            item = env.local_path(given)
            if WINDOWS_DRIVE.match(item):
                raise ScriptFailure(
                    FailureKind.PATH_REFUSED,
                    f"{given}: a Windows path; map its folder to one on the hub with PHONEFLEET_MEDIA_PATH_MAP",
                )
            scheme = urllib.parse.urlsplit(item).scheme.lower()
            if scheme in ("http", "https"):
                path = cache.fetch(item, between_chunks)
            elif scheme in ("", "file"):
                path = safe_local_path(urllib.parse.unquote(item[7:]) if scheme == "file" else item, env.media_roots)
            else:
                raise ScriptFailure(FailureKind.BAD_CONFIG, f"{item}: only local paths and http(s) URLs are accepted")
            detected = kind_of(path)
            if detected is None or detected[0] != kind:
                what = "a video" if kind == "video" else "an image"
                raise ScriptFailure(
                    FailureKind.BAD_CONFIG, f"{item}: is not {what} (content_type {config.content_type})"
                )
            found.append(Material(path, detected[0], detected[1], item))
        # A video post publishes one video; an image post publishes every listed image.
        return found[:1] if kind == "video" else found
    if config.material_source == "localFolder":
        folder = safe_local_path(env.local_path(config.material_path), env.media_roots)
        if not folder.is_dir():
            raise ScriptFailure(FailureKind.MATERIAL_MISSING, f"{config.material_path}: not a folder")
        picked = _pick(_files_of_kind(folder, kind, recursive=False), count, seed, config.material_path)
    else:
        if not env.media_roots:
            raise ScriptFailure(FailureKind.MATERIAL_MISSING, "no media roots are configured on this hub")
        tags = {t.strip().lower() for t in config.materials_tags.split(",") if t.strip()}
        candidates: list[Path] = []
        for root in env.media_roots:
            real_root = root.resolve()
            for path in _files_of_kind(real_root, kind, recursive=True):
                real = path.resolve()
                if not real.is_relative_to(real_root):
                    continue  # a symlink out of the library is not part of it
                folders = {part.lower() for part in path.relative_to(real_root).parts[:-1]}
                if not tags or tags & folders:
                    candidates.append(path)
        what = "material library" + (f" (tags {sorted(tags)})" if tags else "")
        picked = _pick(candidates, count, seed, what)
    result = []
    for path in picked:
        detected = kind_of(path)
        assert detected is not None
        result.append(Material(path, detected[0], detected[1], str(path)))
    return result


def file_digest(path: Path) -> tuple[str, str]:
    """(sha256, md5) of a file, read once."""
    sha, md5 = hashlib.sha256(), hashlib.md5()  # noqa: S324 - md5 only to compare with the phone's md5sum
    with path.open("rb") as source:
        for block in iter(lambda: source.read(1 << 20), b""):
            sha.update(block)
            md5.update(block)
    return sha.hexdigest(), md5.hexdigest()
