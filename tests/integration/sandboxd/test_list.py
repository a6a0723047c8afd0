"""``Sandbox.list`` as E2B's API serves it: pages (``limit``, ``next_token``), order, and filters
on state, metadata, template and start time, through the unmodified SDK (sync and async)."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Literal

import httpx
import pytest
from e2b import SandboxException, SandboxQuery, SandboxState
from e2b_code_interpreter import AsyncSandbox, Sandbox

from tests.procs import SandboxHostProcess

Order = Literal["asc", "desc"]


@pytest.fixture
def tag() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def three(sdk_env: SandboxHostProcess, tag: str) -> Iterator[list[Sandbox]]:
    """Three sandboxes started one after another, the last of the "base" template."""
    made: list[Sandbox] = []
    try:
        for n, template in enumerate(["code-interpreter-v1", "code-interpreter-v1", "base"]):
            made.append(Sandbox.create(template, timeout=120, metadata={"suite": tag, "n": str(n)}))
            time.sleep(0.01)  # distinct start times
        yield made
    finally:
        for sandbox in made:
            sandbox.kill()


def ids(query: SandboxQuery, *, limit: int | None = None, order: Order | None = None) -> list[list[str]]:
    """Every page the SDK's paginator yields, as lists of ids."""
    paginator = Sandbox.list(query=query, limit=limit, order=order)
    pages = []
    while paginator.has_next:
        pages.append([info.sandbox_id for info in paginator.next_items()])
    return pages


def test_pages_follow_the_limit_and_the_next_token(three: list[Sandbox], tag: str) -> None:
    first, second, third = (s.sandbox_id for s in three)
    query = SandboxQuery(metadata={"suite": tag})
    assert ids(query, limit=2) == [[third, second], [first]]  # newest first, as E2B
    assert ids(query, limit=2, order="asc") == [[first, second], [third]]
    assert ids(query, limit=1, order="asc") == [[first], [second], [third]]

    paginator = Sandbox.list(query=query, limit=1, order="asc")
    paginator.next_items()
    token = paginator.next_token
    assert token is not None
    three[1].kill()  # a page's cursor does not depend on the sandbox it names staying
    assert [s.sandbox_id for s in Sandbox.list(query=query, next_token=token, order="asc").next_items()] == [
        third
    ]


def test_state_filters_combine_running_and_paused(three: list[Sandbox], tag: str) -> None:
    first, second, third = (s.sandbox_id for s in three)
    three[1].pause()
    mine = {"suite": tag}
    assert ids(SandboxQuery(metadata=mine, state=[SandboxState.PAUSED])) == [[second]]
    assert ids(SandboxQuery(metadata=mine, state=[SandboxState.RUNNING]), order="asc") == [[first, third]]
    both = [SandboxState.RUNNING, SandboxState.PAUSED]
    assert ids(SandboxQuery(metadata=mine, state=both), order="asc") == [[first, second, third]]
    assert ids(SandboxQuery(metadata=mine), order="asc") == [[first, second, third]]
    info = Sandbox.list(query=SandboxQuery(metadata=mine, state=[SandboxState.PAUSED])).next_items()
    assert info[0].state == SandboxState.PAUSED and info[0].metadata["n"] == "1"


def test_template_and_started_after_filters(three: list[Sandbox], tag: str) -> None:
    first, second, third = (s.sandbox_id for s in three)
    metadata = {"suite": tag}
    assert ids(SandboxQuery(metadata=metadata, template="base")) == [[third]]
    assert ids(SandboxQuery(metadata=metadata, template="code-interpreter-v1"), order="asc") == [
        [first, second]
    ]
    since = Sandbox.get_info(second).started_at
    assert ids(SandboxQuery(metadata=metadata, started_after=since), order="asc") == [[second, third]]
    assert ids(SandboxQuery(metadata=metadata, started_after=datetime.now(UTC))) == [[]]
    # startedBefore: E2B's API takes it, the SDK does not send it
    url, key = os.environ["E2B_API_URL"], os.environ["E2B_API_KEY"]
    params = {"metadata": f"suite={tag}", "startedBefore": since.isoformat()}
    answer = httpx.get(f"{url}/v2/sandboxes", params=params, headers={"X-API-KEY": key})
    assert [s["sandboxID"] for s in answer.json()] == [second, first]


def test_bad_list_parameters_are_clear_errors(sdk_env: SandboxHostProcess) -> None:
    with pytest.raises(SandboxException, match="limit"):
        Sandbox.list(limit=1000).next_items()
    url, key = os.environ["E2B_API_URL"], os.environ["E2B_API_KEY"]
    for params in ({"nextToken": "not-a-token!"}, {"state": "sleeping"}, {"order": "up"}):
        answer = httpx.get(f"{url}/v2/sandboxes", params=params, headers={"X-API-KEY": key})
        assert answer.status_code == 400, params
        assert answer.json()["code"] == 400


def test_async_list_pages(three: list[Sandbox], tag: str) -> None:
    async def pages() -> list[list[str]]:
        paginator = AsyncSandbox.list(query=SandboxQuery(metadata={"suite": tag}), limit=2, order="asc")
        found = []
        while paginator.has_next:
            found.append([info.sandbox_id for info in await paginator.next_items()])
        return found

    assert asyncio.run(pages()) == [[s.sandbox_id for s in three[:2]], [three[2].sandbox_id]]
