"""`e2bq mcp` over stdio and streamable HTTP: the toolkit's tools, their errors, and job resources."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import ClientSession, MCPError
from mcp.shared.subscriptions import ResourceUpdated

from tests.integration.mcp.conftest import Connector, HttpServer, Notifications

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(180)]


@pytest.fixture(params=["stdio", "http"])
def connect(request: pytest.FixtureRequest, mcp_env: dict[str, str], tmp_path: Path) -> Connector:
    """Connects over the test's transport."""
    transport: str = request.param
    http: HttpServer | None = request.getfixturevalue("http_server") if transport == "http" else None
    return Connector(transport, mcp_env, tmp_path / "server.log", http)


def payload(result: types.CallToolResult) -> dict[str, Any]:
    """The toolkit's dict, as the structured content, checked against the JSON text beside it."""
    assert isinstance(result.content[0], types.TextContent)
    assert json.loads(result.content[0].text) == result.structured_content
    assert isinstance(result.structured_content, dict)
    return result.structured_content


async def job_status(session: ClientSession, uri: str) -> dict[str, Any]:
    """The job resource's one JSON text."""
    [contents] = (await session.read_resource(uri)).contents
    assert isinstance(contents, types.TextResourceContents)
    assert contents.mime_type == "application/json"
    status: dict[str, Any] = json.loads(contents.text)
    return status


async def test_list_tools_offers_the_toolkits_tools_with_their_schemas(connect: Connector) -> None:
    async with connect.session() as session:
        listed = await session.list_tools()

    tools = {tool.name: tool for tool in listed.tools}
    for name in (
        "run_python_code",
        "run_command",
        "get_job_status",
        "wait_job",
        "kill_job",
        "create_sandbox",
    ):
        assert tools[name].input_schema["type"] == "object"
        assert tools[name].description
    assert tools["run_python_code"].input_schema["required"] == ["code"]
    assert "list_managed_sandboxes" in tools
    assert not any("agent" in tool.input_schema.get("properties", {}) for tool in listed.tools)


async def test_run_python_code_returns_the_value(connect: Connector) -> None:
    async with connect.session() as session:
        result = await session.call_tool("run_python_code", {"code": "x = 41\nx + 1"})

    assert result.is_error is False
    fields = payload(result)
    assert fields["status"] == "success"
    assert fields["results"][0]["text"] == "42"


@pytest.mark.parametrize(
    ("name", "arguments", "named"),
    [
        ("run_python_code", {"code": "1 / 0"}, "ZeroDivisionError"),
        ("no_such_tool", {}, "unknown tool 'no_such_tool'"),
        ("run_python_code", {}, "'code'"),
        ("run_python_code", {"code": 123}, "argument 'code' must be string"),
    ],
    ids=["code-raises", "unknown-tool", "missing-argument", "wrong-type"],
)
async def test_a_failing_call_is_a_tool_error_naming_the_problem(
    connect: Connector, name: str, arguments: dict[str, Any], named: str
) -> None:
    async with connect.session() as session:
        result = await session.call_tool(name, arguments)

    assert result.is_error is True
    fields = payload(result)
    assert fields["status"] == "error"
    assert named in fields["message"] + json.dumps(fields.get("error"))


@pytest.mark.filterwarnings("ignore:resources/.*subscribe:mcp.MCPDeprecationWarning")
async def test_a_subscribed_client_hears_when_its_background_job_ends(connect: Connector) -> None:
    notifications = Notifications()
    async with connect.session(notifications) as session:
        templates = await session.list_resource_templates()
        assert [t.uri_template for t in templates.resource_templates] == ["e2bq://jobs/{job_id}"]

        # The job waits for a file the test writes after subscribing, so it cannot end before
        # (a file of its own: the sessions of this module share the default sandbox).
        go = f"/tmp/go-{uuid.uuid4().hex}"
        started = payload(
            await session.call_tool(
                "run_command_background",
                {"command": f"while [ ! -e {go} ]; do sleep 0.05; done; echo finished"},
            )
        )
        assert started["status"] == "accepted"
        uri = started["resource_uri"]
        assert uri == f"e2bq://jobs/{started['job_id']}"
        await session.subscribe_resource(uri)
        assert (await job_status(session, uri))["status"] == "running"
        assert not notifications.received
        assert (
            payload(await session.call_tool("run_command", {"command": f"touch {go}"}))["status"] == "success"
        )

        await notifications.resource_updated(uri, timeout=60)
        status = await job_status(session, uri)

    assert status["status"] == "done"
    assert status["job_id"] == started["job_id"]
    assert "finished" in status["result"]["stdout"]


@pytest.mark.filterwarnings("ignore:resources/.*subscribe:mcp.MCPDeprecationWarning")
async def test_subscribing_to_a_job_that_already_ended_tells_at_once(connect: Connector) -> None:
    notifications = Notifications()
    async with connect.session(notifications) as session:
        started = payload(await session.call_tool("run_command_background", {"command": "true"}))
        ended = payload(await session.call_tool("wait_job", {"job_id": started["job_id"], "timeout": 60}))
        assert ended["status"] == "done"

        await session.subscribe_resource(started["resource_uri"])

        await notifications.resource_updated(started["resource_uri"], timeout=30)


@pytest.mark.filterwarnings("ignore:resources/.*subscribe:mcp.MCPDeprecationWarning")
async def test_reading_or_subscribing_to_an_unknown_job_is_an_error(connect: Connector) -> None:
    async with connect.session() as session:
        with pytest.raises(MCPError, match="no job 'nope'"):
            await session.read_resource("e2bq://jobs/nope")
        with pytest.raises(MCPError, match="no job 'nope'"):
            await session.subscribe_resource("e2bq://jobs/nope")
        with pytest.raises(MCPError, match="unknown resource"):
            await session.read_resource("e2bq://sandboxes/x")


async def test_a_2026_client_listening_to_its_job_hears_when_it_ends(connect: Connector) -> None:
    go = f"/tmp/go-{uuid.uuid4().hex}"
    async with connect.client() as client:
        assert client.protocol_version == "2026-07-28"
        started = payload(
            await client.call_tool(
                "run_command_background", {"command": f"while [ ! -e {go} ]; do sleep 0.05; done"}
            )
        )
        uri = started["resource_uri"]

        async with client.listen(resource_subscriptions=[uri]) as subscription:
            [contents] = (await client.read_resource(uri)).contents
            assert isinstance(contents, types.TextResourceContents)
            assert json.loads(contents.text)["status"] == "running"
            assert (
                payload(await client.call_tool("run_command", {"command": f"touch {go}"}))["status"]
                == "success"
            )
            with anyio.fail_after(60):
                event = await subscription.__anext__()

        assert event == ResourceUpdated(uri=uri)
        [contents] = (await client.read_resource(uri)).contents
        assert isinstance(contents, types.TextResourceContents)
        assert json.loads(contents.text)["status"] == "done"


async def test_concurrent_calls_each_get_their_own_result(connect: Connector) -> None:
    results: dict[int, types.CallToolResult] = {}
    async with connect.session() as session:

        async def call(i: int) -> None:
            results[i] = await session.call_tool("run_command", {"command": f"echo call-{i}"})

        async with anyio.create_task_group() as group:
            for i in range(8):
                group.start_soon(call, i)

    assert sorted(results) == list(range(8))
    for i, result in results.items():
        assert payload(result)["stdout"] == f"call-{i}\n"
