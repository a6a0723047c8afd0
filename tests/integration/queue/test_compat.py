"""Code written against agno's E2BTools (the toolkit this API comes from) runs unchanged: its
return keys, status values, tools, attributes and default-sandbox rules, beside e2bq's own."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2bq import E2BToolkit, SandboxManager
from tests.procs import SandboxHostProcess, queue_env, sandbox_host, wait_for, worker


def ended(toolkit: E2BToolkit, job_id: str) -> dict[str, object]:
    record = toolkit.wait_job(job_id, timeout=60)
    assert record["status"] in ("done", "error", "cancelled"), record
    return dict(record)


def test_a_script_written_for_the_original_toolkit(toolkit: E2BToolkit) -> None:
    manager = toolkit.manager
    first = toolkit.default_sandbox_id
    assert first is not None

    code = toolkit.run_python_code("print('hi')\n1 + 1")
    assert code["status"] == "success" and code["results"][0]["text"] == "2"

    command = toolkit.run_command("echo out; echo err >&2")
    assert command["output"] == {"stdout": "out\n", "stderr": "err\n"}
    assert (command["stdout"], command["stderr"]) == ("out\n", "err\n")

    second = toolkit.create_sandbox(metadata={"role": "second"})
    assert second["status"] == "success"
    second_id = second["sandbox_id"]
    assert toolkit.default_sandbox_id == first  # a default existed: the new one is not it

    fan = toolkit.run_in_all_sandboxes("2 + 2")
    assert set(fan["results"]) == {first, second_id}
    assert fan["results"] == fan["result"]
    assert all(result["status"] == "success" for result in fan["results"].values())

    sleeper = toolkit.run_command_background("sleep 60", sandbox_id=second_id)["job_id"]
    wait_for(lambda: toolkit.get_job_status(sleeper).get("state") == "started", 60, "the job to start")
    listing = toolkit.list_managed_sandboxes()
    assert listing["count"] == 2
    entries = {entry["sandbox_id"]: entry for entry in listing["sandboxes"]}
    assert (entries[first]["is_default"], entries[second_id]["is_default"]) == (True, False)
    assert (entries[first]["has_jobs"], entries[second_id]["has_jobs"]) == (False, True)
    assert entries[second_id]["metadata"] == {"role": "second"}

    killed = toolkit.kill_job(sleeper)
    assert (killed["status"], killed["job_id"], killed["killed_proc"]) == ("cancelled", sleeper, True)
    assert toolkit.kill_job(sleeper)["status"] == "not_cancelled"
    assert toolkit.kill_job("no-such-job")["status"] == "not_found"
    assert toolkit.get_job_status("no-such-job")["status"] == "not_found"

    echo = toolkit.run_command_background("echo hi")["job_id"]
    done = ended(toolkit, echo)
    assert done["status"] == "done"
    assert done["result"]["output"]["stdout"] == "hi\n"  # type: ignore[index]
    assert toolkit.get_job_status(echo)["result"]["output"]["stdout"] == "hi\n"  # type: ignore[index, typeddict-item]

    status = toolkit.get_sandbox_status()
    assert (status["status"], status["sandbox_id"], status["is_default"]) == ("success", first, True)
    before = status["expires_at"]
    longer = toolkit.set_sandbox_timeout(900)
    assert (longer["status"], longer["sandbox_id"], longer["timeout"]) == ("success", first, 900)
    assert toolkit.get_sandbox_status(first)["expires_at"] > before

    assert toolkit.set_default_sandbox(second_id)["status"] == "success"
    assert toolkit.default_sandbox_id == second_id
    assert manager.get_slot().sandbox_id == second_id
    assert manager.get_slot(first).sandbox_id == first
    refused = toolkit.set_default_sandbox("sbx-not-managed")
    assert refused["status"] == "error" and "not managed" in refused["message"]

    account = toolkit.list_account_sandboxes()
    listed = {entry["sandbox_id"]: entry for entry in account["sandboxes"]}
    assert account["count"] == len(account["sandboxes"]) >= 2
    assert {first, second_id} <= set(listed)
    assert listed[second_id]["metadata"]["role"] == "second"
    assert listed[second_id]["started_at"] and listed[second_id]["template_id"]
    assert listed[first]["managed"] is True
    assert {entry["sandbox_id"] for entry in manager.list_account_sandboxes()} >= {first, second_id}

    # Shutting the default down: the other managed sandbox becomes the default.
    shut = toolkit.shutdown_sandbox()
    assert shut["status"] == "success"
    assert shut["result"] == {"status": "success", "sandbox_id": second_id, "result": True}
    assert toolkit.default_sandbox_id == first == shut["default_sandbox_id"]

    everything = toolkit.shutdown_all_sandboxes()
    assert everything["results"][first]["status"] == "success"
    assert toolkit.list_managed_sandboxes()["count"] == 0
    assert toolkit.default_sandbox_id is None


def test_the_first_sandbox_made_becomes_the_default(bare_toolkit: E2BToolkit) -> None:
    made = bare_toolkit.create_sandbox()
    try:
        assert bare_toolkit.default_sandbox_id == made["sandbox_id"]
        assert bare_toolkit.create_sandbox()["sandbox_id"] != bare_toolkit.default_sandbox_id
    finally:
        bare_toolkit.shutdown_all_sandboxes()


def test_connect_to_a_sandbox_made_elsewhere_and_force_shut_it_down(
    toolkit: E2BToolkit, stack_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("E2BQ_NAMESPACE", stack_env["E2BQ_NAMESPACE"] + "-elsewhere")
    elsewhere = SandboxManager().create().sandbox_id
    monkeypatch.setenv("E2BQ_NAMESPACE", stack_env["E2BQ_NAMESPACE"])
    assert elsewhere not in {e["sandbox_id"] for e in toolkit.list_managed_sandboxes()["sandboxes"]}

    connected = toolkit.connect_to_sandbox(elsewhere, set_as_default=True)

    assert connected == {"status": "success", "sandbox_id": elsewhere, "is_default": True}
    assert toolkit.run_python_code("21 * 2")["results"][0]["text"] == "42"
    forced = toolkit.force_shutdown(elsewhere)
    assert (forced["status"], forced["sandbox_id"], forced["result"]) == ("success", elsewhere, True)
    assert toolkit.default_sandbox_id not in (None, elsewhere)  # the toolkit's first one again


def test_force_shutdown_of_a_sandbox_no_namespace_manages(toolkit: E2BToolkit) -> None:
    made = toolkit.create_sandbox()["sandbox_id"]
    toolkit.registry.remove(made)  # forgotten, as by a crashed run: only the host knows it

    forced = toolkit.force_shutdown(made)

    assert (forced["status"], forced["result"]) == ("success", True)
    gone = toolkit.force_shutdown(made)
    assert (gone["status"], gone["result"]) == ("success", False)


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda kit: kit.run_python_code(), "'code'"),
        (lambda kit: kit.run_python_code(code="1", bogus=2), "'bogus'"),
        (lambda kit: kit.run_command("true", None, False, None, None, None, "extra"), "too many"),
        (lambda kit: kit.get_job_status(), "'job_id'"),
        (lambda kit: kit.set_sandbox_timeout(sandbox_id="x"), "'timeout'"),
    ],
)
def test_a_missing_or_unknown_argument_is_an_ordinary_error(
    bare_toolkit: E2BToolkit, call: object, named: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="e2bq"):
        result = call(bare_toolkit)  # type: ignore[operator]

    assert result["status"] == "error"
    assert named in result["message"] and "internal error" not in result["message"]
    assert "it takes (" in result["message"]
    assert not caplog.records  # no traceback: the caller's mistake, not e2bq's


@pytest.fixture
def private_host(tmp_path: Path) -> Iterator[SandboxHostProcess]:
    with sandbox_host(tmp_path) as host:
        yield host


def test_force_shutdown_all_kills_every_sandbox_of_the_provider(
    redis_url: str, private_host: SandboxHostProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = queue_env(redis_url, private_host, "force")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with worker(tmp_path, env):
        ours = E2BToolkit(SandboxManager(), auto_create_default=True)
        monkeypatch.setenv("E2BQ_NAMESPACE", env["E2BQ_NAMESPACE"] + "-other")
        theirs = SandboxManager().create().sandbox_id
        monkeypatch.setenv("E2BQ_NAMESPACE", env["E2BQ_NAMESPACE"])
        mine = ours.default_sandbox_id
        assert mine is not None

        forced = ours.force_shutdown_all()

        assert forced["status"] == "success"
        assert set(forced["results"]) == {mine, theirs}
        assert all(entry["status"] == "killed" for entry in forced["results"].values()), forced
        wait_for(lambda: ours.list_account_sandboxes()["count"] == 0, 30, "the host to list none")
        assert ours.list_managed_sandboxes()["count"] == 0


def test_list_jobs_newest_first_with_a_state_filter(toolkit: E2BToolkit) -> None:
    first = toolkit.run_command_background("true")["job_id"]
    ended(toolkit, first)
    second = toolkit.run_command_background("sleep 60")["job_id"]
    try:
        listing = toolkit.list_jobs()
        assert listing["status"] == "success" and listing["count"] == len(listing["jobs"])
        ids = [job["job_id"] for job in listing["jobs"]]
        assert ids.index(second) < ids.index(first)
        assert "result" not in listing["jobs"][0]
        done = {job["job_id"] for job in toolkit.list_jobs(state="done")["jobs"]}
        assert first in done and second not in done
        refused = toolkit.list_jobs(state="finished")  # type: ignore[arg-type]
        assert refused["status"] == "error" and "running" in refused["message"]
    finally:
        toolkit.kill_job(second)
