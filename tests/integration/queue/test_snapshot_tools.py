"""create_snapshot, list_snapshots, delete_snapshot and create_sandbox(template=snapshot) through
real workers and sandboxd; each snapshot recorded with the node that keeps it."""

from __future__ import annotations

from e2bq import E2BToolkit


def test_a_snapshot_is_listed_and_new_sandboxes_start_from_it(toolkit: E2BToolkit) -> None:
    source = toolkit.default_sandbox_id
    assert source is not None
    assert toolkit.run_command("echo snap > /home/user/s.txt")["status"] == "success"

    taken = toolkit.create_snapshot(name="queue-snap")

    assert taken["status"] == "success", taken
    snapshot_id = taken["snapshot_id"]
    assert taken["sandbox_id"] == source
    node = toolkit.get_sandbox_status(source)["node"]
    assert taken["node"] == node
    listed = toolkit.list_snapshots()
    assert listed["status"] == "success", listed
    assert snapshot_id in {s["snapshot_id"] for s in listed["snapshots"]}
    mine = toolkit.list_snapshots(sandbox_id=source)
    assert [s["snapshot_id"] for s in mine["snapshots"]] == [snapshot_id], mine
    assert mine["snapshots"][0]["node"] == node
    made = toolkit.create_sandbox(template=snapshot_id)
    assert made["status"] == "success", made
    read = toolkit.run_command("cat /home/user/s.txt", sandbox_id=made["sandbox_id"])
    assert read["status"] == "success" and read["stdout"].strip() == "snap", read
    assert toolkit.run_python_code("1 + 1")["status"] == "success"  # the source keeps running

    deleted = toolkit.delete_snapshot(snapshot_id)

    assert deleted == {"status": "success", "snapshot_id": snapshot_id, "deleted": True}
    assert snapshot_id not in {s["snapshot_id"] for s in toolkit.list_snapshots()["snapshots"]}
    again = toolkit.delete_snapshot(snapshot_id)
    assert again["status"] == "success" and again["deleted"] is False, again
    lives = toolkit.run_command("cat /home/user/s.txt", sandbox_id=made["sandbox_id"])
    assert lives["status"] == "success", lives  # a sandbox made from it outlives it


def test_a_snapshot_of_a_paused_sandbox(toolkit: E2BToolkit) -> None:
    assert toolkit.pause_sandbox()["status"] == "success"

    taken = toolkit.create_snapshot()

    assert taken["status"] == "success", taken
    assert toolkit.delete_snapshot(taken["snapshot_id"])["deleted"] is True


def test_bad_input_is_an_error_result(toolkit: E2BToolkit) -> None:
    unknown = toolkit.create_snapshot(sandbox_id="no-such-sandbox")
    assert unknown["status"] == "error" and "no-such-sandbox" in unknown["message"], unknown
    bad_name = toolkit.create_snapshot(name=7)  # type: ignore[arg-type]
    assert bad_name["status"] == "error" and "name" in bad_name["message"], bad_name
    not_text = toolkit.create_snapshot(name="\ud800")
    assert not_text["status"] == "error" and "name" in not_text["message"], not_text
    bad_id = toolkit.delete_snapshot(None)  # type: ignore[arg-type]
    assert bad_id["status"] == "error" and "snapshot_id" in bad_id["message"], bad_id
    from_nothing = toolkit.create_sandbox(template="no-such-snapshot")
    assert from_nothing["status"] == "error" and "no-such-snapshot" in from_nothing["message"], from_nothing
