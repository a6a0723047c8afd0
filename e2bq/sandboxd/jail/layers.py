"""Read-only filesystem layers on the host, and a sandbox's disk built on them.

A layer is a folder ``<store>/<id>/tree`` holding a ``home`` and a ``tmp``, copied once from a
sandbox (a snapshot, or the moment of a fork) and never written again. A sandbox made from layers
gets an overlayfs at its data folder: the layers below (read-only, shared by every sandbox made from
them), its own upper and work folders on its own ext4 image above, so what it writes lands on its
own disk and counts against its own limit; a write never reaches the layer or a sibling.

Each sandbox runs as a host uid of its own, and the layer's files belong to the uid of the sandbox
they were copied from. ``metacopy=on`` lets a ``chown -R`` of the merged tree to the new sandbox's uid
copy up only the inodes' metadata (no data): a 100 MB file costs one inode on the new disk.

A layer in use is not deleted: its ``layer.json`` lists the sandboxes using it (persisted, so a
sandbox kept on disk across a restart keeps its layers) and whether a snapshot pins it; it goes when
neither holds it. Without root (no mounts) a sandbox gets a plain copy of its layers instead.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import NotRequired, TypedDict

from . import bwrap, leftovers, rootlayers
from .rootlayers import LayerRoot, RootSource

log = logging.getLogger("e2bq.sandboxd")

_TIMEOUT = 600.0  # seconds a copy of a sandbox's files may take
PARTS = ("home", "tmp")  # what a layer holds of a sandbox: its writable folders
# Left out of a copy: the agent's kernels' connection files and sockets, which belong to the
# processes of the sandbox copied, not to its files (a sandbox made from the copy starts its own).
EXCLUDED = (Path("tmp") / bwrap.KERNEL_DIR.relative_to("/tmp"),)


class LayerError(OSError):
    """A layer could not be made or mounted (missing, copy failed, mount refused)."""


class LayerRecord(TypedDict):
    id: str
    owner: int | None  # the host uid its files belong to
    users: list[str]  # sandbox ids whose disk is built on it
    pinned: bool  # a snapshot keeps it
    created_at: float
    # A templated sandbox's: the build its root parts (``system``) lie on. Absent: the host's root.
    root: NotRequired[LayerRoot]


class LayerStore:
    """The layers of one sandboxd, under ``folder``; thread-safe (copies run in worker threads)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()

    def tree(self, layer_id: str) -> Path:
        return self.folder / layer_id / "tree"

    def _record_path(self, layer_id: str) -> Path:
        return self.folder / layer_id / "layer.json"

    def _read(self, layer_id: str) -> LayerRecord | None:
        try:
            record: LayerRecord = json.loads(self._record_path(layer_id).read_text())
        except (OSError, ValueError):
            return None
        return record

    def _write(self, record: LayerRecord) -> None:
        path = self._record_path(record["id"])
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(record))
        temporary.replace(path)  # a crash leaves the old record or the new one, never half of one

    def system(self, layer_id: str) -> Path:
        """Its root parts (see ``rootlayers``): beside its tree, which a data overlay shows whole."""
        return self.folder / layer_id / rootlayers.SYSTEM

    def root(self, layer_id: str) -> LayerRoot | None:
        """The template build its root parts lie on; None for the host's root (or a layer gone)."""
        record = self._read(layer_id)
        return None if record is None else record.get("root")

    def capture(self, data: Path, owner: int | None, *, pinned: bool, root: RootSource | None = None) -> str:
        """A new layer holding a copy of ``data``'s home and tmp, and with ``root`` that sandbox's
        root changes; its id. Blocks: call from a thread.

        The caller keeps the source still (frozen) while this runs. Raises LayerError."""
        layer_id = "l" + secrets.token_hex(8)
        tree = self.tree(layer_id)
        tree.mkdir(parents=True, mode=0o755)
        self.folder.chmod(0o711)
        (self.folder / layer_id).chmod(0o711)  # the jail's uid reaches its lower layers, no more
        try:
            for part in PARTS:
                if (data / part).is_dir():
                    _copy(data / part, tree / part)
            for excluded in EXCLUDED:
                shutil.rmtree(tree / excluded, ignore_errors=True)
            system = rootlayers.capture(root, self.system(layer_id)) if root is not None else None
        except (LayerError, rootlayers.RootLayerError) as exc:
            shutil.rmtree(self.folder / layer_id, ignore_errors=True)
            raise LayerError(str(exc)) from exc
        with self._lock:
            record = LayerRecord(id=layer_id, owner=owner, users=[], pinned=pinned, created_at=time.time())
            if system is not None:
                record["root"] = system
            self._write(record)
        return layer_id

    def acquire(self, layer_id: str, user: str) -> LayerRecord:
        """Mark ``user`` (a sandbox id) as built on the layer; raises LayerError if it is gone."""
        with self._lock:
            record = self._read(layer_id)
            if record is None:
                raise LayerError(f"layer {layer_id} does not exist (its snapshot was deleted)")
            if user not in record["users"]:
                record["users"].append(user)
                self._write(record)
            return record

    def release(self, user: str, layer_ids: tuple[str, ...]) -> None:
        """``user`` no longer uses these layers; those nothing holds any more are deleted."""
        with self._lock:
            for layer_id in layer_ids:
                record = self._read(layer_id)
                if record is None:
                    continue
                record["users"] = [u for u in record["users"] if u != user]
                self._write(record)
                self._collect(record)

    def unpin(self, layer_id: str) -> None:
        """Its snapshot is gone: the layer goes once no sandbox uses it."""
        with self._lock:
            record = self._read(layer_id)
            if record is not None:
                record["pinned"] = False
                self._write(record)
                self._collect(record)

    def sweep(self, kept: set[str]) -> None:
        """At start: forget every user but those in ``kept`` (sandboxes of an earlier run kept on
        disk), and delete what nothing holds, half-made layers included."""
        if not self.folder.is_dir():
            return
        with self._lock:
            for folder in self.folder.iterdir():
                record = self._read(folder.name)
                if record is None:
                    shutil.rmtree(folder, ignore_errors=True)
                    continue
                record["users"] = [u for u in record["users"] if u in kept]
                self._write(record)
                self._collect(record)

    def _collect(self, record: LayerRecord) -> None:
        if not record["pinned"] and not record["users"]:
            shutil.rmtree(self.folder / record["id"], ignore_errors=True)
            log.info("layer %s deleted: no snapshot or sandbox holds it", record["id"])


def _copy(source: Path, target: Path) -> None:
    """Copy a folder with owners, modes, times, extended attributes and holes kept."""
    try:
        subprocess.run(
            ["cp", "-a", "--sparse=always", "--reflink=auto", "--no-target-directory",
             str(source), str(target)],
            check=True, capture_output=True, timeout=_TIMEOUT,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        raise LayerError(f"copying {source} failed: {exc} {detail[-300:]!r}") from exc


def mount(paths: bwrap.JailPaths, store: LayerStore, layers: tuple[str, ...], owner: int | None,
          *, image_ready: bool) -> None:
    """Build the sandbox's data folder on ``layers`` (topmost first). Blocks: call from a thread.

    With the sandbox's image mounted at ``paths.disk`` (``image_ready``) the data folder is an
    overlay whose upper layer lives on that image; else (no root) the layers are copied into a plain
    folder. The result is owned by ``owner``, as a new sandbox's home is. Depends on nothing but its
    arguments, so a sandbox whose jail is started again on its kept disk mounts it the same way.
    Raises LayerError.
    """
    trees = [store.tree(layer_id) for layer_id in layers]
    missing = [str(tree) for tree in trees if not tree.is_dir()]
    if missing:
        raise LayerError(f"layers missing: {missing}")
    paths.data.mkdir(exist_ok=True)
    if not image_ready:
        log.warning(
            "sandbox %s: no disk image (needs root), so its snapshot's files are copied, not shared",
            paths.root.name,
        )
        for tree in reversed(trees):  # lowest first: upper layers' files win
            for part in PARTS:
                if (tree / part).is_dir():
                    _run(["cp", "-a", "--sparse=always", f"{tree / part}/.", str(paths.data / part)], part)
    else:
        for folder in (paths.disk / "upper", paths.disk / "work"):
            folder.mkdir(mode=0o700, exist_ok=True)
        # Paths relative to the sandbox's folder: the mount's options show inside the jail (its
        # /proc/self/mountinfo), and so name no more of the host's layout than its other mounts do.
        lower = ":".join(os.path.relpath(tree, paths.root) for tree in trees)
        options = (
            f"lowerdir={lower},upperdir=disk/upper,workdir=disk/work,"
            "metacopy=on,redirect_dir=on,nosuid,nodev"
        )
        # the source names this run: a later sandboxd finds it by that if this one dies (leftovers)
        source = leftovers.overlay_source()
        _run(["mount", "-t", "overlay", source, "-o", options, "data"], "overlay", cwd=paths.root)
    if owner is not None:  # metadata only: with metacopy the data stays in the layer
        _run(["chown", "-R", "--no-dereference", f"{owner}:{owner}", str(paths.data)], "chown")


def unmount(paths: bwrap.JailPaths) -> None:
    """Undo :func:`mount`'s overlay (the image beneath is the caller's). Blocks."""
    if os.path.ismount(paths.data) and paths.disk.is_dir() and os.path.ismount(paths.disk):
        result = subprocess.run(["umount", str(paths.data)], capture_output=True, timeout=60)
        if result.returncode != 0:
            subprocess.run(["umount", "-l", str(paths.data)], capture_output=True, timeout=60)


def _run(argv: list[str], what: str, cwd: Path | None = None) -> None:
    try:
        subprocess.run(argv, check=True, capture_output=True, timeout=_TIMEOUT, cwd=cwd)
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        raise LayerError(f"{what} failed: {exc} {detail[-300:]!r}") from exc
