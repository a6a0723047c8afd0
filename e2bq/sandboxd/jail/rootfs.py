"""A sandbox's root filesystem made from a template: the template's tree below, its own layer above.

A built template (see ``templates.store``) is a Debian root filesystem on the host, shared read-only
by every sandbox made from it. A sandbox on a template gets an overlayfs as its ``/``: the template's
tree as the lower layer, and upper and work folders in ``system/`` on the sandbox's own disk image,
so whatever it writes anywhere lands on its own disk, counts against its own limit, and never reaches
the template or another sandbox. Nothing of the host's system folders is bound in; the jail adds only
e2bq's runtime and agent (read-only, at ``/opt/e2bq``), generated ``/etc`` files, ``/proc``, ``/dev``
and the sandbox's home and ``/tmp`` (see ``bwrap``).

The overlay is mounted by sandboxd (root) before the jail starts, with this run's mark as its source
so that the overlays of a run that died are found and unmounted (see ``leftovers``). bwrap, running
as the sandbox's unprivileged uid, cannot create the folders it binds onto in a tree that root owns:
:func:`make_mountpoints` creates them first, one component at a time and never through a symlink,
since a sandbox kept on disk may have left symlinks in its upper layer.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath

from . import bwrap, idmap, leftovers

SYSTEM = "system"  # on the sandbox's disk image: the root overlay's upper and work folders
LAYER_LOWERS = "lowersys"  # in the jail's folder: a snapshot layer's root parts, idmapped (``rootlayers``)
# The agent's Python is e2bq's runtime, a venv of the host's Python: its interpreter inside the
# jail is the template's, which must be the same minor version (see ``check``).
AGENT_PYTHON = PurePosixPath("/usr/bin/python3.11")


class RootfsError(OSError):
    """A template's root could not be mounted or prepared."""


def check(rootfs: Path) -> None:
    """Raise RootfsError if e2bq's agent cannot run on ``rootfs`` (no Python 3.11 there)."""
    if not rootfs.is_dir():
        raise RootfsError(f"the template's root filesystem {rootfs} is missing: build the template again")
    if not (rootfs / AGENT_PYTHON.relative_to("/")).exists():
        raise RootfsError(
            f"the template has no {AGENT_PYTHON}, which e2bq's agent runs on: build it from "
            "Debian bookworm with python3 among its apt packages"
        )


def lower(paths: bwrap.JailPaths) -> Path:
    """Where the template's tree is mounted idmapped for a jail with a range of its own (``idmap``)."""
    return paths.root / "lower"


def mount(
    paths: bwrap.JailPaths,
    rootfs: Path,
    image_root: Path,
    userns_fd: int | None = None,
    above: Sequence[Path] = (),
) -> None:
    """Mount the overlay at ``paths.rootfs``: ``rootfs`` below, the upper layer in ``image_root``
    (where the sandbox's image is mounted). With ``userns_fd`` the lower layer is ``rootfs`` idmapped
    by that namespace's map (see ``idmap``); ``above`` are lower folders over it, topmost first (a
    snapshot's root parts, see ``rootlayers``). Blocks. Raises RootfsError."""
    check(rootfs)
    system = image_root / SYSTEM
    upper, work = system / "upper", system / "work"
    for folder in (system, upper, work):
        folder.mkdir(mode=0o755, exist_ok=True)
    if userns_fd is not None:
        lower(paths).mkdir(mode=0o700, exist_ok=True)
        try:
            idmap.mount_idmapped(rootfs.resolve(), lower(paths), userns_fd)
        except idmap.IdmapError as exc:
            raise RootfsError(str(exc)) from exc
        rootfs = lower(paths)
        # the overlay's / is its upper folder: root inside must own it
        shown = (above[0] if above else rootfs).stat()
        os.chown(upper, shown.st_uid, shown.st_gid)
    paths.rootfs.mkdir(mode=0o755, exist_ok=True)
    chain = ":".join(str(folder) for folder in (*above, rootfs))
    options = f"lowerdir={chain},upperdir={upper},workdir={work},nosuid,nodev"
    result = subprocess.run(
        ["mount", "-t", "overlay", leftovers.overlay_source(), "-o", options, str(paths.rootfs)],
        capture_output=True,
        timeout=60,
    )
    if result.returncode != 0:
        detail = result.stderr.decode(errors="replace")[-300:]
        raise RootfsError(f"cannot mount the template's root: {detail}")


def unmount(paths: bwrap.JailPaths) -> None:
    """Undo :func:`mount` (the jail's processes have ended). Blocks."""
    if os.path.ismount(paths.rootfs):
        result = subprocess.run(["umount", str(paths.rootfs)], capture_output=True, timeout=60)
        if result.returncode != 0:
            subprocess.run(["umount", "-l", str(paths.rootfs)], capture_output=True, timeout=60)
    for folder in (lower(paths), paths.root / LAYER_LOWERS):  # after the overlay that holds them
        if _mounted(folder):
            subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=60)


def _mounted(path: Path) -> bool:
    """Whether something is mounted at ``path``: from the mount table, since a bind mount of a
    folder of the same file system has the same device as its parent (``ismount`` misses it)."""
    if not path.is_dir():
        return False
    target = str(path).replace(" ", "\\040")
    with open("/proc/self/mountinfo") as table:
        return any(line.split()[4] == target for line in table)


def make_mountpoints(root: Path, folders: Iterable[str], files: Iterable[str]) -> None:
    """Create, below ``root``, the folders and (empty) files the jail binds onto. Blocks.
    Raises RootfsError where a path crosses a symlink or a file stands where a folder goes."""
    for folder in folders:
        with contextlib.closing(_Walk(root)) as walk:
            walk.into(PurePosixPath(folder).relative_to("/").parts, last_is_file=False)
    for file in files:
        with contextlib.closing(_Walk(root)) as walk:
            walk.into(PurePosixPath(file).relative_to("/").parts, last_is_file=True)


class _Walk:
    """Descend from a folder one name at a time with O_NOFOLLOW, making what is missing."""

    def __init__(self, root: Path) -> None:
        self.fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)

    def into(self, parts: tuple[str, ...], *, last_is_file: bool) -> None:
        for index, name in enumerate(parts):
            if name in ("", ".", ".."):
                raise RootfsError(f"bad mount point component {name!r}")
            if last_is_file and index == len(parts) - 1:
                flags = os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK  # never wait on a fifo
                try:
                    os.close(os.open(name, flags, 0o644, dir_fd=self.fd))
                except OSError as exc:
                    raise RootfsError(f"cannot make mount point {'/'.join(parts)}: {exc}") from exc
                return
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o755, dir_fd=self.fd)
            try:
                child = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=self.fd)
            except OSError as exc:
                raise RootfsError(f"cannot make mount point {'/'.join(parts)}: {exc}") from exc
            os.close(self.fd)
            self.fd = child

    def close(self) -> None:
        os.close(self.fd)


def has_sandbox_user(rootfs: Path) -> bool:
    """Whether the template's own ``/etc/passwd`` and ``/etc/group`` hold the sandbox's user (name
    and id), so the jail can keep them. Read without following a link the template may hold."""
    lines: dict[str, list[str]] = {}
    try:
        etc = os.open(rootfs / "etc", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            for name in ("passwd", "group"):
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=etc)
                with open(fd, encoding="utf-8", errors="replace") as file:
                    lines[name] = file.read(1 << 20).splitlines()
        finally:
            os.close(etc)
    except OSError:
        return False
    return all(_lists_sandbox_user(lines[name]) for name in ("passwd", "group"))


def _lists_sandbox_user(lines: list[str]) -> bool:
    """Whether passwd or group lines hold the sandbox's user with its id (name:x:id:...)."""
    wanted = (bwrap.SANDBOX_USER, str(bwrap.SANDBOX_UID))
    return any(tuple(line.split(":")[0:3:2]) == wanted for line in lines)


def seed_home(rootfs: Path, home: Path, owner: int) -> None:
    """Copy what the template keeps in the sandbox user's home (its dotfiles, files a build put
    there) into a new sandbox's own home, ``owner``'s (the home the jail binds over the template's).
    Links are copied as links, never followed; other special files are left out. Done here rather
    than by ``cp``: two processes would cost a create about 3 ms, this 0.2 ms for a skeleton home.
    Blocks. Raises RootfsError."""
    source = rootfs / bwrap.HOME.relative_to("/")
    try:
        if not stat.S_ISDIR(os.lstat(rootfs / "home").st_mode) or not stat.S_ISDIR(os.lstat(source).st_mode):
            return
    except OSError:
        return  # the template has no home for the user: the sandbox's starts empty
    try:
        _copy_tree(source, home, owner)
    except OSError as exc:
        raise RootfsError(f"cannot copy the template's home: {exc}") from exc


def _copy_tree(source: Path, target: Path, owner: int) -> None:
    for entry in os.scandir(source):
        path = target / entry.name
        mode = entry.stat(follow_symlinks=False).st_mode
        if stat.S_ISDIR(mode):
            path.mkdir(mode=stat.S_IMODE(mode), exist_ok=True)
            _copy_tree(Path(entry.path), path, owner)
            shutil.copystat(entry.path, path, follow_symlinks=False)
        elif stat.S_ISREG(mode) or stat.S_ISLNK(mode):
            shutil.copy2(entry.path, path, follow_symlinks=False)
        else:
            continue  # a fifo, socket or device has no place in a home
        os.lchown(path, owner, owner)  # (which clears a setuid or setgid bit: none is wanted here)
