"""The layer store: what holds a layer, when it goes, and a disk built on layers with and without
mounts (the latter is what a sandboxd that is not root gets: a plain copy)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from e2bq.sandboxd.jail import bwrap, layers
from e2bq.sandboxd.jail.disk import Disks


@pytest.fixture
def source(tmp_path: Path) -> Path:
    data = tmp_path / "source"
    (data / "home" / "sub").mkdir(parents=True)
    (data / "tmp").mkdir()
    (data / "home" / "sub" / "file").write_text("from the source")
    (data / "home" / "sparse").write_bytes(b"")
    os.truncate(data / "home" / "sparse", 50 << 20)  # 50 MB of hole
    os.setxattr(data / "home" / "sub" / "file", "user.e2b.k", b"v")
    return data


def test_a_layer_lives_while_a_snapshot_pins_it_or_a_sandbox_uses_it(tmp_path: Path, source: Path) -> None:
    store = layers.LayerStore(tmp_path / "layers")
    layer = store.capture(source, None, pinned=True)
    tree = store.tree(layer)
    assert (tree / "home" / "sub" / "file").read_text() == "from the source"
    assert os.getxattr(tree / "home" / "sub" / "file", "user.e2b.k") == b"v"
    assert os.stat(tree / "home" / "sparse").st_blocks == 0  # holes stay holes

    store.acquire(layer, "i-one")
    store.unpin(layer)  # its snapshot deleted: the sandbox still holds it
    assert tree.is_dir()
    store.release("i-one", (layer,))
    assert not tree.exists()
    with pytest.raises(layers.LayerError):
        store.acquire(layer, "i-two")


def test_a_restart_forgets_sandboxes_that_are_gone_and_keeps_snapshots(tmp_path: Path, source: Path) -> None:
    store = layers.LayerStore(tmp_path / "layers")
    pinned = store.capture(source, None, pinned=True)
    forked = store.capture(source, None, pinned=False)
    kept = store.capture(source, None, pinned=False)
    for layer in (pinned, forked):
        store.acquire(layer, "i-dead")
    store.acquire(forked, "fork-cut-short")  # a fork's hold, when the host died during the fork
    store.acquire(kept, "i-kept")  # e.g. a sandbox kept on disk across the restart
    (tmp_path / "layers" / "lhalfmade").mkdir()  # a copy cut short: no record

    layers.LayerStore(tmp_path / "layers").sweep({"i-kept"})
    assert store.tree(pinned).is_dir() and store.tree(kept).is_dir()
    assert not store.tree(forked).exists() and not (tmp_path / "layers" / "lhalfmade").exists()


def test_without_mounts_the_layers_are_copied_into_a_plain_folder(
    tmp_path: Path, source: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # the level set on the logger itself: an in-process Celery worker earlier in the session
    # leaves the root logger at ERROR
    caplog.set_level(logging.WARNING, logger="e2bq.sandboxd")
    store = layers.LayerStore(tmp_path / "layers")
    layer = store.capture(source, None, pinned=True)
    paths = bwrap.JailPaths(tmp_path / "isandbox")
    paths.create()
    layers.mount(paths, store, (layer,), None, image_ready=False)
    assert "copied, not shared" in caplog.text
    (paths.home / "sub" / "file").write_text("changed")
    assert (store.tree(layer) / "home" / "sub" / "file").read_text() == "from the source"
    layers.unmount(paths)  # nothing mounted: nothing to undo


@pytest.mark.skipif(not Disks().available, reason="needs root, mkfs.ext4 and loop devices")
def test_with_mounts_a_write_lands_on_the_sandboxs_own_image(tmp_path: Path, source: Path) -> None:
    store = layers.LayerStore(tmp_path / "layers")
    layer = store.capture(source, 64001, pinned=True)
    paths = bwrap.JailPaths(tmp_path / "isandbox")
    paths.create()
    disks = Disks()
    assert disks.create(paths.image, paths.disk, 64, 64002)
    try:
        layers.mount(paths, store, (layer,), 64002, image_ready=True)
        assert os.stat(paths.home / "sub" / "file").st_uid == 64002
        assert os.stat(store.tree(layer) / "home" / "sub" / "file").st_uid != 64002
        (paths.home / "sub" / "file").write_text("changed")
        assert (paths.disk / "upper" / "home" / "sub" / "file").read_text() == "changed"
        assert (store.tree(layer) / "home" / "sub" / "file").read_text() == "from the source"
    finally:
        layers.unmount(paths)
        disks.remove(paths.image, paths.disk)
    assert not os.path.ismount(paths.data)
