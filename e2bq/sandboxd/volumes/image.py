"""A volume's storage on the host: an ext4 image of its own (root), else a plain folder.

The image is sparse and keeps its size limit for as long as the volume lives; it is formatted once,
when the volume is made, and mounted again at every start of sandboxd (a mount does not outlive a
reboot; a sandboxd that was killed may have left it mounted, which is reused). The image's name
carries no run mark (``jail.leftovers``), so the sweep of dead runs' disk images never takes it.

Sandboxes that mount one volume each run as a host uid of their own, so the volume's root gets a
default POSIX ACL granting everyone read and write: what one sandbox creates (mode 0666 / 0777 from
``open``/``mkdir``) the others may change too, as one user's files on E2B's shared volumes. A file
a sandbox makes private with ``chmod`` stays private.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import struct
import subprocess
from pathlib import Path

log = logging.getLogger("e2bq.sandboxd")

IMAGE = "volume.img"
_ACL_VERSION = 2
_ACL_USER_OBJ, _ACL_GROUP_OBJ, _ACL_OTHER = 0x01, 0x04, 0x20
_ACL_UNDEFINED_ID = 0xFFFFFFFF


def _everyone_rwx_acl() -> bytes:
    """The xattr form of the ACL ``u::rwx,g::rwx,o::rwx`` (``system.posix_acl_*``)."""
    entries = b"".join(
        struct.pack("<HHI", tag, 0o7, _ACL_UNDEFINED_ID)
        for tag in (_ACL_USER_OBJ, _ACL_GROUP_OBJ, _ACL_OTHER)
    )
    return struct.pack("<I", _ACL_VERSION) + entries


def share(root: Path) -> None:
    """Let every sandbox uid read and write what is under ``root``, now and later. Without root
    every sandbox runs as sandboxd's own uid: the folder stays that uid's alone."""
    if os.geteuid() != 0:
        root.chmod(0o700)
        return
    root.chmod(0o777)
    try:
        os.setxattr(root, "system.posix_acl_default", _everyone_rwx_acl())
    except OSError as exc:  # no ACLs on this filesystem: new files follow each sandbox's umask
        log.warning("volume %s: no default ACL (%s); sandboxes may not change each other's files", root, exc)


class VolumeImages:
    """Making, mounting and removing volumes' ext4 images (needs root, mkfs.ext4 and loop devices)."""

    def __init__(self) -> None:
        self.mkfs = shutil.which("mkfs.ext4") or "/sbin/mkfs.ext4"
        self.available = (
            os.geteuid() == 0 and Path(self.mkfs).exists() and Path("/dev/loop-control").exists()
        )

    def create(self, folder: Path, mountpoint: Path, size_mb: int) -> bool:
        """Format and mount a new image in ``folder``; False (a plain folder, unlimited) when that
        cannot be done here."""
        mountpoint.mkdir(exist_ok=True)
        if not self.available:
            share(mountpoint)
            return False
        image = folder / IMAGE
        try:
            with image.open("wb") as handle:
                handle.truncate(size_mb * 1024 * 1024)
            _run([self.mkfs, "-q", "-F", "-m", "0", "-E", "lazy_itable_init=1,root_owner=0:0", str(image)])
        except (OSError, subprocess.SubprocessError) as exc:
            log.warning("volume image %s failed, using a plain folder: %s", image, exc)
            image.unlink(missing_ok=True)
            share(mountpoint)
            return False
        self.mount(folder, mountpoint)
        shutil.rmtree(mountpoint / "lost+found", ignore_errors=True)
        share(mountpoint)
        return True

    def mount(self, folder: Path, mountpoint: Path) -> None:
        """Mount ``folder``'s image at ``mountpoint`` unless it is mounted already (or has none)."""
        image = folder / IMAGE
        if not image.exists() or os.path.ismount(mountpoint):
            return
        mountpoint.mkdir(exist_ok=True)
        _run(["mount", "-o", "loop,nosuid,nodev", str(image), str(mountpoint)])

    def unmount(self, mountpoint: Path) -> None:
        if not os.path.ismount(mountpoint):
            return
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            if subprocess.run(["umount", str(mountpoint)], capture_output=True, timeout=60).returncode:
                subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True, timeout=60)


def _run(argv: list[str]) -> None:
    """Run a setup command; raise CalledProcessError (with its stderr) when it fails."""
    subprocess.run(argv, check=True, capture_output=True, timeout=60)
