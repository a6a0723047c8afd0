"""fork_sandbox through real workers and sandboxd: each fork a managed sandbox on its source's
node with the source's files and fresh processes, failures in place, bad input as error results."""

from __future__ import annotations

import pytest

from e2bq import E2BToolkit


def test_forks_are_managed_sandboxes_with_the_files_and_fresh_processes(toolkit: E2BToolkit) -> None:
    source = toolkit.default_sandbox_id
    assert source is not None
    assert toolkit.run_command("echo forked > /home/user/f.txt", sandbox_id=source)["status"] == "success"
    assert toolkit.run_python_code("only_in_source = 1", sandbox_id=source)["status"] == "success"

    forked = toolkit.fork_sandbox(count=2, timeout=120, metadata={"role": "copy"})

    assert forked["status"] == "success" and forked["count"] == 2, forked
    assert forked["sandbox_id"] == source
    ids = [fork["sandbox_id"] for fork in forked["forks"]]
    assert all(fork["status"] == "success" for fork in forked["forks"]) and None not in ids
    assert len(set(ids)) == 2 and source not in ids
    listed = {e["sandbox_id"]: e for e in toolkit.list_managed_sandboxes()["sandboxes"]}
    node = listed[source]["node"]
    for fork_id in ids:
        assert fork_id is not None
        entry = listed[fork_id]
        assert entry["node"] == node and entry["state"] == "running" and entry["is_default"] is False
        assert entry["metadata"] == {"role": "copy", "forked_from": source}
        read = toolkit.run_command("cat /home/user/f.txt", sandbox_id=fork_id)
        assert read["status"] == "success" and read["stdout"].strip() == "forked", read
        fresh = toolkit.run_python_code("'only_in_source' in globals()", sandbox_id=fork_id)
        assert fresh["status"] == "success" and fresh["results"][0]["text"] == "False", fresh
    written = toolkit.run_command("echo changed > /home/user/f.txt", sandbox_id=ids[0])
    assert written["status"] == "success"
    unchanged = toolkit.run_command("cat /home/user/f.txt", sandbox_id=source)
    assert unchanged["stdout"].strip() == "forked", unchanged  # copies, not shared files


def test_a_fork_shuts_down_on_its_own(toolkit: E2BToolkit) -> None:
    forked = toolkit.fork_sandbox()
    assert forked["status"] == "success" and forked["count"] == 1, forked
    fork_id = forked["forks"][0]["sandbox_id"]
    assert fork_id is not None

    shut = toolkit.shutdown_sandbox(fork_id)

    assert shut["status"] == "success" and shut["killed"] is True, shut
    still = toolkit.run_python_code("1 + 1")
    assert still["status"] == "success", still  # its source lives on


def test_a_paused_sandbox_is_resumed_to_be_forked(toolkit: E2BToolkit) -> None:
    assert toolkit.pause_sandbox()["status"] == "success"

    forked = toolkit.fork_sandbox()

    assert forked["status"] == "success" and forked["count"] == 1, forked


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        ({"count": 0}, "count"),
        ({"count": 101}, "count"),
        ({"count": "2"}, "count"),
        ({"sandbox_id": "no-such-sandbox"}, "no-such-sandbox"),
        ({"timeout": 0}, "timeout"),
    ],
)
def test_bad_input_is_an_error_result(toolkit: E2BToolkit, arguments: dict[str, object], says: str) -> None:
    result = toolkit.fork_sandbox(**arguments)  # type: ignore[arg-type]

    assert result["status"] == "error" and says in result["message"], result


def test_a_fork_s_metadata_cannot_hide_its_source(toolkit: E2BToolkit) -> None:
    source = toolkit.default_sandbox_id

    forked = toolkit.fork_sandbox(metadata={"forked_from": "someone-else"})

    assert forked["status"] == "success" and forked["count"] == 1, forked
    fork_id = forked["forks"][0]["sandbox_id"]
    assert fork_id is not None
    assert toolkit.get_sandbox_status(fork_id)["metadata"]["forked_from"] == source
