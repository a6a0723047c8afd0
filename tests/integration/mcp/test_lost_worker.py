"""A subscribed job whose worker was SIGKILLed: no event ever says it ended until someone looks,
and the server looks — the subscriber hears of the end (the job's ``error``, its worker lost)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import ClientSession

from tests.integration.faults.conftest import Stack, kill_worker, stack  # noqa: F401
from tests.integration.mcp.conftest import Connector, Notifications

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.timeout(240)]

LOST_WITHIN = 90  # the node's heartbeat (15 s) plus the server's 5 s looks, with room for a loaded machine


async def job_status(session: ClientSession, uri: str) -> dict[str, Any]:
    [contents] = (await session.read_resource(uri)).contents
    assert isinstance(contents, types.TextResourceContents)
    status: dict[str, Any] = json.loads(contents.text)
    return status


@pytest.mark.filterwarnings("ignore:resources/.*subscribe:mcp.MCPDeprecationWarning")
async def test_a_subscriber_hears_of_a_job_whose_worker_was_killed(stack: Stack, tmp_path: Path) -> None:  # noqa: F811
    doomed = stack.worker()  # the only worker: no one else will end the job
    notifications = Notifications()
    async with Connector("stdio", stack.env, tmp_path / "server.log").session(notifications) as session:
        started = (
            await session.call_tool("run_command_background", {"command": "sleep 600"})
        ).structured_content
        assert started is not None
        uri = started["resource_uri"]
        with anyio.fail_after(60):
            while not (await job_status(session, uri)).get("pid"):  # the sleep started
                await anyio.sleep(0.05)
        await session.subscribe_resource(uri)

        kill_worker(doomed)

        await notifications.resource_updated(uri, timeout=LOST_WITHIN)
        ended = await job_status(session, uri)

    assert ended["status"] == "error"
    assert "lost" in ended["message"]
