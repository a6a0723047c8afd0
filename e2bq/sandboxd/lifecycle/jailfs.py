"""A jail's files before it starts: its disk built on snapshot layers, its root on a template.

Functions of the launcher (``launcher``) that block, for ``asyncio.to_thread``. Each raises
LaunchError with what went wrong.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import LaunchError
from ..jail import bwrap, layers, rootfs, rootlayers
from ..jail.disk import Disks

if TYPE_CHECKING:
    from .launcher import Jail


def build_layered(handle: Jail, store: layers.LayerStore, disks: Disks) -> None:
    """Make the jail's image and build its data folder on its layers (taken for it first)."""
    paths = handle.paths
    try:
        for layer_id in handle.layers:
            store.acquire(layer_id, handle.sandbox_id)
        image_ready = disks.create(paths.image, paths.disk, handle.limits.disk_mb, handle.uid)
        layers.mount(paths, store, handle.layers, handle.uid, image_ready=image_ready)
    except layers.LayerError as exc:
        raise LaunchError(f"the sandbox's disk could not be built from its snapshot: {exc}") from exc


def mount_root(handle: Jail, store: layers.LayerStore, userns_fd: int | None, ca_bundle: Path | None) -> None:
    """Mount the jail's root overlay on its template, with the points bwrap binds onto; with
    ``userns_fd`` the template's tree idmapped by its map (see ``jail.idmap``), and a snapshot's
    root parts over it (its topmost layer holds the whole chain, see ``jail.rootlayers``)."""
    assert handle.rootfs is not None
    image = rootlayers.image_root(handle.paths, layered=bool(handle.layers))
    if not os.path.ismount(image):
        raise LaunchError("a sandbox on a template needs a disk image of its own (root, mkfs.ext4, loop)")
    try:
        system = store.system(handle.layers[0]) if handle.layers else None
        above = rootlayers.mount(handle.paths, system, userns_fd) if system is not None else []
        rootfs.mount(handle.paths, handle.rootfs, image, userns_fd, above)
        points = bwrap.mountpoints(handle.binds, ca_bundle=ca_bundle is not None)
        rootfs.make_mountpoints(handle.paths.rootfs, *points)
    except (rootfs.RootfsError, rootlayers.RootLayerError) as exc:
        raise LaunchError(str(exc)) from exc


def seed_home(root: Path, home: Path, uid: int) -> None:
    """A new jail's home starts as its template's (see ``jail.rootfs.seed_home``)."""
    try:
        rootfs.seed_home(root, home, uid)
    except rootfs.RootfsError as exc:
        raise LaunchError(str(exc)) from exc
