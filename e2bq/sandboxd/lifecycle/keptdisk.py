"""A filesystem-paused sandbox's disk: kept when its jail ends, mounted again under a new jail.

The image is unmounted and renamed out of this run's mark (``persist.PAUSED_IMAGE``), so no
start-up sweep of dead runs' disks deletes it; a sandbox whose files lie on snapshot layers (a fork,
or one made from a snapshot) keeps those layers, held for it, and gets its overlay back on them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import LaunchError
from ..jail import bwrap, layers, rootfs
from ..jail.disk import Disks, chown_tree
from ..jail.layers import LayerStore
from . import persist
from .persist import DiskRecord


def keep(
    paths: bwrap.JailPaths,
    owner: int | None,
    layer_ids: tuple[str, ...],
    disks: Disks,
    template_root: Path | None = None,
) -> DiskRecord:
    """Unmount the jail's disk (its processes have ended) and keep it; what it is, as data.
    Blocks. Raises OSError if the disk cannot be unmounted."""
    rootfs.unmount(paths)  # a template's overlay holds its upper layer, on the image
    if layer_ids:  # the overlay first, then the image beneath it
        layers.unmount(paths)
        disks.unmount(paths.disk)
    else:
        disks.unmount(paths.data)
    kept = paths.root / persist.PAUSED_IMAGE
    if paths.image.exists():
        paths.image.replace(kept)
    if kept.exists():
        kept.chmod(0o600)
    image = kept.name if kept.exists() else None
    record: DiskRecord = {"image": image, "owner": owner, "layers": list(layer_ids)}
    if template_root is not None:
        record["rootfs"] = str(template_root)
    return record


def mount_again(
    paths: bwrap.JailPaths, disk: DiskRecord, uid: int | None, disks: Disks, store: LayerStore
) -> None:
    """Mount a kept disk where a jail's writable space goes, under this run's mark (so a crash
    of this run is reclaimed as any). Blocks. Raises LaunchError."""
    layer_ids = tuple(disk.get("layers", []))
    if disk["image"] is not None:
        try:
            (paths.root / disk["image"]).replace(paths.image)
            disks.mount(paths.image, paths.disk if layer_ids else paths.data)
            if layer_ids:  # the overlay again, on the layers it was made from (still held)
                layers.mount(paths, store, layer_ids, disk["owner"], image_ready=True)
        except (OSError, layers.LayerError) as exc:
            raise LaunchError(f"the sandbox's disk could not be mounted again: {exc}") from exc
    if uid is not None and disk["owner"] is not None and uid != disk["owner"]:
        chown_tree(paths.data, disk["owner"], uid)
    # What the last life left for a kernel handover would be taken as this life's (an adoption
    # file naming a pid of the old PID namespace, sandboxd's word that no kernel comes).
    # Nothing runs in the sandbox now, and rmtree neither follows nor accepts a symlink.
    (paths.run / bwrap.KERNEL_FALLBACK).unlink(missing_ok=True)
    kernels = paths.tmp / bwrap.KERNEL_DIR.name
    if kernels.is_dir() and not kernels.is_symlink():
        shutil.rmtree(kernels, ignore_errors=True)
