"""envd's ``EntryInfo`` built from ``lstat``, and OS errors translated to Connect codes.

Proto3 JSON: lowerCamel names, int64 ``size`` as a string, enums by name, fields at their default
(0, "") left out. A symlink is reported as ``FILE_TYPE_SYMLINK`` with ``symlinkTarget`` (what every
SDK release understands; newer envd adds ``isSymlink``, which older SDKs would reject as unknown),
its ``mode`` being the target's permission bits as envd reports them. ``metadata`` is the entry's
``user.e2b.*`` extended attributes (see ``metadata.py``), left out when it has none.
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import stat
from datetime import UTC, datetime
from pathlib import Path

from ..errors import ConnectError
from . import metadata as file_metadata
from .connect import Message

FILE = "FILE_TYPE_FILE"
DIRECTORY = "FILE_TYPE_DIRECTORY"
SYMLINK = "FILE_TYPE_SYMLINK"

_CODES = {
    errno.ENOENT: "not_found",
    errno.EEXIST: "already_exists",
    errno.EACCES: "permission_denied",
    errno.EPERM: "permission_denied",
    errno.EROFS: "permission_denied",
    errno.ENOTDIR: "invalid_argument",
    errno.EISDIR: "invalid_argument",
    errno.ENAMETOOLONG: "invalid_argument",
    errno.ELOOP: "invalid_argument",
    errno.EINVAL: "invalid_argument",
    errno.ENOTEMPTY: "failed_precondition",
    errno.EBUSY: "failed_precondition",
    errno.ENOSPC: "resource_exhausted",
    errno.EDQUOT: "resource_exhausted",
}


def os_error(exc: OSError, action: str, path: Path | str) -> ConnectError:
    """``ConnectError`` for an OS error, e.g. ``not_found: cannot stat '/x': No such file...``."""
    code = _CODES.get(exc.errno or 0, "internal")
    reason = exc.strerror or str(exc)
    target = f"'{path}'"
    if exc.filename2 is not None:
        target = f"'{exc.filename}' to '{exc.filename2}'"
    return ConnectError(code, f"{action} {target}: {reason}")


class Owners:
    """uid/gid to names from the sandbox's passwd and group files (the number when unknown).

    One instance per request: a listing looks each id up once, and users added later are seen.
    """

    def __init__(self) -> None:
        self._users: dict[int, str] = {}
        self._groups: dict[int, str] = {}

    def user(self, uid: int) -> str:
        if uid not in self._users:
            try:
                self._users[uid] = pwd.getpwuid(uid).pw_name
            except KeyError:
                self._users[uid] = str(uid)
        return self._users[uid]

    def group(self, gid: int) -> str:
        if gid not in self._groups:
            try:
                self._groups[gid] = grp.getgrgid(gid).gr_name
            except KeyError:
                self._groups[gid] = str(gid)
        return self._groups[gid]


def rfc3339(ns: int) -> str | None:
    """A protobuf JSON Timestamp (UTC, 0/3/6/9 fraction digits); None when out of its range."""
    seconds, nanos = divmod(ns, 1_000_000_000)
    try:
        moment = datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
    if nanos == 0:
        fraction = ""
    elif nanos % 1_000_000 == 0:
        fraction = f".{nanos // 1_000_000:03d}"
    elif nanos % 1_000 == 0:
        fraction = f".{nanos // 1_000:06d}"
    else:
        fraction = f".{nanos:09d}"
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


def _file_type(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return FILE
    if stat.S_ISDIR(mode):
        return DIRECTORY
    if stat.S_ISLNK(mode):
        return SYMLINK
    return None  # FIFOs, sockets, devices: FILE_TYPE_UNSPECIFIED, which the SDK skips


def _symlink(path: Path) -> tuple[str, int | None]:
    """The absolute target of a link (resolved when possible) and the target's permission bits."""
    try:
        target = os.path.realpath(path, strict=True)
        return target, stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        raw = os.readlink(path)
        return os.path.normpath(os.path.join(path.parent, raw)), None


def entry_info(path: Path, st: os.stat_result, owners: Owners) -> Message:
    """EntryInfo of ``path`` given its ``lstat``; ``path`` is reported as given."""
    entry: Message = {"name": path.name or str(path), "path": str(path)}
    file_type = _file_type(st.st_mode)
    if file_type is not None:
        entry["type"] = file_type
    if st.st_size:
        entry["size"] = str(st.st_size)
    mode: int | None = stat.S_IMODE(st.st_mode)
    if file_type == SYMLINK:
        try:
            entry["symlinkTarget"], mode = _symlink(path)
        except OSError:
            mode = None
    if mode:
        entry["mode"] = mode
    entry["permissions"] = stat.filemode(st.st_mode)
    entry["owner"] = owners.user(st.st_uid)
    entry["group"] = owners.group(st.st_gid)
    modified = rfc3339(st.st_mtime_ns)
    if modified is not None:
        entry["modifiedTime"] = modified
    metadata = file_metadata.read(path)
    if metadata:
        entry["metadata"] = metadata
    return entry


def lstat_entry(path: Path, owners: Owners | None = None, action: str = "cannot stat") -> Message:
    """EntryInfo of ``path`` (not following a final symlink); ConnectError when it fails."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise os_error(exc, action, path) from exc
    return entry_info(path, st, owners or Owners())
