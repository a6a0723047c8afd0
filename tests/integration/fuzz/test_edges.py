"""The inputs the fuzzing found mishandled, pinned: each is refused with a message that says what to
change (before, each hung the caller, raised, or came back as an "internal error in e2bq")."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from e2bq import E2BToolkit

from .conftest import Jobs, check

NAN, INF = float("nan"), float("inf")
REFUSED: dict[str, tuple[Callable[[E2BToolkit, str], Any], str]] = {
    "server wait nan": (
        lambda kit, sid: kit.run_server("sleep 9", 8000, sandbox_id=sid, wait_seconds=NAN),
        "wait_seconds",
    ),
    "server wait inf": (
        lambda kit, sid: kit.run_server("sleep 9", 8000, sandbox_id=sid, wait_seconds=INF),
        "wait_seconds",
    ),
    "server wait 1e308": (
        lambda kit, sid: kit.run_server("sleep 9", 8000, sandbox_id=sid, wait_seconds=1e308),
        "wait_seconds",
    ),
    "code timeout nan": (lambda kit, sid: kit.run_python_code("1", sandbox_id=sid, timeout=NAN), "timeout"),
    "sandbox lifetime inf": (lambda kit, sid: kit.create_sandbox(timeout=INF), "timeout"),
    "command with NUL": (lambda kit, sid: kit.run_command("echo a\x00b", sandbox_id=sid), "NUL"),
    "background 'false'": (
        lambda kit, sid: kit.run_command("true", sandbox_id=sid, background="false"),
        "background",
    ),
    "surrogate sandbox id": (lambda kit, sid: kit.run_python_code("1", sandbox_id="\ud800"), "sandbox_id"),
    "surrogate job id": (
        lambda kit, sid: kit.run_command_background("true", sandbox_id=sid, job_id="\ud800"),
        "job_id",
    ),
    "surrogate code": (lambda kit, sid: kit.run_python_code("'\ud800'", sandbox_id=sid), "code"),
    "surrogate metadata": (lambda kit, sid: kit.create_sandbox(metadata={"k": "\udfff"}), "metadata"),
    "set_as_default 1": (lambda kit, sid: kit.create_sandbox(set_as_default=1), "set_as_default"),
    "upload name too long": (lambda kit, sid: kit.upload_file("a" * 5000, sandbox_id=sid), "local file"),
    "upload NUL path": (lambda kit, sid: kit.upload_file("a\x00b", sandbox_id=sid), "NUL"),
    "upload non-path": (lambda kit, sid: kit.upload_file(3, sandbox_id=sid), "local_path"),
    "download to a missing folder": (
        lambda kit, sid: kit.download_file_from_sandbox(
            "/etc/hostname", sandbox_id=sid, local_path="no/such/x"
        ),
        "does not exist",
    ),
    "tool name unhashable": (lambda kit, sid: kit.call([], {}), "unknown tool"),  # type: ignore[arg-type]
    "tool arguments not a dict": (lambda kit, sid: kit.call("kill_job", ["x"]), "must be a dict"),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_refused_with_a_message(toolkit: E2BToolkit, sandbox_id: str, jobs: Jobs, case: str) -> None:
    call, named = REFUSED[case]
    with jobs.ending():
        result = check(call(toolkit, sandbox_id))
        jobs.track(result)
        assert result["status"] == "error", result
        assert named in result["message"], result["message"]
