"""How toolkit results and job ids look to MCP clients (no stack needed)."""

from __future__ import annotations

import json

import mcp_types as types
import pytest

from e2bq.integrations.mcp.jobs import job_id_of, job_uri
from e2bq.integrations.mcp.server import tool_result


@pytest.mark.parametrize("job_id", ["0f3a9c", "my job/with?odd#chars", "é-日本"])
def test_a_job_uri_gives_its_job_id_back(job_id: str) -> None:
    uri = job_uri(job_id)

    assert uri.startswith("e2bq://jobs/")
    assert "/" not in uri.removeprefix("e2bq://jobs/")
    assert job_id_of(uri) == job_id


@pytest.mark.parametrize(
    "uri", ["e2bq://jobs/", "e2bq://jobs/a/b", "e2bq://sandboxes/x", "file:///etc/passwd"]
)
def test_other_uris_name_no_job(uri: str) -> None:
    assert job_id_of(uri) is None


def test_an_accepted_job_names_its_resource() -> None:
    result = tool_result({"status": "accepted", "job_id": "j1", "sandbox_id": "s1"})

    assert result.is_error is False
    assert result.structured_content == {
        "status": "accepted",
        "job_id": "j1",
        "sandbox_id": "s1",
        "resource_uri": "e2bq://jobs/j1",
    }
    text, link = result.content
    assert isinstance(text, types.TextContent)
    assert json.loads(text.text) == result.structured_content
    assert isinstance(link, types.ResourceLink)
    assert link.uri == "e2bq://jobs/j1"


@pytest.mark.parametrize(
    ("status", "is_error"), [("success", False), ("error", True), ("not_found", True), ("done", False)]
)
def test_error_and_not_found_are_tool_errors(status: str, is_error: bool) -> None:
    result = tool_result({"status": status, "message": "what to change"})

    assert result.is_error is is_error
    [text] = result.content
    assert isinstance(text, types.TextContent)
    assert "what to change" in text.text
