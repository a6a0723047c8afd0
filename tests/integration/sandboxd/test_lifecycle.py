"""A sandbox's life on the control plane: create, find, inspect, share, extend, expire and kill.

Everything goes through the unmodified e2b SDK, pointed at sandboxd by ``E2B_API_KEY``,
``E2B_API_URL`` and ``E2B_SANDBOX_URL``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from e2b import (
    AuthenticationException,
    NotFoundException,
    RateLimitException,
    SandboxException,
    SandboxNotRunningException,
    SandboxQuery,
)
from e2b_code_interpreter import Sandbox

from tests.procs import SandboxHostProcess, sandbox_host, wait_for


def _listed_ids(query: SandboxQuery) -> list[str]:
    """Every sandbox id the SDK's paginator yields for ``query``, page after page."""
    paginator = Sandbox.list(query=query)
    ids: list[str] = []
    while paginator.has_next:
        ids += [info.sandbox_id for info in paginator.next_items()]
    return ids


@pytest.fixture
def tag() -> str:
    """A metadata value no other test uses: the session's sandboxd is shared."""
    return uuid.uuid4().hex


@pytest.fixture
def two_sandboxes(sdk_env: SandboxHostProcess, tag: str) -> Iterator[tuple[Sandbox, Sandbox]]:
    first = Sandbox.create(timeout=120, metadata={"suite": tag, "n": "1"})
    try:
        second = Sandbox.create(timeout=120, metadata={"suite": tag, "n": "2"})
        try:
            yield first, second
        finally:
            second.kill()
    finally:
        first.kill()


def test_create_records_timeout_metadata_and_template(sdk_env: SandboxHostProcess, tag: str) -> None:
    sandbox = Sandbox.create(timeout=120, metadata={"suite": tag, "owner": "a b&c=d"})
    try:
        info = sandbox.get_info()
        assert info.sandbox_id == sandbox.sandbox_id
        assert info.template_id == "code-interpreter-v1"
        assert info.metadata == {"suite": tag, "owner": "a b&c=d"}
        assert info.state.value == "running"
        lifetime = info.end_at - info.started_at
        assert timedelta(seconds=115) <= lifetime <= timedelta(seconds=125)
        # get_info by id, from the class, answers the same sandbox
        assert Sandbox.get_info(sandbox.sandbox_id).metadata == info.metadata
    finally:
        sandbox.kill()


def test_list_filters_by_metadata(two_sandboxes: tuple[Sandbox, Sandbox], tag: str) -> None:
    first, second = two_sandboxes
    assert sorted(_listed_ids(SandboxQuery(metadata={"suite": tag}))) == sorted(
        [first.sandbox_id, second.sandbox_id]
    )
    assert _listed_ids(SandboxQuery(metadata={"suite": tag, "n": "2"})) == [second.sandbox_id]
    assert _listed_ids(SandboxQuery(metadata={"suite": tag, "n": "3"})) == []


def test_list_pages_through_every_match(two_sandboxes: tuple[Sandbox, Sandbox], tag: str) -> None:
    first, second = two_sandboxes
    paginator = Sandbox.list(query=SandboxQuery(metadata={"suite": tag}), limit=1)
    pages = []
    while paginator.has_next:
        pages.append([info.sandbox_id for info in paginator.next_items()])
    assert sorted(i for page in pages for i in page) == sorted([first.sandbox_id, second.sandbox_id])
    assert [len(page) for page in pages] == [1, 1]


def test_list_matches_metadata_with_reserved_characters(sdk_env: SandboxHostProcess, tag: str) -> None:
    value = "a b&c=d%e+f/g"
    sandbox = Sandbox.create(timeout=60, metadata={"suite": tag, "odd key&=": value})
    try:
        assert _listed_ids(SandboxQuery(metadata={"suite": tag, "odd key&=": value})) == [sandbox.sandbox_id]
        assert _listed_ids(SandboxQuery(metadata={"suite": tag, "odd key&=": "a b"})) == []
    finally:
        sandbox.kill()


def test_a_second_client_connects_by_id_and_sees_the_same_files(sandbox: Sandbox) -> None:
    sandbox.files.write("/home/user/shared.txt", "written by the first client")
    other = Sandbox.connect(sandbox.sandbox_id)
    assert other.sandbox_id == sandbox.sandbox_id
    assert other.files.read("/home/user/shared.txt") == "written by the first client"
    other.commands.run("echo answered > /home/user/reply.txt")
    assert sandbox.files.read("/home/user/reply.txt") == "answered\n"


def test_set_timeout_moves_the_end(sandbox: Sandbox) -> None:
    before = sandbox.get_info().end_at
    sandbox.set_timeout(900)
    later = sandbox.get_info().end_at
    assert later - before >= timedelta(seconds=550)  # created with 300 s, now 900 s from now
    sandbox.set_timeout(60)
    sooner = sandbox.get_info().end_at
    assert sooner < before


def test_a_sandbox_past_its_timeout_is_gone(sdk_env: SandboxHostProcess) -> None:
    sandbox = Sandbox.create(timeout=2)
    sandbox.files.write("/home/user/alive.txt", "yes")

    def gone() -> bool:
        try:
            Sandbox.get_info(sandbox.sandbox_id)
        except NotFoundException:
            return True
        return False

    wait_for(gone, 30, "the sandbox to expire")
    with pytest.raises(SandboxNotRunningException):
        sandbox.commands.run("echo still here")
    assert Sandbox.kill(sandbox.sandbox_id) is False
    assert sandbox.sandbox_id not in [i.sandbox_id for i in Sandbox.list().next_items()]


def test_kill_answers_true_then_false(sdk_env: SandboxHostProcess) -> None:
    sandbox = Sandbox.create(timeout=60)
    assert Sandbox.kill(sandbox.sandbox_id) is True
    assert Sandbox.kill(sandbox.sandbox_id) is False
    assert sandbox.kill() is False
    with pytest.raises(NotFoundException):
        sandbox.get_info()


def test_an_unknown_template_is_a_clear_error(sdk_env: SandboxHostProcess) -> None:
    with pytest.raises(SandboxException) as raised:
        Sandbox.create(template="no-such-template", timeout=60)
    assert getattr(raised.value, "status_code", None) == 404
    assert "no-such-template" in str(raised.value)


def test_a_wrong_api_key_is_refused(sdk_env: SandboxHostProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("E2B_API_KEY", "e2b_" + "0" * 40)
    with pytest.raises(AuthenticationException):
        Sandbox.create(timeout=60)
    with pytest.raises(AuthenticationException):
        Sandbox.list().next_items()


def test_the_cap_on_live_sandboxes_answers_rate_limited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with sandbox_host(tmp_path, "--max-sandboxes", "1") as host:
        for name, value in host.env.items():
            monkeypatch.setenv(name, value)
        first = Sandbox.create(timeout=60)
        try:
            # retries=0: the SDK retries 429s itself (3 times, honouring Retry-After)
            with pytest.raises(RateLimitException):
                Sandbox.create(timeout=60, retries=0)
        finally:
            first.kill()
        # the slot is free again once the first sandbox is gone
        second = Sandbox.create(timeout=60, retries=0)
        assert second.commands.run("echo ok").stdout == "ok\n"
        second.kill()
