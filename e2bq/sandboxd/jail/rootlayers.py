"""A templated sandbox's own changes to its ``/``, kept in a layer, and the root chain built on them.

A sandbox on a template writes everything outside home and /tmp into its root overlay's upper folder
(see ``rootfs``). A snapshot or a fork of it copies that folder into the layer, beside the layer's
``tree``, as ``system/0``; if the sandbox was itself made from a layer, that layer's own parts follow
as ``system/1..n`` (hard links: parts are never written again), so a layer holds its whole chain and
outlives the layers it came from. A sandbox made from the layer gets the lower chain
``system/0:system/1:...:<template>`` under its own upper folder.

Owners are stored canonically: the source's files belong to host ids ``B+u`` of its uid range
(``idmap``), so each becomes ``u`` in the copy; the new sandbox sees the parts through one idmapped
mount of ``system`` with its own range's map, as it sees its template. Ids outside the range (which
the source saw as the overflow id) become that id, 65534. ``system`` is root's alone (0700): the
copy may hold setuid files owned by 0, reachable by nobody on the host, and the jail's overlay is
mounted nosuid anyway. Whiteouts (character devices 0:0) and ``trusted.overlay.*`` attributes
(opaque folders) are kept by ``cp -a`` run as root, so deletions and replaced folders stay so.
"""

from __future__ import annotations

import os
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from . import bwrap, idmap, rootfs

SYSTEM = "system"  # beside a layer's tree: its root parts, 0 topmost
OVERFLOW_ID = 65534  # what a user namespace shows for an id it does not map
_TIMEOUT = 600.0  # seconds a copy may take


class RootLayerError(OSError):
    """A root part could not be copied or mounted."""


class LayerRoot(TypedDict):
    """Which template's build a layer's root parts lie on (a layer record's ``root``)."""

    template: str  # the template's name, as the source sandbox was created with it
    rootfs: str  # that build's root filesystem (``builds/<hash>/rootfs``)
    parts: int  # how many parts ``system`` holds


@dataclass(frozen=True)
class RootSource:
    """What of a templated sandbox's root a capture copies."""

    upper: Path  # its root overlay's upper folder
    base: int  # the first host id of its uid range
    below: Path | None  # the ``system`` folder of the layer its root lies on, if any
    template: str
    rootfs: Path


def upper_of(paths: bwrap.JailPaths, *, layered: bool) -> Path:
    """Where a jail's root overlay keeps its upper folder: on its image, which is ``paths.data``
    for a disk of its own, ``paths.disk`` under a layered data folder (an overlay cannot hold
    another overlay's upper)."""
    return image_root(paths, layered=layered) / rootfs.SYSTEM / "upper"


def image_root(paths: bwrap.JailPaths, *, layered: bool) -> Path:
    return paths.disk if layered else paths.data


def capture(source: RootSource, target: Path) -> LayerRoot:
    """Copy ``source``'s root changes (and the chain below them) into ``target``. Blocks.
    Raises RootLayerError."""
    target.mkdir(mode=0o700)
    copy = ["cp", "-a", "--sparse=always", "--reflink=auto", "--no-target-directory"]
    _run([*copy, str(source.upper), str(target / "0")])
    canonicalize(target / "0", source.base)
    parts = 1
    for part in range(count(source.below) if source.below is not None else 0):
        assert source.below is not None
        _run(["cp", "-al", "--no-target-directory", str(source.below / str(part)), str(target / str(parts))])
        parts += 1
    return LayerRoot(template=source.template, rootfs=str(source.rootfs), parts=parts)


def count(system: Path) -> int:
    """How many parts a ``system`` folder holds (0, 1, ... with none missing)."""
    parts = 0
    while (system / str(parts)).is_dir():
        parts += 1
    return parts


def canonicalize(tree: Path, base: int) -> None:
    """Shift owners in ``tree`` from the range starting at ``base`` to 0..65535, modes kept
    (a chown clears setuid and setgid). Never follows a symlink. Blocks."""
    _shift(str(tree), base)
    for folder, folders, files in os.walk(tree):  # each entry once: as its parent's child
        for name in (*folders, *files):
            _shift(os.path.join(folder, name), base)


def _shift(path: str, base: int) -> None:
    found = os.lstat(path)
    uid, gid = _canonical(found.st_uid, base), _canonical(found.st_gid, base)
    if (uid, gid) == (found.st_uid, found.st_gid):
        return
    os.lchown(path, uid, gid)
    if not stat.S_ISLNK(found.st_mode) and found.st_mode & (stat.S_ISUID | stat.S_ISGID):
        os.chmod(path, stat.S_IMODE(found.st_mode))


def _canonical(host_id: int, base: int) -> int:
    return host_id - base if base <= host_id < base + idmap.RANGE_SIZE else OVERFLOW_ID


def lowers(paths: bwrap.JailPaths) -> Path:
    """Where a layer's ``system`` is mounted idmapped for a jail."""
    return paths.root / rootfs.LAYER_LOWERS


def mount(paths: bwrap.JailPaths, system: Path, userns_fd: int | None) -> list[Path]:
    """Show a layer's root parts to the jail idmapped by its namespace; the lower folders, topmost
    first. Blocks. Raises RootLayerError."""
    parts = count(system)
    if parts == 0:
        raise RootLayerError(f"the snapshot's root layers at {system} are missing")
    if userns_fd is None:
        raise RootLayerError("a sandbox on a snapshot of a template needs a uid range (sandboxd as root)")
    lowers(paths).mkdir(mode=0o700, exist_ok=True)
    try:
        idmap.mount_idmapped(system, lowers(paths), userns_fd)
    except idmap.IdmapError as exc:
        raise RootLayerError(str(exc)) from exc
    return [lowers(paths) / str(part) for part in range(parts)]


def _run(argv: list[str]) -> None:
    try:
        subprocess.run(argv, check=True, capture_output=True, timeout=_TIMEOUT)
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        raise RootLayerError(f"{argv[0]} {argv[-2]} failed: {exc} {detail[-300:]!r}") from exc
