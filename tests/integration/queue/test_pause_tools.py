"""pause_sandbox and resume_sandbox through real workers and sandboxd: the registry's ``paused``
state, calls that resume a paused sandbox (over a worker's kept connection and a fresh one, for a
sandbox paused through e2bq or with the SDK), a paused sandbox outliving its timeout, shutdown."""

from __future__ import annotations

import asyncio
import time

import pytest
from e2b_code_interpreter import Sandbox

from e2bq import AsyncE2BToolkit, E2BToolkit


def state_of(toolkit: E2BToolkit, sandbox_id: str) -> str:
    status = toolkit.get_sandbox_status(sandbox_id)
    assert status["status"] == "success", status
    return str(status["state"])


def listed_state(toolkit: E2BToolkit, sandbox_id: str) -> str:
    listing = toolkit.list_managed_sandboxes()
    return next(str(e["state"]) for e in listing["sandboxes"] if e["sandbox_id"] == sandbox_id)


def test_a_paused_sandbox_is_listed_paused_and_a_call_resumes_it_with_its_memory(toolkit: E2BToolkit) -> None:
    sandbox_id = toolkit.default_sandbox_id
    assert sandbox_id is not None
    assert toolkit.run_python_code("x = 41")["status"] == "success"  # the worker keeps its connection

    paused = toolkit.pause_sandbox()

    assert paused["status"] == "success", paused
    assert paused["sandbox_id"] == sandbox_id and paused["paused"] is True and paused["keep_memory"] is True
    assert state_of(toolkit, sandbox_id) == "paused"
    assert listed_state(toolkit, sandbox_id) == "paused"
    assert toolkit.get_sandbox_status(sandbox_id)["paused_at"] == pytest.approx(paused["paused_at"])
    assert toolkit.default_sandbox_id == sandbox_id  # paused, not gone: still the default
    info = Sandbox.get_info(sandbox_id, **toolkit.settings.sdk_options())
    assert str(getattr(info.state, "value", info.state)) == "paused"

    after = toolkit.run_python_code("x + 1")

    assert after["status"] == "success" and after["results"][0]["text"] == "42", after
    assert state_of(toolkit, sandbox_id) == "running"
    assert toolkit.get_sandbox_status(sandbox_id)["paused_at"] is None


def test_pausing_twice_says_it_was_paused_already(toolkit: E2BToolkit) -> None:
    first = toolkit.pause_sandbox()
    again = toolkit.pause_sandbox()

    assert first["status"] == again["status"] == "success"
    assert first["paused"] is True and again["paused"] is False
    assert again["paused_at"] == pytest.approx(first["paused_at"])


@pytest.mark.parametrize("paused_by", ["e2bq", "sdk"])
@pytest.mark.parametrize("connection", ["kept", "fresh"])
def test_every_call_resumes_a_paused_sandbox(toolkit: E2BToolkit, paused_by: str, connection: str) -> None:
    created = toolkit.create_sandbox()  # made by a worker, never connected to by one yet
    sandbox_id = created["sandbox_id"]
    if connection == "kept":  # the worker keeps its connection from this call; else it connects anew
        assert toolkit.run_python_code("y = 7", sandbox_id=sandbox_id)["status"] == "success"
    if paused_by == "e2bq":
        assert toolkit.pause_sandbox(sandbox_id)["paused"] is True
    else:
        assert Sandbox.pause(sandbox_id, **toolkit.settings.sdk_options()) is True

    command = toolkit.run_command("echo alive", sandbox_id=sandbox_id)

    assert command["status"] == "success" and command["stdout"].strip() == "alive", command
    assert state_of(toolkit, sandbox_id) == "running"
    info = Sandbox.get_info(sandbox_id, **toolkit.settings.sdk_options())
    assert str(getattr(info.state, "value", info.state)) == "running"


def test_resume_gives_back_the_time_it_had_left(toolkit: E2BToolkit) -> None:
    created = toolkit.create_sandbox(timeout=600)
    sandbox_id = created["sandbox_id"]
    left = created["result"]["expires_at"] - time.time()
    assert toolkit.pause_sandbox(sandbox_id)["status"] == "success"

    resumed = toolkit.resume_sandbox(sandbox_id)

    assert resumed["status"] == "success" and resumed["resumed"] is True, resumed
    assert resumed["timeout"] == pytest.approx(left, abs=5)
    assert resumed["expires_at"] == pytest.approx(time.time() + left, abs=5)
    assert toolkit.get_sandbox_status(sandbox_id)["expires_at"] == pytest.approx(resumed["expires_at"])
    again = toolkit.resume_sandbox(sandbox_id, timeout=900)
    assert again["status"] == "success" and again["resumed"] is False, again
    assert again["expires_at"] == pytest.approx(time.time() + 900, abs=5)


def test_a_paused_sandbox_outlives_its_timeout(toolkit: E2BToolkit) -> None:
    created = toolkit.create_sandbox(timeout=4)
    sandbox_id = created["sandbox_id"]
    assert toolkit.run_command("echo kept > /home/user/k.txt", sandbox_id=sandbox_id)["status"] == "success"
    assert toolkit.pause_sandbox(sandbox_id)["status"] == "success"
    while time.time() < created["result"]["expires_at"] + 3:  # its timeout has passed, by the clock
        time.sleep(0.2)
    toolkit.create_sandbox(timeout=60)  # a registry add: it forgets the namespace's expired sandboxes

    assert state_of(toolkit, sandbox_id) == "paused"
    assert sandbox_id in {e["sandbox_id"] for e in toolkit.list_managed_sandboxes()["sandboxes"]}
    read = toolkit.run_command("cat /home/user/k.txt", sandbox_id=sandbox_id)
    assert read["status"] == "success" and read["stdout"].strip() == "kept", read
    assert toolkit.get_sandbox_status(sandbox_id)["expires_at"] > time.time() + 30


def test_a_paused_sandbox_shuts_down(toolkit: E2BToolkit) -> None:
    created = toolkit.create_sandbox()
    sandbox_id = created["sandbox_id"]
    assert toolkit.pause_sandbox(sandbox_id)["status"] == "success"

    shut = toolkit.shutdown_sandbox(sandbox_id)

    assert shut["status"] == "success" and shut["killed"] is True, shut
    assert sandbox_id not in {e["sandbox_id"] for e in toolkit.list_managed_sandboxes()["sandboxes"]}
    refused = toolkit.run_python_code("1", sandbox_id=sandbox_id)
    assert refused["status"] == "error" and "not running" in refused["message"], refused


def test_a_filesystem_only_pause_keeps_the_files(toolkit: E2BToolkit) -> None:
    created = toolkit.create_sandbox()
    sandbox_id = created["sandbox_id"]
    assert toolkit.run_command("echo disk > /home/user/d.txt", sandbox_id=sandbox_id)["status"] == "success"
    assert toolkit.run_python_code("z = 1", sandbox_id=sandbox_id)["status"] == "success"

    paused = toolkit.pause_sandbox(sandbox_id, keep_memory=False)

    assert paused["status"] == "success" and paused["keep_memory"] is False, paused
    assert state_of(toolkit, sandbox_id) == "paused"
    read = toolkit.run_command("cat /home/user/d.txt", sandbox_id=sandbox_id)
    assert read["status"] == "success" and read["stdout"].strip() == "disk", read
    fresh = toolkit.run_python_code("'z' in globals()", sandbox_id=sandbox_id)
    assert fresh["status"] == "success" and fresh["results"][0]["text"] == "False", fresh


@pytest.mark.parametrize(
    ("call", "arguments", "says"),
    [
        ("pause_sandbox", {"keep_memory": "yes"}, "keep_memory"),
        ("pause_sandbox", {"sandbox_id": "no-such-sandbox"}, "no-such-sandbox"),
        ("resume_sandbox", {"sandbox_id": "no-such-sandbox"}, "no-such-sandbox"),
        ("resume_sandbox", {"timeout": -1}, "timeout"),
    ],
)
def test_bad_input_is_an_error_result(
    toolkit: E2BToolkit, call: str, arguments: dict[str, object], says: str
) -> None:
    result = getattr(toolkit, call)(**arguments)

    assert result["status"] == "error" and says in result["message"], result


def test_the_async_toolkit_pauses_and_resumes(toolkit: E2BToolkit) -> None:
    sandbox_id = toolkit.default_sandbox_id

    async def both() -> tuple[dict[str, object], dict[str, object]]:
        async with AsyncE2BToolkit(toolkit.manager, auto_create_default=False) as kit:
            return dict(await kit.pause_sandbox(sandbox_id)), dict(await kit.resume_sandbox(sandbox_id))

    paused, resumed = asyncio.run(both())

    assert paused["status"] == "success" and paused["paused"] is True, paused
    assert resumed["status"] == "success" and resumed["resumed"] is True, resumed


def test_a_fan_out_resumes_the_paused_sandboxes(toolkit: E2BToolkit) -> None:
    other = toolkit.create_sandbox()["sandbox_id"]
    assert toolkit.run_python_code("1", sandbox_id=other)["status"] == "success"
    assert toolkit.pause_sandbox(other)["status"] == "success"
    assert Sandbox.pause(str(toolkit.default_sandbox_id), **toolkit.settings.sdk_options()) is True

    everywhere = toolkit.run_in_all_sandboxes("6 * 7")

    assert everywhere["status"] == "success", everywhere
    assert len(everywhere["results"]) == 2
    for sandbox_id, result in everywhere["results"].items():
        assert result["status"] == "success" and result["results"][0]["text"] == "42", (sandbox_id, result)
    assert listed_state(toolkit, other) == "running"


def test_a_background_job_resumes_a_sandbox_paused_through_e2bq(toolkit: E2BToolkit) -> None:
    assert toolkit.run_python_code("w = 5")["status"] == "success"
    assert toolkit.pause_sandbox()["status"] == "success"

    accepted = toolkit.run_python_code_background("w * 2")
    assert accepted["status"] == "accepted", accepted
    ended = toolkit.wait_job(accepted["job_id"], timeout=120)

    assert ended["status"] == "done", ended
    assert ended["result"]["results"][0]["text"] == "10", ended
