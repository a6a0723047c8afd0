"""The content of one volume, as the volume content API reads and changes it, confined to it.

sandboxd runs as root and the volume's content is written by sandboxes, so a path is never
resolved by the kernel from the host's root: every step is an ``openat`` relative to the folder
before it, with ``O_NOFOLLOW``. A symlink made inside a volume is reported (``target``) but never
followed, in the middle of a path or at its end; ``..`` is refused; a FIFO or device is neither
read nor written. Each call blocks: the routes run them in a thread.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TypedDict

from ..errors import HostError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK  # NONBLOCK: a FIFO must not hang us
CHUNK = 1 << 20
_OS_STATUS = {
    errno.ENOENT: 404, errno.ENOSPC: 507, errno.EDQUOT: 507, errno.EEXIST: 409,
    errno.ENOTEMPTY: 409, errno.ENOTDIR: 400, errno.EISDIR: 400, errno.ELOOP: 400,
    errno.ENAMETOOLONG: 400, errno.EINVAL: 400, errno.ENXIO: 400, errno.EPERM: 403, errno.EACCES: 403,
}


class VolumeEntryStat(TypedDict, total=False):
    """One entry, as the SDK's ``VolumeEntryStat`` reads it (``target`` only for a symlink)."""

    name: str
    type: str
    path: str
    size: int
    mode: int
    uid: int
    gid: int
    atime: str
    mtime: str
    ctime: str
    target: str


def os_error(exc: OSError, path: str) -> HostError:
    """The answer to an OS error on ``path``: 404 missing, 507 the volume is full, 400/409 else."""
    status = _OS_STATUS.get(exc.errno or 0, 500)
    reason = {
        404: "does not exist",
        507: "cannot be written: the volume is full (no space left on its disk)",
    }.get(status, exc.strerror or str(exc))
    return HostError(status, f"path {path!r} {reason}")


def split(path: str) -> list[str]:
    """The components of a volume path (leading ``/`` optional); HostError(400) for ``..``."""
    if "\0" in path:
        raise HostError(400, "a volume path cannot hold a NUL byte")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise HostError(400, f"volume path {path!r} must not hold '..': paths are inside the volume")
    return parts


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _entry(info: os.stat_result, parts: list[str], target: str | None = None) -> VolumeEntryStat:
    kind = (
        "directory" if stat.S_ISDIR(info.st_mode)
        else "file" if stat.S_ISREG(info.st_mode)
        else "symlink" if stat.S_ISLNK(info.st_mode)
        else "unknown"
    )
    entry: VolumeEntryStat = {
        "name": parts[-1] if parts else "",
        "type": kind,
        "path": "/" + "/".join(parts),
        "size": info.st_size,
        "mode": stat.S_IMODE(info.st_mode),
        "uid": info.st_uid,
        "gid": info.st_gid,
        "atime": _iso(info.st_atime),
        "mtime": _iso(info.st_mtime),
        "ctime": _iso(info.st_ctime),
    }
    if target is not None:
        entry["target"] = target
    return entry


class VolumeContent:
    """Operations under one volume's root folder on the host."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _walk(self, parts: list[str], path: str, *, create: bool = False) -> int:
        """An fd of the folder ``parts`` names, every step a real folder (no symlink followed);
        with ``create`` missing folders are made. The caller closes it."""
        fd = os.open(self.root, _DIR_FLAGS)
        try:
            for part in parts:
                if create:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, 0o777, dir_fd=fd)
                try:
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ENOTDIR, errno.ELOOP):
                        raise HostError(
                            400,
                            f"path {path!r} goes through {part!r}, which is not a folder "
                            "(symlinks are not followed)",
                        ) from exc
                    raise
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd

    def stat(self, path: str) -> VolumeEntryStat:
        parts = split(path)
        try:
            fd = self._walk(parts[:-1], path)
            try:
                return self._stat_at(fd, parts)
            finally:
                os.close(fd)
        except OSError as exc:
            raise os_error(exc, path) from exc

    def _stat_at(self, fd: int, parts: list[str]) -> VolumeEntryStat:
        if not parts:
            return _entry(os.stat(fd), parts)
        info = os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
        target = os.readlink(parts[-1], dir_fd=fd) if stat.S_ISLNK(info.st_mode) else None
        return _entry(info, parts, target)

    def listing(self, path: str, depth: int) -> list[VolumeEntryStat]:
        parts = split(path)
        try:
            fd = self._walk(parts, path)
        except OSError as exc:
            raise os_error(exc, path) from exc
        try:
            return self._list_at(fd, parts, depth)
        finally:
            os.close(fd)

    def _list_at(self, fd: int, parts: list[str], depth: int) -> list[VolumeEntryStat]:
        found: list[VolumeEntryStat] = []
        for name in sorted(os.listdir(fd)):
            with_name = [*parts, name]
            try:
                entry = self._stat_at(fd, with_name)
            except FileNotFoundError:  # removed meanwhile
                continue
            found.append(entry)
            if depth > 1 and entry["type"] == "directory":
                try:
                    child = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except OSError:
                    continue
                try:
                    found.extend(self._list_at(child, with_name, depth - 1))
                finally:
                    os.close(child)
        return found

    def make_dir(
        self, path: str, *, mode: int | None, owner: tuple[int, int] | None, force: bool
    ) -> VolumeEntryStat:
        """A new folder (its parents too with ``force``); 409 if it exists (unless ``force``)."""
        parts = split(path)
        if not parts:
            raise HostError(400, "the volume's root exists already")
        try:
            fd = self._walk(parts[:-1], path, create=force)
            try:
                try:
                    os.mkdir(parts[-1], 0o777 if mode is None else mode, dir_fd=fd)
                except FileExistsError:
                    if not force:
                        raise
                self._set_at(fd, parts, mode, owner)
                return self._stat_at(fd, parts)
            finally:
                os.close(fd)
        except OSError as exc:
            raise os_error(exc, path) from exc

    def open_write(self, path: str, *, mode: int | None, owner: tuple[int, int] | None) -> IO[bytes]:
        """The file at ``path``, created (with its folders) or emptied, for writing."""
        parts = split(path)
        if not parts:
            raise HostError(400, "the volume's root is a folder, not a file")
        try:
            fd = self._walk(parts[:-1], path, create=True)
            try:
                flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _FILE_FLAGS
                file_fd = os.open(parts[-1], flags, 0o666 if mode is None else mode, dir_fd=fd)
            finally:
                os.close(fd)
            if not stat.S_ISREG(os.fstat(file_fd).st_mode):
                os.close(file_fd)
                raise HostError(400, f"path {path!r} is not a regular file")
            os.set_blocking(file_fd, True)
            if mode is not None:
                os.fchmod(file_fd, mode)
            if owner is not None:
                os.fchown(file_fd, *owner)
        except OSError as exc:
            raise os_error(exc, path) from exc
        return os.fdopen(file_fd, "wb")

    def discard(self, path: str) -> None:
        """Remove a file whose write failed (the volume filled up) so it holds no half file."""
        parts = split(path)
        try:
            fd = self._walk(parts[:-1], path)
            try:
                os.unlink(parts[-1], dir_fd=fd)
            finally:
                os.close(fd)
        except (OSError, HostError):
            pass

    def open_read(self, path: str) -> IO[bytes]:
        parts = split(path)
        try:
            fd = self._walk(parts[:-1], path)
            try:
                if not parts:
                    raise HostError(400, "the volume's root is a folder, not a file")
                file_fd = os.open(parts[-1], os.O_RDONLY | _FILE_FLAGS, dir_fd=fd)
            finally:
                os.close(fd)
            if not stat.S_ISREG(os.fstat(file_fd).st_mode):
                os.close(file_fd)
                raise HostError(400, f"path {path!r} is not a regular file")
            os.set_blocking(file_fd, True)
        except OSError as exc:
            raise os_error(exc, path) from exc
        return os.fdopen(file_fd, "rb", buffering=0)

    def update(self, path: str, *, mode: int | None, owner: tuple[int, int] | None) -> VolumeEntryStat:
        parts = split(path)
        if not parts:
            raise HostError(400, "the volume's root cannot be changed: every sandbox shares it")
        try:
            fd = self._walk(parts[:-1], path)
            try:
                self._set_at(fd, parts, mode, owner)
                return self._stat_at(fd, parts)
            finally:
                os.close(fd)
        except OSError as exc:
            raise os_error(exc, path) from exc

    def _set_at(self, fd: int, parts: list[str], mode: int | None, owner: tuple[int, int] | None) -> None:
        if mode is None and owner is None:
            return
        target = os.open(parts[-1], os.O_RDONLY | _FILE_FLAGS, dir_fd=fd)  # ELOOP for a symlink
        try:
            if mode is not None:
                os.fchmod(target, mode)
            if owner is not None:
                os.fchown(target, *owner)
        finally:
            os.close(target)

    def remove(self, path: str) -> None:
        parts = split(path)
        if not parts:
            raise HostError(400, "the volume's root cannot be removed: destroy the volume instead")
        try:
            fd = self._walk(parts[:-1], path)
            try:
                info = os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
                if stat.S_ISDIR(info.st_mode):
                    shutil.rmtree(parts[-1], dir_fd=fd)  # fd-based: never follows a symlink
                else:
                    os.unlink(parts[-1], dir_fd=fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise os_error(exc, path) from exc


def read_chunks(handle: IO[bytes]) -> Iterator[bytes]:
    """The file's bytes in chunks, closing it at the end."""
    with handle:
        while chunk := handle.read(CHUNK):
            yield chunk
