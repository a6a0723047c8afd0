"""How a sandboxd run is named and told alive: a pid reused by another process never passes for it."""

from __future__ import annotations

import os
import subprocess

from e2bq.sandboxd.jail import leftovers


def test_a_disk_image_carries_its_run() -> None:
    pid, ticks = leftovers.this_run().split("-")
    assert int(pid) == os.getpid()
    assert leftovers.image_name() == f"disk.e2bq-run-{pid}-{ticks}.img"
    assert leftovers.run_alive(int(pid), int(ticks))


def test_a_pid_with_another_start_time_is_another_process() -> None:
    pid, ticks = map(int, leftovers.this_run().split("-"))
    assert not leftovers.run_alive(pid, ticks + 1)


def test_a_process_that_ended_is_no_run() -> None:
    child = subprocess.Popen(["true"])
    child.wait()
    assert not leftovers.run_alive(child.pid, 0)
