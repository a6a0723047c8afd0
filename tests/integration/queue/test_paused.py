"""A sandbox paused with the SDK's pause(): calls through the queue say it is paused, the registry
keeps it, and once it is resumed its state (memory kept) answers again."""

from __future__ import annotations

from e2b_code_interpreter import Sandbox

from e2bq import E2BToolkit


def test_a_paused_sandbox_is_kept_and_answers_once_resumed(toolkit: E2BToolkit) -> None:
    sandbox_id = toolkit.default_sandbox_id
    assert sandbox_id is not None
    assert toolkit.run_python_code("x = 41")["status"] == "success"  # the worker now holds its connection
    options = toolkit.settings.sdk_options()
    assert Sandbox.pause(sandbox_id, **options) is True

    refused = toolkit.run_python_code("x + 1")

    assert refused["status"] == "error"
    assert "is paused" in refused["message"] and "resume" in refused["message"], refused
    assert sandbox_id in {entry["sandbox_id"] for entry in toolkit.list_managed_sandboxes()["sandboxes"]}
    assert toolkit.default_sandbox_id == sandbox_id  # not replaced: it is paused, not gone
    Sandbox.connect(sandbox_id, **options)  # resumes it
    after = toolkit.run_python_code("x + 1")
    assert after["status"] == "success" and after["results"][0]["text"] == "42", after
