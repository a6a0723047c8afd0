"""Fuzzed code execution: run_python_code, its background form, fan-out and maps."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from e2bq import E2BToolkit

from . import FUZZ
from .conftest import Jobs, check
from .strategies import anything, codes, odd_numbers, sandbox_ids, wrong_types

timeouts = st.one_of(st.none(), st.sampled_from([1, 5, 2.5]), odd_numbers, wrong_types)


@settings(FUZZ, max_examples=30)
@given(data=st.data())
def test_run_python_code(toolkit: E2BToolkit, sandbox_id: str, data: st.DataObject) -> None:
    code = data.draw(st.one_of(codes, anything), label="code")
    where = data.draw(sandbox_ids(sandbox_id), label="sandbox_id")
    timeout = data.draw(timeouts, label="timeout")
    check(toolkit.run_python_code(code, sandbox_id=where, timeout=timeout))


@settings(FUZZ, max_examples=20)
@given(data=st.data())
def test_run_python_code_background(
    toolkit: E2BToolkit, sandbox_id: str, jobs: Jobs, data: st.DataObject
) -> None:
    code = data.draw(st.one_of(codes, anything), label="code")
    where = data.draw(sandbox_ids(sandbox_id), label="sandbox_id")
    job_id = data.draw(st.one_of(st.none(), anything), label="job_id")
    with jobs.ending():
        accepted = check(toolkit.run_python_code_background(code, sandbox_id=where, job_id=job_id))
        jobs.track(accepted)
        if accepted["status"] == "accepted":
            check(toolkit.get_job_status(accepted["job_id"]))


@settings(FUZZ, max_examples=10)
@given(code=st.one_of(codes, anything), timeout_each=timeouts)
def test_run_in_all_sandboxes(toolkit: E2BToolkit, sandbox_id: str, code: Any, timeout_each: Any) -> None:
    check(toolkit.run_in_all_sandboxes(code, timeout_each=timeout_each))


@settings(FUZZ, max_examples=15)
@given(data=st.data())
def test_map_python_code(toolkit: E2BToolkit, jobs: Jobs, data: st.DataObject) -> None:
    items = data.draw(st.one_of(st.lists(codes, max_size=3), anything), label="codes")
    pool_size = data.draw(st.one_of(st.sampled_from([1, 2]), odd_numbers, wrong_types), label="pool_size")
    timeout_each = data.draw(timeouts, label="timeout_each")
    retries = data.draw(st.one_of(st.sampled_from([0, 1]), odd_numbers, wrong_types), label="retries")
    job_id = data.draw(st.one_of(st.none(), anything), label="job_id")
    with jobs.ending():
        accepted = check(
            toolkit.map_python_code(
                items, pool_size=pool_size, timeout_each=timeout_each, retries=retries, job_id=job_id
            )
        )
        jobs.track(accepted)
        if accepted["status"] == "accepted":
            offset = data.draw(st.one_of(st.just(0), odd_numbers, wrong_types), label="offset")
            limit = data.draw(st.one_of(st.just(10), odd_numbers, wrong_types), label="limit")
            check(toolkit.get_job_results(accepted["job_id"], offset=offset, limit=limit))
