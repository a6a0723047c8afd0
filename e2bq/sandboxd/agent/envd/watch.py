"""Directory watching by comparing snapshots: the fallback when the kernel gives no more inotify
instances or watches (``inotify.py`` is the usual watcher).

A watcher remembers what a directory held (recursively if asked) and reports the difference at
the next look as envd's ``FilesystemEvent``s: a name that appeared is CREATE, one that vanished is
REMOVE (RENAME when its inode turned up under another name, which itself is CREATE), new content is
WRITE, new permission bits CHMOD. Names are relative to the watched directory. Changes undone
between two looks (a file created and removed) go unseen, and each look walks the watched tree.
Uploads in progress (their hidden staging files) are left out: a file appears when it is complete.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
from dataclasses import dataclass
from pathlib import Path

from .connect import Message
from .entries import Owners, entry_info
from .upload import STAGING_PREFIX


@dataclass(frozen=True)
class _Seen:
    inode: tuple[int, int]
    mode: int
    size: int
    mtime_ns: int


Snapshot = dict[str, _Seen]


def snapshot(root: Path, recursive: bool) -> Snapshot:
    """What ``root`` holds now, by name relative to it; empty if ``root`` is gone or unreadable."""
    seen: Snapshot = {}
    pending = [(root, "")]
    while pending:
        directory, prefix = pending.pop()
        try:
            with os.scandir(directory) as items:
                found = list(items)
        except OSError:
            continue
        for item in found:
            if item.name.startswith(STAGING_PREFIX):
                continue  # an upload in progress: its target appears when it completes
            try:
                st = item.stat(follow_symlinks=False)
            except OSError:
                continue
            name = prefix + item.name
            seen[name] = _Seen((st.st_dev, st.st_ino), st.st_mode, st.st_size, st.st_mtime_ns)
            if recursive and stat.S_ISDIR(st.st_mode):
                pending.append((Path(item.path), name + "/"))
    return seen


def _changes(old: Snapshot, new: Snapshot) -> list[tuple[str, str]]:
    """(name, event type) pairs turning ``old`` into ``new``, ordered by name."""
    arrived = {
        after.inode for name, after in new.items() if name not in old or old[name].inode != after.inode
    }
    changes: list[tuple[str, str]] = []
    for name, gone in old.items():
        if name not in new:
            kind = "EVENT_TYPE_RENAME" if gone.inode in arrived else "EVENT_TYPE_REMOVE"
            changes.append((name, kind))
    for name, after in new.items():
        previous = old.get(name)
        if previous is None or previous.inode != after.inode:
            changes.append((name, "EVENT_TYPE_CREATE"))
            continue
        if stat.S_IMODE(previous.mode) != stat.S_IMODE(after.mode):
            changes.append((name, "EVENT_TYPE_CHMOD"))
        content_changed = (previous.size, previous.mtime_ns) != (after.size, after.mtime_ns)
        if content_changed and not stat.S_ISDIR(after.mode):
            changes.append((name, "EVENT_TYPE_WRITE"))
    changes.sort(key=lambda change: change[0])
    return changes


class DirWatcher:
    """Events in one directory since the previous call of :meth:`events` (or since creation)."""

    def __init__(self, root: Path, *, recursive: bool, include_entry: bool) -> None:
        self.root = root
        self.recursive = recursive
        self.include_entry = include_entry
        self._last = snapshot(root, recursive)
        self._lock = threading.Lock()

    def close(self) -> None:
        return None

    def events(self) -> list[Message]:
        """FilesystemEvents for what changed since the last look. Blocking: walks the tree."""
        with self._lock:
            current = snapshot(self.root, self.recursive)
            changes = _changes(self._last, current)
            self._last = current
        owners = Owners()
        events: list[Message] = []
        for name, kind in changes:
            event: Message = {"name": name, "type": kind}
            if self.include_entry and name in current:
                path = self.root / name
                with contextlib.suppress(OSError):  # gone again since the snapshot
                    event["entry"] = entry_info(path, os.lstat(path), owners)
            events.append(event)
        return events
