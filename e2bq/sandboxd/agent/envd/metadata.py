"""User metadata of files, kept as ``user.e2b.<key>`` extended attributes, as E2B's envd keeps it.

An upload's ``X-Metadata-<key>: <value>`` headers become the file's metadata: keys lowercased,
keys and values printable US-ASCII, a key at most 246 bytes (the kernel's 255-byte xattr name less
the prefix), all of it (prefix, keys and values) at most 4096 bytes — what one ext4 block holds, and
E2B's limits. An upload replaces the whole set: keys it does not name are cleared. Listings,
``Stat``, ``Move`` and watch events read the set back (following a final symlink, as envd does);
``user.*`` attributes outside ``user.e2b.`` are not metadata, and a value that is not UTF-8 (set by
hand inside the sandbox) is left out rather than breaking the answer.

Attributes live on the file's own filesystem (the sandbox's disk image), count against its space,
and are set through the open staging file, so they cannot land anywhere but on the uploaded file.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterable, Mapping

from ..errors import HTTPError

PREFIX = "user.e2b."
HEADER_PREFIX = "x-metadata-"
MAX_KEY_BYTES = 255 - len(PREFIX)
MAX_TOTAL_BYTES = 4096
_PRINTABLE = re.compile(r"[\x20-\x7e]*")
_UNSUPPORTED = (errno.ENOTSUP, errno.EOPNOTSUPP)

Metadata = dict[str, str]


def from_headers(headers: Iterable[tuple[str, str]]) -> Metadata:
    """The metadata an upload's headers carry, checked; HTTPError(400) saying what is wrong."""
    metadata: Metadata = {}
    for name, value in headers:
        lowered = name.lower()
        if not lowered.startswith(HEADER_PREFIX) or lowered == HEADER_PREFIX:
            continue
        metadata.setdefault(lowered.removeprefix(HEADER_PREFIX), value)
    try:
        validate(metadata)
    except ValueError as exc:
        raise HTTPError(400, f"invalid metadata: {exc}") from exc
    return metadata


def validate(metadata: Mapping[str, str]) -> None:
    """Raise ValueError unless ``metadata`` can be stored as it is."""
    total = 0
    for key, value in metadata.items():
        if not key:
            raise ValueError("a metadata key must not be empty")
        if len(key.encode()) > MAX_KEY_BYTES:
            raise ValueError(f"metadata key {key[:40]!r}... is longer than {MAX_KEY_BYTES} bytes")
        if not _PRINTABLE.fullmatch(key):
            raise ValueError(f"metadata key {key!r} must be printable US-ASCII")
        if not _PRINTABLE.fullmatch(value):
            raise ValueError(f"the value of metadata key {key!r} must be printable US-ASCII")
        total += len(PREFIX) + len(key) + len(value)
    if total > MAX_TOTAL_BYTES:
        raise ValueError(
            f"total metadata size {total} bytes is over {MAX_TOTAL_BYTES} "
            "(keys, values and the user.e2b. prefix of each); keep large data in a file"
        )


def write(fd: int, metadata: Mapping[str, str], path: object) -> None:
    """Make ``metadata`` the whole set of the open file ``fd`` (named ``path`` in errors).

    A filesystem without user xattrs (/proc, /sys) keeps none, as envd. HTTPError 507 (the SDK's
    NotEnoughSpaceException) when the set does not fit: the disk is full, or the set is near
    4 KiB, which ext4 cannot hold beside its own bookkeeping in the one block it gives a file's
    attributes; OSError for anything else.
    """
    try:
        names = os.listxattr(fd)
        for name in names:
            if name.startswith(PREFIX) and name.removeprefix(PREFIX) not in metadata:
                os.removexattr(fd, name)
        for key, value in metadata.items():
            os.setxattr(fd, PREFIX + key, value.encode())
    except OSError as exc:
        if exc.errno in _UNSUPPORTED:
            return
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.E2BIG):
            raise HTTPError(
                507,
                f"not enough space for the metadata of '{path}' ({exc.strerror}): the disk is full, "
                "or the metadata is too large for one filesystem block; store less",
            ) from exc
        raise


def read(path: str | os.PathLike[str]) -> Metadata | None:
    """The metadata of ``path`` (following a final symlink); None when it has none or its
    filesystem keeps none, or it cannot be read."""
    try:
        names = os.listxattr(path)
    except OSError:
        return None
    metadata: Metadata = {}
    for name in names:
        if not name.startswith(PREFIX):
            continue
        try:
            metadata[name.removeprefix(PREFIX)] = os.getxattr(path, name).decode()
        except (OSError, UnicodeDecodeError):
            continue  # removed meanwhile, or bytes set by hand that a JSON string cannot carry
    return metadata or None
