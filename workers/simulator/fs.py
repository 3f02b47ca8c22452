"""An in-memory file system with Android's layout, enough for adb sync and the shell commands.

``/sdcard`` and ``/storage/self/primary`` are aliases of ``/storage/emulated/0`` (symlinks on a real
phone); paths are normalised to the real location so the media store sees one name per file.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
import time
from dataclasses import dataclass, field

ALIASES: dict[str, str] = {
    "/sdcard": "/storage/emulated/0",
    "/storage/self/primary": "/storage/emulated/0",
    "/mnt/sdcard": "/storage/emulated/0",
}

_DEFAULT_DIRS = (
    "/system/bin",
    "/data/local/tmp",
    "/dev",
    "/proc",
    "/storage/emulated/0/Android/data",
    "/storage/emulated/0/DCIM/Camera",
    "/storage/emulated/0/Download",
    "/storage/emulated/0/Movies",
    "/storage/emulated/0/Music",
    "/storage/emulated/0/Pictures",
)


class FsError(Exception):
    """A failed file operation, carrying the errno a real phone would report."""

    def __init__(self, code: int, path: str) -> None:
        super().__init__(f"{path}: {os.strerror(code)}")
        self.code = code
        self.path = path
        self.reason = os.strerror(code)


@dataclass
class FileNode:
    """A regular file."""

    data: bytes
    mode: int = 0o644
    mtime: int = field(default_factory=lambda: int(time.time()))

    @property
    def st_mode(self) -> int:
        """Type and permission bits as ``stat`` reports them."""
        return stat.S_IFREG | self.mode

    @property
    def size(self) -> int:
        """Length of the content in bytes."""
        return len(self.data)


@dataclass
class DirNode:
    """A directory."""

    children: dict[str, FileNode | DirNode] = field(default_factory=dict)
    mode: int = 0o771
    mtime: int = field(default_factory=lambda: int(time.time()))

    @property
    def st_mode(self) -> int:
        """Type and permission bits as ``stat`` reports them."""
        return stat.S_IFDIR | self.mode

    @property
    def size(self) -> int:
        """Directories report a block, like ext4 and f2fs do."""
        return 4096


Node = FileNode | DirNode


def normalize(path: str, cwd: str = "/") -> str:
    """Absolute, ``.``/``..``-free path with the storage aliases replaced by their target."""
    if not path.startswith("/"):
        path = posixpath.join(cwd, path)
    path = posixpath.normpath(path)
    if path.startswith("//"):
        path = "/" + path.lstrip("/")
    for alias, target in ALIASES.items():
        if path == alias or path.startswith(alias + "/"):
            return target + path[len(alias) :]
    return path


class FileSystem:
    """The phone's files. Not thread-safe by itself: the owning phone serialises access."""

    def __init__(self) -> None:
        self.root = DirNode(mode=0o755)
        for directory in _DEFAULT_DIRS:
            self.mkdir(directory, parents=True)

    def _walk(self, path: str) -> Node | None:
        node: Node = self.root
        for part in [p for p in path.split("/") if p]:
            if not isinstance(node, DirNode):
                return None
            child = node.children.get(part)
            if child is None:
                return None
            node = child
        return node

    def lookup(self, path: str) -> Node | None:
        """The node at ``path``, or None."""
        return self._walk(normalize(path))

    def exists(self, path: str) -> bool:
        """True if anything lives at ``path``."""
        return self.lookup(path) is not None

    def is_dir(self, path: str) -> bool:
        """True if ``path`` is a directory."""
        return isinstance(self.lookup(path), DirNode)

    def _parent(self, path: str, *, create: bool) -> tuple[DirNode, str]:
        full = normalize(path)
        parent_path, name = posixpath.split(full)
        if not name:
            raise FsError(errno.EISDIR, path)
        parent = self._walk(parent_path)
        if parent is None and create:
            self.mkdir(parent_path, parents=True)
            parent = self._walk(parent_path)
        if parent is None:
            raise FsError(errno.ENOENT, path)
        if not isinstance(parent, DirNode):
            raise FsError(errno.ENOTDIR, path)
        return parent, name

    def read(self, path: str) -> bytes:
        """Content of a regular file."""
        node = self.lookup(path)
        if node is None:
            raise FsError(errno.ENOENT, path)
        if isinstance(node, DirNode):
            raise FsError(errno.EISDIR, path)
        return node.data

    def write(
        self,
        path: str,
        data: bytes,
        *,
        mode: int = 0o644,
        mtime: int | None = None,
        make_parents: bool = False,
        append: bool = False,
    ) -> FileNode:
        """Create or replace (or append to) a regular file."""
        parent, name = self._parent(path, create=make_parents)
        existing = parent.children.get(name)
        if isinstance(existing, DirNode):
            raise FsError(errno.EISDIR, path)
        if append and existing is not None:
            data = existing.data + data
        node = FileNode(data=data, mode=mode & 0o7777, mtime=mtime if mtime else int(time.time()))
        parent.children[name] = node
        parent.mtime = node.mtime
        return node

    def mkdir(self, path: str, *, parents: bool = False) -> None:
        """Create a directory; with ``parents`` like ``mkdir -p``."""
        full = normalize(path)
        if parents:
            node: Node = self.root
            for part in [p for p in full.split("/") if p]:
                if not isinstance(node, DirNode):
                    raise FsError(errno.ENOTDIR, path)
                child = node.children.get(part)
                if child is None:
                    child = DirNode()
                    node.children[part] = child
                node = child
            if not isinstance(node, DirNode):
                raise FsError(errno.EEXIST, path)
            return
        parent, name = self._parent(full, create=False)
        if name in parent.children:
            raise FsError(errno.EEXIST, path)
        parent.children[name] = DirNode()

    def remove(self, path: str, *, recursive: bool = False) -> None:
        """Delete a file, or a directory tree when ``recursive``."""
        parent, name = self._parent(path, create=False)
        node = parent.children.get(name)
        if node is None:
            raise FsError(errno.ENOENT, path)
        if isinstance(node, DirNode) and not recursive:
            raise FsError(errno.EISDIR, path)
        del parent.children[name]

    def listdir(self, path: str) -> list[tuple[str, Node]]:
        """Entries of a directory, sorted by name."""
        node = self.lookup(path)
        if node is None:
            raise FsError(errno.ENOENT, path)
        if not isinstance(node, DirNode):
            raise FsError(errno.ENOTDIR, path)
        return sorted(node.children.items())

    def walk_files(self, path: str = "/") -> list[tuple[str, FileNode]]:
        """Every regular file under ``path`` with its full normalised path."""
        start = normalize(path)
        node = self._walk(start)
        found: list[tuple[str, FileNode]] = []
        if isinstance(node, FileNode):
            return [(start, node)]
        stack: list[tuple[str, DirNode]] = [(start, node)] if isinstance(node, DirNode) else []
        while stack:
            base, directory = stack.pop()
            for name, child in directory.children.items():
                child_path = posixpath.join(base, name)
                if isinstance(child, DirNode):
                    stack.append((child_path, child))
                else:
                    found.append((child_path, child))
        return sorted(found, key=lambda item: item[0])
