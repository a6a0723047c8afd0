"""A sandbox's writable space: an ext4 image of its own, mounted as its home and /tmp.

Writing past the image's size fails inside with "No space left on device", and an upload past it
answers 507. The image is sparse: it takes only what the sandbox wrote. Needs root (mount) and
mkfs.ext4; without them the space is a plain folder on the host's disk, unlimited.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import time
from pathlib import Path

log = logging.getLogger("e2bq.sandboxd")


class Disks:
    def __init__(self) -> None:
        self.mkfs = shutil.which("mkfs.ext4") or "/sbin/mkfs.ext4"
        self.available = os.geteuid() == 0 and Path(self.mkfs).exists() and Path("/dev/loop-control").exists()
        if not self.available:
            log.warning("per-sandbox disk limits unavailable (need root, mkfs.ext4 and loop devices)")

    def create(self, image: Path, mountpoint: Path, size_mb: int, owner: int | None) -> bool:
        """Make and mount the image; False (a plain folder instead) when that is not possible here."""
        mountpoint.mkdir(exist_ok=True)
        if not self.available:
            return False
        root_owner = f"{owner}:{owner}" if owner is not None else f"{os.getuid()}:{os.getgid()}"
        try:
            with image.open("wb") as handle:
                handle.truncate(size_mb * 1024 * 1024)
            subprocess.run(
                [self.mkfs, "-q", "-F", "-O", "^has_journal", "-m", "0",
                 "-E", f"lazy_itable_init=1,root_owner={root_owner}", str(image)],
                check=True, capture_output=True, timeout=60,
            )
            subprocess.run(
                ["mount", "-o", "loop,nosuid,nodev", str(image), str(mountpoint)],
                check=True, capture_output=True, timeout=60,
            )
            shutil.rmtree(mountpoint / "lost+found", ignore_errors=True)
        except (OSError, subprocess.SubprocessError) as exc:
            detail = getattr(exc, "stderr", b"") or b""
            log.warning(
                "disk image for %s failed, using a plain folder: %s %s", mountpoint, exc, detail[-300:]
            )
            image.unlink(missing_ok=True)
            return False
        return True

    def remove(self, image: Path, mountpoint: Path) -> None:
        if os.path.ismount(mountpoint):
            result = subprocess.run(["umount", str(mountpoint)], capture_output=True, timeout=60)
            if result.returncode != 0:
                subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True, timeout=60)
        with contextlib.suppress(OSError):
            image.unlink()

    def mount(self, image: Path, mountpoint: Path) -> None:
        """Mount an image made earlier (a filesystem-paused sandbox's). Raises OSError."""
        mountpoint.mkdir(exist_ok=True)
        result = subprocess.run(
            ["mount", "-o", "loop,nosuid,nodev", str(image), str(mountpoint)], capture_output=True, timeout=60
        )
        if result.returncode != 0:
            raise OSError(f"cannot mount {image}: {result.stderr.decode(errors='replace')[-300:]}")

    def unmount(self, mountpoint: Path, timeout: float = 5.0) -> None:
        """Unmount, and only return once the image is free. Raises OSError if it stays busy.

        Never lazily: a lazily unmounted image stays in use until its last user goes, and mounting
        it again meanwhile would have two mounts writing one ext4 file system.
        """
        deadline = time.monotonic() + timeout
        while os.path.ismount(mountpoint):
            result = subprocess.run(["umount", str(mountpoint)], capture_output=True, timeout=60)
            if result.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise OSError(f"cannot unmount {mountpoint}: {result.stderr.decode(errors='replace')[-300:]}")
            time.sleep(0.05)  # the jail's mount namespace is still going away


def chown_tree(folder: Path, old: int, new: int) -> None:
    """Give ``new`` whatever ``old`` owns under ``folder`` (a kept disk whose uid changed). The
    sandbox wrote what is there: symlinks are changed themselves, never followed."""
    for parent, folders, files in os.walk(folder):  # does not descend into symlinked folders
        for name in [".", *folders, *files]:
            path = os.path.join(parent, name)
            with contextlib.suppress(OSError):
                if os.lstat(path).st_uid == old:
                    os.lchown(path, new, new)
