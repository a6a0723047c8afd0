"""Sandbox lifecycles through the queue: SandboxManager, the toolkit's sandbox tools, and its tool specs."""

from __future__ import annotations

import json

import pytest
from e2b_code_interpreter import Sandbox

from e2bq import E2BQError, E2BToolkit, SandboxManager, SandboxSlot

SPEC_METHODS = {
    "run_python_code",
    "run_python_code_background",
    "run_in_all_sandboxes",
    "map_python_code",
    "run_command",
    "run_command_background",
    "upload_file",
    "download_file_from_sandbox",
    "download_png_result",
    "download_chart_data",
    "get_public_url",
    "run_server",
    "get_job_status",
    "list_jobs",
    "get_job_results",
    "get_job_output",
    "kill_job",
    "wait_job",
    "create_sandbox",
    "connect_to_sandbox",
    "list_managed_sandboxes",
    "list_account_sandboxes",
    "set_default_sandbox",
    "get_sandbox_status",
    "set_sandbox_timeout",
    "shutdown_sandbox",
    "shutdown_all_sandboxes",
    "force_shutdown",
    "force_shutdown_all",
    "pause_sandbox",
    "resume_sandbox",
    "fork_sandbox",
    "create_snapshot",
    "list_snapshots",
    "delete_snapshot",
}


def managed(toolkit: E2BToolkit) -> dict[str, dict[str, object]]:
    listing = toolkit.list_managed_sandboxes()
    assert listing["status"] == "success"
    return {entry["sandbox_id"]: dict(entry) for entry in listing["sandboxes"]}


def test_the_toolkit_starts_with_a_default_sandbox(toolkit: E2BToolkit) -> None:
    listing = toolkit.list_managed_sandboxes()

    [entry] = listing["sandboxes"]
    assert listing["default_sandbox_id"] == entry["sandbox_id"]
    assert entry["is_default"] is True
    assert entry["provider"] == "local"
    assert entry["expires_at"] - entry["created_at"] == pytest.approx(300, abs=1)
    json.dumps(listing)


def test_a_second_toolkit_reuses_the_live_default(toolkit: E2BToolkit) -> None:
    before = toolkit.list_managed_sandboxes()["default_sandbox_id"]

    other = E2BToolkit(SandboxManager(), auto_create_default=True)

    assert other.list_managed_sandboxes()["default_sandbox_id"] == before
    assert len(managed(toolkit)) == 1


def test_create_sandbox_with_metadata_and_as_default(toolkit: E2BToolkit) -> None:
    first_default = toolkit.list_managed_sandboxes()["default_sandbox_id"]

    created = toolkit.create_sandbox(timeout=120, metadata={"team": "blue", "n": 7}, set_as_default=True)

    assert created["status"] == "success", created
    sandbox_id = created["sandbox_id"]
    entries = managed(toolkit)
    assert set(entries) == {first_default, sandbox_id}
    assert entries[sandbox_id]["metadata"] == {"team": "blue", "n": "7"}
    assert entries[sandbox_id]["is_default"] is True
    assert entries[first_default]["is_default"] is False
    assert entries[sandbox_id]["expires_at"] - entries[sandbox_id]["created_at"] == pytest.approx(120, abs=1)
    ran = toolkit.run_command("echo in the new default")
    assert ran["sandbox_id"] == sandbox_id


def test_create_sandbox_refuses_bad_arguments(toolkit: E2BToolkit) -> None:
    assert toolkit.create_sandbox(timeout=-1)["status"] == "error"
    assert toolkit.create_sandbox(metadata=["not", "a", "dict"])["status"] == "error"  # type: ignore[arg-type]
    assert len(managed(toolkit)) == 1


def test_shutdown_sandbox_forgets_it(toolkit: E2BToolkit) -> None:
    sandbox_id = toolkit.create_sandbox()["sandbox_id"]

    stopped = toolkit.shutdown_sandbox(sandbox_id)

    assert stopped["status"] == "success"
    assert stopped["result"] == {"status": "success", "sandbox_id": sandbox_id, "result": True}
    assert (stopped["sandbox_id"], stopped["killed"]) == (sandbox_id, True)
    assert sandbox_id not in managed(toolkit)
    after = toolkit.run_python_code("1", sandbox_id=sandbox_id)
    assert after["status"] == "error"
    assert sandbox_id in after["message"]


def test_shutting_down_the_default_leaves_no_default(toolkit: E2BToolkit) -> None:
    default = toolkit.list_managed_sandboxes()["default_sandbox_id"]

    assert toolkit.shutdown_sandbox()["sandbox_id"] == default

    listing = toolkit.list_managed_sandboxes()
    assert listing["sandboxes"] == []
    assert listing["default_sandbox_id"] is None
    orphan = toolkit.run_python_code("1")
    assert orphan["status"] == "error"
    assert "default sandbox" in orphan["message"]


def test_shutdown_all_sandboxes(toolkit: E2BToolkit) -> None:
    ids = {toolkit.create_sandbox()["sandbox_id"] for _ in range(2)} | set(managed(toolkit))
    assert len(ids) == 3

    outcome = toolkit.shutdown_all_sandboxes()

    assert outcome["status"] == "success"
    assert set(outcome["result"]) == ids
    assert all(r["status"] == "success" and r["result"] is True for r in outcome["result"].values())
    assert managed(toolkit) == {}
    json.dumps(outcome)


def test_manager_create_connect_shutdown(toolkit: E2BToolkit) -> None:
    manager = toolkit.manager

    slot = manager.create(timeout=60, metadata={"who": "manager"})

    assert isinstance(slot, SandboxSlot)
    assert slot.metadata == {"who": "manager"}
    assert slot.provider == "local"
    assert slot.expires_at - slot.created_at == pytest.approx(60, abs=1)
    assert slot.sandbox_id in managed(toolkit)

    again = manager.connect(slot.sandbox_id)
    assert again.sandbox_id == slot.sandbox_id
    assert again.metadata == {"who": "manager"}
    # Where this process can reach the provider, the slot's SDK sandbox is the same one.
    assert again.sandbox.commands.run("echo via the sdk").stdout == "via the sdk\n"

    stopped = manager.shutdown(slot.sandbox_id)
    assert stopped == {"status": "success", "sandbox_id": slot.sandbox_id, "result": True}
    assert slot.sandbox_id not in managed(toolkit)
    assert manager.shutdown(slot.sandbox_id)["result"] is False


def test_connect_adopts_a_sandbox_made_outside_e2bq(toolkit: E2BToolkit) -> None:
    outsider = Sandbox.create(metadata={"made": "by the sdk"}, **toolkit.settings.sdk_options())
    try:
        assert outsider.sandbox_id not in managed(toolkit)

        slot = toolkit.manager.connect(outsider.sandbox_id)

        assert slot.metadata == {"made": "by the sdk"}
        assert managed(toolkit)[outsider.sandbox_id]["metadata"] == {"made": "by the sdk"}
        assert toolkit.run_command("echo adopted", sandbox_id=slot.sandbox_id)["stdout"] == "adopted\n"
    finally:
        outsider.kill()


def test_connect_to_an_unknown_sandbox_raises_an_e2bq_error(toolkit: E2BToolkit) -> None:
    with pytest.raises(E2BQError, match="no-such-sandbox"):
        toolkit.manager.connect("no-such-sandbox")


def test_shutdown_of_a_bad_id_is_an_error_dict(toolkit: E2BToolkit) -> None:
    result = toolkit.manager.shutdown("")  # type: ignore[arg-type]

    assert result["status"] == "error"
    assert result["result"] is None


def test_the_tools_list_every_method_with_a_json_schema(toolkit: E2BToolkit) -> None:
    specs = {spec["name"]: spec for spec in toolkit.tools}

    assert set(specs) == SPEC_METHODS
    for spec in specs.values():
        assert spec["description"]
        assert spec["parameters"]["type"] == "object"
        assert "agent" not in spec["parameters"].get("properties", {})
        json.dumps(spec)
    assert specs["run_python_code"]["parameters"]["required"] == ["code"]
    assert specs["run_server"]["parameters"]["properties"]["port"] == {"type": "integer"}


def test_a_tool_can_be_called_by_name(toolkit: E2BToolkit) -> None:
    result = toolkit.call("run_python_code", {"code": "6 * 7"})

    assert result["status"] == "success"
    assert result["results"][0]["text"] == "42"
    assert toolkit.call("no_such_tool", {})["status"] == "error"
    assert toolkit.call("run_python_code", {"cod": "1"})["status"] == "error"
