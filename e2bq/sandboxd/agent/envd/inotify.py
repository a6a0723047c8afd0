"""Directory watching with the kernel's inotify (through libc), as E2B's envd watches.

Every change is an event of its own, in order, as envd's fsnotify reports it: a file written
through envd is CREATE, CHMOD (its chown), WRITE; a rename is RENAME of the old name and CREATE of
the new. Names are relative to the watched directory. With ``recursive``, a folder that appears
later is watched from then on; what was put in it before its watch began (it can be a moment) is
reported as CREATE (and WRITE for a file with content), so nothing made in it goes unseen.

Uploads are written to a hidden staging file renamed over their target (``upload.py``); the
staging file's own events are left out and its rename is reported as envd's in-place write would
be: CREATE (when the name is new), CHMOD, WRITE.

The agent reads a watcher's queue as soon as the kernel has events in it (:meth:`pump`, called
from its event loop), so that a new folder is watched within moments of its creation, and again
when :meth:`events` is called, so that every change finished before that call is reported. Events
not yet asked for are kept up to ``MAX_PENDING``; past that, newer ones are dropped. A new folder
is scanned on the event loop: a large tree moved in at once delays other requests a little.

Making a watcher raises OSError when the kernel gives no more inotify instances or watches (the
caller falls back to ``watch.DirWatcher``).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import stat
import struct
import threading
from pathlib import Path

from .connect import Message
from .entries import Owners, entry_info
from .upload import STAGING_PREFIX

IN_MODIFY = 0x2
IN_ATTRIB = 0x4
IN_MOVED_FROM = 0x40
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_EXCL_UNLINK = 0x04000000
IN_ISDIR = 0x40000000
_EVENTS = IN_MODIFY | IN_ATTRIB | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
_FLAGS = os.O_NONBLOCK | os.O_CLOEXEC
_HEADER = struct.Struct("iIII")
_KINDS = (
    (IN_CREATE, "EVENT_TYPE_CREATE"),
    (IN_MOVED_TO, "EVENT_TYPE_CREATE"),
    (IN_MODIFY, "EVENT_TYPE_WRITE"),
    (IN_ATTRIB, "EVENT_TYPE_CHMOD"),
    (IN_DELETE, "EVENT_TYPE_REMOVE"),
    (IN_MOVED_FROM, "EVENT_TYPE_RENAME"),
)
_GONE = ("EVENT_TYPE_REMOVE", "EVENT_TYPE_RENAME")
MAX_PENDING = 10_000

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> int:
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")
    return result


class InotifyWatcher:
    """Events in one directory (and, if ``recursive``, its folders) since the last :meth:`events`."""

    def __init__(self, root: Path, *, recursive: bool, include_entry: bool) -> None:
        self.root = root
        self.recursive = recursive
        self.include_entry = include_entry
        self._fd = _check(_libc.inotify_init1(_FLAGS), "inotify_init1")
        self._prefixes: dict[int, str] = {}  # watch descriptor -> its folder, relative to root
        self._names: dict[str, set[str]] = {}  # folder -> what it holds (was a name there before?)
        self._staged: set[int] = set()  # rename cookies of staging files moved over their target
        self._pending: list[Message] = []
        self._owners = Owners()
        self._lock = threading.Lock()
        try:
            self._watch("", follow=True)
            if recursive:
                for folder in self._subfolders(""):
                    self._watch(folder, follow=False)
        except OSError:
            self.close()
            raise

    def close(self) -> None:
        with self._lock:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1

    def fileno(self) -> int:
        return self._fd

    def pump(self) -> None:
        """Read what the kernel has queued, unless another thread is reading it right now."""
        if self._lock.acquire(blocking=False):
            try:
                if self._fd >= 0:
                    self._drain()
            finally:
                self._lock.release()

    def _watch(self, folder: str, *, follow: bool) -> None:
        """Watch ``folder``; a folder gone meanwhile is skipped, running out of watches raises."""
        flags = _EVENTS | IN_ONLYDIR | IN_EXCL_UNLINK | (0 if follow else IN_DONT_FOLLOW)
        path = os.fsencode(self.root / folder if folder else self.root)
        wd = _libc.inotify_add_watch(self._fd, path, flags)
        if wd < 0:
            code = ctypes.get_errno()
            if code in (errno.ENOENT, errno.ENOTDIR, errno.EACCES) and folder:
                return
            raise OSError(code, f"inotify_add_watch '{path.decode(errors='replace')}': {os.strerror(code)}")
        self._prefixes[wd] = folder
        try:
            self._names[folder] = set(os.listdir(os.fsdecode(path)))
        except OSError:
            self._names[folder] = set()

    def _subfolders(self, folder: str) -> list[str]:
        """Every folder under ``folder`` (relative to root), parents first; symlinks not followed."""
        found: list[str] = []
        pending = [folder]
        while pending:
            current = pending.pop()
            try:
                with os.scandir(self.root / current if current else self.root) as items:
                    for item in items:
                        if item.is_dir(follow_symlinks=False):
                            name = f"{current}/{item.name}" if current else item.name
                            found.append(name)
                            pending.append(name)
            except OSError:
                continue
        return found

    def events(self) -> list[Message]:
        """FilesystemEvents for what happened since the last call. Blocking: reads the queue."""
        with self._lock:
            if self._fd >= 0:
                self._drain()
            pending, self._pending = self._pending, []
            self._owners = Owners()  # users added meanwhile are seen from the next call
        return pending

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self._fd, 64 * 1024)
            except BlockingIOError:
                return
            offset = 0
            while offset < len(data):
                wd, mask, cookie, length = _HEADER.unpack_from(data, offset)
                raw = data[offset + _HEADER.size : offset + _HEADER.size + length]
                offset += _HEADER.size + length
                self._handle(wd, mask, cookie, os.fsdecode(raw.rstrip(b"\0")))

    def _add(self, name: str, kind: str) -> None:
        """Keep an event; its entry describes the path as it is now, just after the change."""
        if len(self._pending) >= MAX_PENDING:
            return
        event: Message = {"name": name, "type": kind}
        if self.include_entry and kind not in _GONE:
            path = self.root / name
            with contextlib.suppress(OSError):  # gone again already
                event["entry"] = entry_info(path, os.lstat(path), self._owners)
        self._pending.append(event)

    def _handle(self, wd: int, mask: int, cookie: int, name: str) -> None:
        if mask & IN_IGNORED:
            folder = self._prefixes.pop(wd, None)
            if folder is not None:
                self._names.pop(folder, None)
            return
        folder = self._prefixes.get(wd)
        if folder is None or mask & IN_Q_OVERFLOW or not name:
            return
        relative = f"{folder}/{name}" if folder else name
        names = self._names.setdefault(folder, set())
        if name.startswith(STAGING_PREFIX):
            if mask & IN_MOVED_FROM:
                self._staged.add(cookie)
            return
        if mask & IN_MOVED_TO and cookie in self._staged:
            self._staged.discard(cookie)
            self._upload_written(relative, existed=name in names)
            names.add(name)
            return
        for flag, kind in _KINDS:
            if mask & flag:
                self._add(relative, kind)
        if mask & (IN_DELETE | IN_MOVED_FROM):
            names.discard(name)
        if mask & (IN_CREATE | IN_MOVED_TO):
            names.add(name)
            if self.recursive and mask & IN_ISDIR:
                self._new_folder(relative, created=bool(mask & IN_CREATE))

    def _upload_written(self, relative: str, *, existed: bool) -> None:
        """What envd's in-place write of an upload shows: create, chown, write."""
        if not existed:
            self._add(relative, "EVENT_TYPE_CREATE")
        self._add(relative, "EVENT_TYPE_CHMOD")
        if existed or self._size(relative) > 0:
            self._add(relative, "EVENT_TYPE_WRITE")

    def _new_folder(self, relative: str, *, created: bool) -> None:
        """Watch a folder that appeared (and those in it); report what a new one already holds."""
        with contextlib.suppress(OSError):  # out of watches: the rest of the tree goes unwatched
            self._watch(relative, follow=False)
            for folder in self._subfolders(relative):
                self._watch(folder, follow=False)
        if not created:
            return
        for name in sorted(self._contents(relative)):
            self._add(name, "EVENT_TYPE_CREATE")
            if self._size(name) > 0:
                self._add(name, "EVENT_TYPE_WRITE")

    def _contents(self, folder: str) -> list[str]:
        found: list[str] = []
        for sub in [folder, *self._subfolders(folder)]:
            names = self._names.get(sub, set())
            found += [f"{sub}/{name}" for name in names if not name.startswith(STAGING_PREFIX)]
        return found

    def _size(self, relative: str) -> int:
        try:
            st = os.lstat(self.root / relative)
        except OSError:
            return 0
        return st.st_size if stat.S_ISREG(st.st_mode) else 0
