"""Where a volume may be mounted in a jail, and how a content API path is split (no host involved)."""

from __future__ import annotations

import pytest

from e2bq.sandboxd.errors import HostError
from e2bq.sandboxd.volumes.content import split
from e2bq.sandboxd.volumes.mounts import check_path


@pytest.mark.parametrize("path", ["/mnt/data", "/data", "/home/user/shared", "/tmp/v", "/workspace/a-b_c.d"])
def test_mount_paths_allowed(path: str) -> None:
    assert check_path(path) == path


@pytest.mark.parametrize(
    "path",
    [
        "", "mnt", "./mnt", "/", "/home", "/home/user", "/tmp", "/run", "/opt", "/proc", "/proc/1",
        "/dev/shm", "/sys/x", "/run/e2bq", "/run/e2bq/x", "/opt/e2bq", "/opt/e2bq/runtime", "/usr/x",
        "/etc", "/bin/x", "/lib64", "/mnt/../etc", "/mnt/./x", "/mnt//x", "/mnt/x/", "//mnt", "/mnt\0x",
        None, 7,
    ],
)
def test_mount_paths_refused(path: object) -> None:
    with pytest.raises(HostError) as refused:
        check_path(path)
    assert refused.value.status == 400


def test_content_paths_split_inside_the_volume() -> None:
    assert split("/") == [] and split("") == []
    assert split("/a/./b//c/") == ["a", "b", "c"]
    for bad in ("..", "/../x", "a/../../x", "a/..", "a\0b"):
        with pytest.raises(HostError):
            split(bad)
