"""Very long inputs (1 MB) to every argument that takes text: refused or served, never a crash.

Outside Hypothesis, which warns about reprs this long."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from e2bq import E2BToolkit

from .conftest import Jobs, check

LONG = "x" * 1_000_000
CALLS: dict[str, Callable[[E2BToolkit, str], Any]] = {
    "code": lambda kit, sid: kit.run_python_code(f"len({LONG!r})", sandbox_id=sid),
    "code, background": lambda kit, sid: kit.run_python_code_background(f"# {LONG}", sandbox_id=sid),
    "command": lambda kit, sid: kit.run_command(f"echo {LONG} | wc -c", sandbox_id=sid),
    "command, background": lambda kit, sid: kit.run_command_background(f": {LONG}", sandbox_id=sid),
    "sandbox_id": lambda kit, sid: kit.run_python_code("1", sandbox_id=LONG),
    "job_id": lambda kit, sid: kit.run_command_background("true", sandbox_id=sid, job_id=LONG),
    "job status": lambda kit, sid: kit.get_job_status(LONG),
    "kill": lambda kit, sid: kit.kill_job(LONG),
    "metadata": lambda kit, sid: kit.create_sandbox(timeout=30, metadata={LONG[:1000]: LONG}),
    "upload path": lambda kit, sid: kit.upload_file(LONG, sandbox_id=sid),
    "sandbox path": lambda kit, sid: kit.download_file_from_sandbox(
        LONG, sandbox_id=sid, local_path="long.bin"
    ),
    "server": lambda kit, sid: kit.run_server(f": {LONG}", 8000, sandbox_id=sid, wait_seconds=0),
    "map": lambda kit, sid: kit.map_python_code([LONG[:100_000]] * 3, pool_size=1),
}


@pytest.mark.parametrize("what", list(CALLS))
def test_long_input(toolkit: E2BToolkit, sandbox_id: str, jobs: Jobs, what: str) -> None:
    with jobs.ending():
        result = check(CALLS[what](toolkit, sandbox_id))
        if what not in ("job status", "kill"):  # those name the id they were given
            jobs.track(result)
        if what == "metadata" and result["status"] == "success":
            check(toolkit.shutdown_sandbox(result["sandbox_id"]))
