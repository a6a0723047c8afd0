"""envd's ``filesystem.Filesystem`` service: stat, list, make, move, remove and watch paths.

Paths are those inside the sandbox; relative ones are relative to the user's home. Every blocking
filesystem call runs in a worker thread, so a large listing or removal never stalls other requests.
Watching uses inotify (``inotify.py``; ``watch.py``'s snapshots when the kernel gives no more):
``WatchDir`` reads the events every ``WATCH_POLL_SECONDS``, while a watcher made by
``CreateWatcher`` reads them when ``GetWatcherEvents`` asks, so it reports every change finished
before that call.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import stat
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from ..config import AgentConfig
from ..errors import ConnectError
from ..paths import resolve
from .connect import Message, UnaryHandler, server_stream, unary
from .entries import Owners, entry_info, lstat_entry, os_error
from .inotify import InotifyWatcher
from .watch import DirWatcher

Watcher = InotifyWatcher | DirWatcher

WATCH_POLL_SECONDS = 0.2
MAX_WATCHERS = 64
_SERVICE = "/filesystem.Filesystem/"


def _threaded(handler: Callable[[Message], Message]) -> UnaryHandler:
    async def run(message: Message) -> Message:
        return await asyncio.to_thread(handler, message)

    return run


def _depth(raw: object) -> int:
    """ListDir's depth: 0 or absent lists the directory's children only, as envd does."""
    if raw is None or raw == "":
        return 1
    try:
        if isinstance(raw, bool) or not isinstance(raw, int | str):
            raise ValueError
        depth = int(raw)
    except ValueError as exc:
        raise ConnectError("invalid_argument", f"depth must be a number, not {raw!r}") from exc
    if depth < 0:
        raise ConnectError("invalid_argument", "depth must not be negative")
    return depth or 1


def _walk(directory: Path, depth: int, owners: Owners, out: list[Message]) -> None:
    """Append the entries under ``directory`` down to ``depth`` levels, sorted by name, parents
    before their children; symlinked directories are listed, not entered. Unreadable or vanished
    subdirectories are skipped."""
    try:
        with os.scandir(directory) as items:
            found = sorted(items, key=lambda item: item.name)
    except OSError:
        return
    for item in found:
        try:
            st = item.stat(follow_symlinks=False)
        except OSError:
            continue
        path = Path(item.path)
        out.append(entry_info(path, st, owners))
        if depth > 1 and stat.S_ISDIR(st.st_mode):
            _walk(path, depth - 1, owners, out)


def _existing_dir(path: Path, what: str = "directory") -> None:
    """Raise unless ``path`` (following symlinks) is a directory."""
    try:
        st = os.stat(path)
    except FileNotFoundError as exc:
        raise ConnectError("not_found", f"{what} '{path}' does not exist") from exc
    except OSError as exc:
        raise os_error(exc, "cannot stat", path) from exc
    if not stat.S_ISDIR(st.st_mode):
        raise ConnectError("invalid_argument", f"'{path}' is not a directory")


def _make_parents(path: Path) -> None:
    try:
        os.makedirs(path.parent, exist_ok=True)
    except FileExistsError as exc:  # a file where a parent directory should be
        raise ConnectError(
            "invalid_argument", f"cannot create '{path}': a parent is not a directory"
        ) from exc


def _move_across_devices(source: Path, destination: Path) -> None:
    """``rename`` across filesystems: copy beside the destination, rename, drop the source."""
    staging = destination.with_name(f".e2bq-move-{uuid.uuid4().hex[:16]}")
    try:
        if source.is_dir() and not source.is_symlink():
            shutil.copytree(source, staging, symlinks=True)
        else:
            shutil.copy2(source, staging, follow_symlinks=False)
        os.rename(staging, destination)
    except BaseException:
        with contextlib.suppress(OSError):
            if staging.is_dir() and not staging.is_symlink():
                shutil.rmtree(staging)
            else:
                staging.unlink()
        raise
    if source.is_dir() and not source.is_symlink():
        shutil.rmtree(source)
    else:
        source.unlink()


class FilesystemService:
    """The filesystem of one sandbox, plus the directory watchers its clients created."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self._watchers: dict[str, Watcher] = {}

    def routes(self) -> list[BaseRoute]:
        unary_handlers: dict[str, Callable[[Message], Message]] = {
            "Stat": self._stat,
            "ListDir": self._list_dir,
            "MakeDir": self._make_dir,
            "Move": self._move,
            "Remove": self._remove,
            "GetWatcherEvents": self._get_watcher_events,
        }
        routes: list[BaseRoute] = [
            Route(_SERVICE + name, unary(_threaded(handler)), methods=["POST"])
            for name, handler in unary_handlers.items()
        ]
        # on the event loop: they start and stop following a watcher's events there
        routes.append(Route(_SERVICE + "CreateWatcher", unary(self._create_watcher), methods=["POST"]))
        routes.append(Route(_SERVICE + "RemoveWatcher", unary(self._remove_watcher), methods=["POST"]))
        watch = server_stream(self._watch_dir, keepalive={"keepalive": {}})
        routes.append(Route(_SERVICE + "WatchDir", watch, methods=["POST"]))
        return routes

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        for watcher in self._watchers.values():
            self._retire(watcher)
        self._watchers.clear()

    def _follow(self, watcher: Watcher) -> None:
        """Read an inotify watcher's events as they come (on the event loop), so the folders it
        must add are added at once. Called on the loop."""
        if isinstance(watcher, InotifyWatcher) and watcher.fileno() >= 0:
            asyncio.get_running_loop().add_reader(watcher.fileno(), watcher.pump)

    def _retire(self, watcher: Watcher) -> None:
        """Stop following and close ``watcher``. Called on the loop."""
        if isinstance(watcher, InotifyWatcher) and watcher.fileno() >= 0:
            asyncio.get_running_loop().remove_reader(watcher.fileno())
        watcher.close()

    def _path(self, message: Message, key: str = "path") -> Path:
        return resolve(message.get(key), self.config.home)

    def _stat(self, message: Message) -> Message:
        return {"entry": lstat_entry(self._path(message))}

    def _list_dir(self, message: Message) -> Message:
        path = self._path(message)
        depth = _depth(message.get("depth"))
        _existing_dir(path)
        try:
            os.scandir(path).close()  # an unreadable top directory is an error, not an empty list
        except OSError as exc:
            raise os_error(exc, "cannot list", path) from exc
        entries: list[Message] = []
        _walk(path, depth, Owners(), entries)
        return {"entries": entries}

    def _make_dir(self, message: Message) -> Message:
        path = self._path(message)
        try:
            os.makedirs(path)
        except FileExistsError as exc:
            if path.is_dir():
                raise ConnectError("already_exists", f"directory '{path}' already exists") from exc
            raise ConnectError("invalid_argument", f"'{path}' already exists and is not a directory") from exc
        except OSError as exc:
            raise os_error(exc, "cannot create directory", path) from exc
        return {"entry": lstat_entry(path)}

    def _move(self, message: Message) -> Message:
        source = self._path(message, "source")
        destination = self._path(message, "destination")
        if not os.path.lexists(source):
            raise ConnectError("not_found", f"source '{source}' does not exist")
        try:
            _make_parents(destination)
            try:
                os.rename(source, destination)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                _move_across_devices(source, destination)
        except OSError as exc:
            raise os_error(exc, "cannot move", source) from exc
        return {"entry": lstat_entry(destination)}

    def _remove(self, message: Message) -> Message:
        path = self._path(message)
        try:
            st = os.lstat(path)
            if stat.S_ISDIR(st.st_mode):
                shutil.rmtree(path)
            else:
                os.unlink(path)
        except FileNotFoundError as exc:
            raise ConnectError("not_found", f"'{path}' does not exist") from exc
        except OSError as exc:
            raise os_error(exc, "cannot remove", exc.filename or path) from exc
        return {}

    def _new_watcher(self, message: Message) -> Watcher:
        path = self._path(message)
        _existing_dir(path, "watched directory")
        recursive, include_entry = bool(message.get("recursive")), bool(message.get("includeEntry"))
        try:
            return InotifyWatcher(path, recursive=recursive, include_entry=include_entry)
        except OSError:  # no inotify instance or watch left for this sandbox's user: poll instead
            return DirWatcher(path, recursive=recursive, include_entry=include_entry)

    def _watcher(self, message: Message) -> tuple[str, Watcher]:
        watcher_id = str(message.get("watcherId") or "")
        watcher = self._watchers.get(watcher_id)
        if watcher is None:
            raise ConnectError("not_found", f"watcher '{watcher_id}' not found")
        return watcher_id, watcher

    async def _create_watcher(self, message: Message) -> Message:
        if len(self._watchers) >= MAX_WATCHERS:
            raise ConnectError("resource_exhausted", f"at most {MAX_WATCHERS} watchers; stop one first")
        watcher = await asyncio.to_thread(self._new_watcher, message)
        watcher_id = "w" + uuid.uuid4().hex[:16]
        self._watchers[watcher_id] = watcher
        self._follow(watcher)
        return {"watcherId": watcher_id}

    def _get_watcher_events(self, message: Message) -> Message:
        _, watcher = self._watcher(message)
        events = watcher.events()
        return {"events": events} if events else {}

    async def _remove_watcher(self, message: Message) -> Message:
        watcher_id, watcher = self._watcher(message)
        self._watchers.pop(watcher_id, None)
        self._retire(watcher)
        return {}

    async def _watch_dir(self, message: Message, _: Request) -> AsyncIterator[Message]:
        watcher = await asyncio.to_thread(self._new_watcher, message)
        self._follow(watcher)
        try:
            yield {"start": {}}
            while True:
                await asyncio.sleep(WATCH_POLL_SECONDS)
                for event in await asyncio.to_thread(watcher.events):
                    yield {"filesystem": event}
        finally:
            self._retire(watcher)
