"""Filling the disk fills the sandbox's own space: "No space left on device" inside, 507 for an
upload (the SDK's NotEnoughSpaceException), and the host and neighbours keep their space.

Each attempt writes at most four times the limit, so without a limit it only succeeds.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from e2b import NotEnoughSpaceException
from e2b_code_interpreter import Sandbox

from tests.procs import SandboxHostProcess
from tests.security.harness import (
    answers_or_is_gone,
    assert_host_and_neighbour_answer,
    run,
    run_attack,
)

DISK_MB = 64
MEMORY_MB = 256
LIMITED = {"e2bq.disk_mb": str(DISK_MB), "e2bq.memory_mb": str(MEMORY_MB)}
MB = 1024 * 1024


@pytest.mark.parametrize("target", ["/home/user/fill", "/tmp/fill"])
def test_writing_past_the_disk_limit_fails_with_no_space_left(
    target: str, make_sandbox: Callable[..., Sandbox], host: SandboxHostProcess, neighbour: Sandbox
) -> None:
    sandbox = make_sandbox(metadata=LIMITED)

    result = run(sandbox, f"dd if=/dev/zero of={target} bs=1M count={4 * DISK_MB}")

    assert result.exit_code != 0
    assert "No space left on device" in result.stderr
    # the neighbour still has room of its own, and the full sandbox recovers once it deletes
    room = run(neighbour, f"dd if=/dev/zero of=/tmp/room bs=1M count={DISK_MB // 2} && rm /tmp/room")
    assert room.exit_code == 0, room.stderr
    assert_host_and_neighbour_answer(host, neighbour)
    recovered = run(sandbox, f"rm {target} && echo fine > /home/user/small && cat /home/user/small")
    assert recovered.stdout == "fine\n"


def test_the_limit_holds_for_home_and_tmp_together(
    make_sandbox: Callable[..., Sandbox], host: SandboxHostProcess, neighbour: Sandbox
) -> None:
    """Three-quarters of the limit in each place cannot both fit."""
    sandbox = make_sandbox(metadata=LIMITED)
    part = 3 * DISK_MB // 4

    first = run(sandbox, f"dd if=/dev/zero of=/home/user/a bs=1M count={part}")
    second = run(sandbox, f"dd if=/dev/zero of=/tmp/b bs=1M count={part}")

    assert first.exit_code == 0, first.stderr
    assert second.exit_code != 0
    assert "No space left on device" in second.stderr
    assert_host_and_neighbour_answer(host, neighbour)


@pytest.mark.parametrize("target", ["/fill", "/etc/fill", "/run/fill", "/home/fill", "/dev/fill"])
def test_the_jails_other_writable_places_cannot_hold_more_than_the_sandboxs_memory(
    target: str, make_sandbox: Callable[..., Sandbox], host: SandboxHostProcess, neighbour: Sandbox
) -> None:
    """Outside its home and /tmp a jail's folders live in RAM (tmpfs): they are no way around the
    limits. Either they are not writable, or what is written there counts as the sandbox's memory."""
    sandbox = make_sandbox(metadata=LIMITED)

    result = run_attack(sandbox, f"dd if=/dev/zero of={target} bs=1M count={2 * MEMORY_MB} && echo written")

    if result is not None:  # None: the sandbox went down with it, which is allowed
        assert "written" not in result.stdout, f"{target} took twice the sandbox's memory limit"
    answers_or_is_gone(sandbox)
    assert_host_and_neighbour_answer(host, neighbour)


def test_an_upload_past_the_disk_limit_raises_not_enough_space(
    make_sandbox: Callable[..., Sandbox], host: SandboxHostProcess, neighbour: Sandbox
) -> None:
    sandbox = make_sandbox(metadata=LIMITED)

    with pytest.raises(NotEnoughSpaceException):
        sandbox.files.write("/home/user/upload.bin", b"\x00" * (2 * DISK_MB * MB))

    # the failed upload left nothing half-written behind, and the space is usable again
    assert [name for name in run(sandbox, "ls -A /home/user").stdout.split() if "upload" in name] == []
    sandbox.files.write("/home/user/after.txt", "fits")
    assert sandbox.files.read("/home/user/after.txt") == "fits"
    assert_host_and_neighbour_answer(host, neighbour)


def test_a_full_sandbox_does_not_stop_sandboxd_from_making_new_ones(
    make_sandbox: Callable[..., Sandbox], host: SandboxHostProcess, neighbour: Sandbox
) -> None:
    sandbox = make_sandbox(metadata=LIMITED)
    run(sandbox, f"dd if=/dev/zero of=/home/user/fill bs=1M count={4 * DISK_MB}")

    fresh = make_sandbox()
    fresh.files.write("/home/user/hello.txt", "hello")

    assert fresh.files.read("/home/user/hello.txt") == "hello"
    assert_host_and_neighbour_answer(host, neighbour)
