"""Fuzzed commands and servers: run_command (both forms), run_command_background, run_server,
get_public_url."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from e2bq import E2BToolkit

from . import FUZZ
from .conftest import Jobs, check
from .strategies import anything, commands, odd_numbers, sandbox_ids, wrong_types

ports = st.one_of(
    st.sampled_from([8000, 1, 65535]), odd_numbers, st.sampled_from([0, 65536, -80]), wrong_types
)


@settings(FUZZ, max_examples=30)
@given(data=st.data())
def test_run_command(toolkit: E2BToolkit, sandbox_id: str, jobs: Jobs, data: st.DataObject) -> None:
    command = data.draw(st.one_of(commands, anything), label="command")
    where = data.draw(sandbox_ids(sandbox_id), label="sandbox_id")
    background = data.draw(st.one_of(st.booleans(), anything), label="background")
    with jobs.ending():
        result = check(toolkit.run_command(command, sandbox_id=where, background=background))
        jobs.track(result)


@settings(FUZZ, max_examples=20)
@given(data=st.data())
def test_run_command_background(
    toolkit: E2BToolkit, sandbox_id: str, jobs: Jobs, data: st.DataObject
) -> None:
    command = data.draw(st.one_of(commands, anything), label="command")
    where = data.draw(sandbox_ids(sandbox_id), label="sandbox_id")
    job_id = data.draw(st.one_of(st.none(), anything), label="job_id")
    with jobs.ending():
        accepted = check(toolkit.run_command_background(command, sandbox_id=where, job_id=job_id))
        jobs.track(accepted)


@settings(FUZZ, max_examples=20)
@given(port=ports, where=st.one_of(st.none(), anything))
def test_get_public_url(toolkit: E2BToolkit, port: Any, where: Any) -> None:
    check(toolkit.get_public_url(port, sandbox_id=where))


@settings(FUZZ, max_examples=15)
@given(data=st.data())
def test_run_server(toolkit: E2BToolkit, sandbox_id: str, jobs: Jobs, data: st.DataObject) -> None:
    command = data.draw(
        st.one_of(st.just("python3 -m http.server 8123"), commands, anything), label="command"
    )
    port = data.draw(ports, label="port")
    where = data.draw(sandbox_ids(sandbox_id), label="sandbox_id")
    wait = data.draw(st.one_of(st.sampled_from([0, 0.5, 1]), odd_numbers, wrong_types), label="wait_seconds")
    with jobs.ending():
        result = check(toolkit.run_server(command, port, sandbox_id=where, wait_seconds=wait))
        jobs.track(result)
