"""What a filesystem pause reads and writes without a jail: its record, the create body's
``autoPauseMemory``, and the cap's setting."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from e2bq.sandboxd.errors import HostError
from e2bq.sandboxd.jail.disk import chown_tree
from e2bq.sandboxd.lifecycle import persist
from e2bq.sandboxd.lifecycle.pause import Lifecycle
from e2bq.sandboxd.lifecycle.persist import PausedRecord
from e2bq.sandboxd.settings import HostSettings


def record(sandbox_id: str) -> PausedRecord:
    return {
        "version": persist.VERSION,
        "sandbox_id": sandbox_id,
        "template_id": "base",
        "metadata": {"k": "v"},
        "envs": {"A": "1"},
        "started_at": 1.0,
        "end_at": 2.0,
        "paused_at": 1.5,
        "timeout": 300,
        "access_token": "secret",
        "traffic_token": "secret2",
        "lifecycle": {"on_timeout": "pause", "auto_resume": False, "keep_memory": False},
        "limits": {"memory_mb": 256},
        "internet": True,
        "disk": {"image": persist.PAUSED_IMAGE, "owner": 64001},
    }


def test_a_record_is_written_for_root_alone_and_read_back(tmp_path: Path) -> None:
    folder = tmp_path / "iabc"
    folder.mkdir()
    persist.write(folder, record("iabc"))
    assert stat.S_IMODE((folder / persist.RECORD).stat().st_mode) == 0o600
    assert persist.holds_record(folder)
    assert persist.read(folder) == record("iabc")
    assert [p.name for p in folder.iterdir()] == [persist.RECORD]  # no partial file left
    persist.remove(folder)
    assert not persist.holds_record(folder)


@pytest.mark.parametrize(
    "content",
    ["not json", json.dumps([1]), json.dumps({**record("iabc"), "version": 99}),
     json.dumps(record("iother")), json.dumps({"version": 1, "sandbox_id": "iabc"})],
    ids=["garbage", "a list", "another version", "another sandbox's", "fields missing"],
)
def test_a_record_not_written_by_this_host_is_not_taken(tmp_path: Path, content: str) -> None:
    folder = tmp_path / "iabc"
    folder.mkdir()
    (folder / persist.RECORD).write_text(content)
    assert persist.read(folder) is None
    assert persist.holds_record(folder)  # kept, not swept: a person may look at it


def test_lifecycle_reads_autopausememory() -> None:
    assert Lifecycle.from_create({"autoPause": True}).keep_memory is True
    assert Lifecycle.from_create({"autoPause": True, "autoPauseMemory": False}).keep_memory is False
    with pytest.raises(HostError) as refused:
        Lifecycle.from_create({"autoPause": True, "autoPauseMemory": False, "autoResume": {"enabled": True}})
    assert refused.value.status == 400 and "filesystem" in refused.value.message
    with pytest.raises(HostError):
        Lifecycle.from_create({"autoPause": True, "autoPauseMemory": "no"})


def test_max_paused_comes_from_the_environment() -> None:
    assert HostSettings.from_env({}).max_paused == 20
    assert HostSettings.from_env({"E2BQ_SANDBOXD_MAX_PAUSED": "0"}).max_paused == 0
    with pytest.raises(ValueError, match="MAX_PAUSED"):
        HostSettings.from_env({"E2BQ_SANDBOXD_MAX_PAUSED": "-1"})


@pytest.mark.skipif(os.geteuid() != 0, reason="changing owners needs root")
def test_chown_tree_changes_what_the_old_uid_owns_and_follows_no_symlink(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("host file")
    os.chown(outside, 64_500, 64_500)
    data = tmp_path / "data"
    (data / "home").mkdir(parents=True)
    (data / "home" / "file.txt").write_text("kept")
    (data / "home" / "link").symlink_to(outside)
    (data / "home" / "dirlink").symlink_to(tmp_path)
    for path in (data, data / "home", data / "home" / "file.txt"):
        os.chown(path, 64_500, 64_500)
    os.lchown(data / "home" / "link", 64_500, 64_500)

    chown_tree(data, 64_500, 64_501)

    for path in (data, data / "home", data / "home" / "file.txt", data / "home" / "link"):
        assert path.lstat().st_uid == 64_501, path
    assert outside.stat().st_uid == 64_500, "a symlink was followed out of the disk"
    assert (data / "home" / "dirlink").lstat().st_uid == 0  # not the old uid's: left alone
