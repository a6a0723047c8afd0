"""`e2bq pause`, `resume`, `fork` and `snapshots` against the real stack."""

from __future__ import annotations

import json

from e2bq import E2BToolkit

from .conftest import e2bq


def test_pause_then_resume_a_sandbox(toolkit: E2BToolkit) -> None:
    sandbox_id = toolkit.default_sandbox_id
    assert sandbox_id is not None

    paused = e2bq("pause", sandbox_id)

    assert paused.exit_code == 0, paused.stderr
    assert paused.stdout == f"paused {sandbox_id} (its memory kept)\n"
    listed = e2bq("sandboxes")
    assert "paused" in next(line for line in listed.stdout.splitlines() if sandbox_id in line)
    resumed = e2bq("resume", sandbox_id, "--json")
    assert resumed.exit_code == 0, resumed.stderr
    assert json.loads(resumed.stdout)["resumed"] is True
    again = e2bq("resume", sandbox_id)
    assert again.exit_code == 0 and "was running already" in again.stdout


def test_fork_prints_the_copies_ids(toolkit: E2BToolkit) -> None:
    sandbox_id = toolkit.default_sandbox_id
    assert sandbox_id is not None

    forked = e2bq("fork", sandbox_id, "-n", "2")

    assert forked.exit_code == 0, forked.stderr
    ids = forked.stdout.split()
    managed = {entry["sandbox_id"] for entry in toolkit.list_managed_sandboxes()["sandboxes"]}
    assert len(ids) == 2 and set(ids) <= managed


def test_snapshots_lists_them(toolkit: E2BToolkit) -> None:
    taken = toolkit.create_snapshot(name="cli-snap")
    assert taken["status"] == "success", taken

    table = e2bq("snapshots")
    as_json = e2bq("snapshots", "--json")

    assert table.exit_code == 0 and taken["snapshot_id"] in table.stdout, table.stderr
    listed = json.loads(as_json.stdout)
    assert taken["snapshot_id"] in {s["snapshot_id"] for s in listed["snapshots"]}
    toolkit.delete_snapshot(taken["snapshot_id"])


def test_mistakes_are_messages_with_exit_status_1(toolkit: E2BToolkit) -> None:
    unknown = e2bq("pause", "no-such-sandbox")
    assert unknown.exit_code == 1 and "no-such-sandbox" in unknown.stderr
    too_many = e2bq("fork", "no-such-sandbox", "-n", "101")
    assert too_many.exit_code == 1 and "count" in too_many.stderr
