"""Fuzzed job ids: get_job_status, get_job_results and kill_job, on unknown, odd and real jobs."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from e2bq import E2BToolkit

from . import FUZZ
from .conftest import Jobs, check
from .strategies import anything, odd_numbers, unknown_ids, wrong_types

job_ids = st.one_of(unknown_ids, anything)


@settings(FUZZ, max_examples=40)
@given(
    job_id=job_ids,
    offset=st.one_of(st.just(0), odd_numbers, wrong_types),
    limit=st.one_of(st.just(5), odd_numbers, wrong_types),
)
def test_unknown_jobs(toolkit: E2BToolkit, job_id: Any, offset: Any, limit: Any) -> None:
    status = check(toolkit.get_job_status(job_id))
    assert status["status"] == "not_found", status
    assert check(toolkit.get_job_results(job_id, offset=offset, limit=limit))["status"] == "error"
    assert check(toolkit.kill_job(job_id))["status"] == "not_found"


@settings(FUZZ, max_examples=10)
@given(
    offset=st.one_of(st.just(0), odd_numbers, wrong_types),
    limit=st.one_of(st.just(5), odd_numbers, wrong_types),
)
def test_real_jobs(toolkit: E2BToolkit, jobs: Jobs, offset: Any, limit: Any) -> None:
    """A running job, killed twice; results asked of a job that is no map."""
    with jobs.ending():
        accepted = check(toolkit.run_command_background("sleep 30"))
        jobs.track(accepted)
        job_id = accepted["job_id"]
        check(toolkit.get_job_status(job_id))
        check(toolkit.get_job_results(job_id, offset=offset, limit=limit))
        check(toolkit.kill_job(job_id))
        check(toolkit.kill_job(job_id))


def test_a_custom_job_id_taken_twice(toolkit: E2BToolkit, jobs: Jobs) -> None:
    with jobs.ending():
        first = check(toolkit.run_command_background("sleep 30", job_id="fuzz-twice"))
        jobs.track(first)
        second = check(toolkit.run_python_code_background("1", job_id="fuzz-twice"))
        jobs.track(second)
        assert second["status"] == "error", second


@settings(FUZZ, max_examples=30)
@given(job_id=job_ids, timeout=st.one_of(st.none(), st.just(0), odd_numbers, wrong_types))
def test_waiting_for_unknown_jobs(toolkit: E2BToolkit, job_id: Any, timeout: Any) -> None:
    assert check(toolkit.wait_job(job_id, timeout=timeout))["status"] == "error"


@settings(FUZZ, max_examples=30)
@given(
    callback_url=st.one_of(
        st.none(),
        anything,
        st.sampled_from(["ftp://host/x", "http://", "javascript:alert(1)", "http://127.0.0.1:9/hook"]),
    ),
    on_done=st.one_of(st.none(), anything, st.just("fuzz.tasks.done")),
    on_done_queue=st.one_of(st.none(), anything),
)
def test_what_to_call_when_a_job_ends(
    toolkit: E2BToolkit, jobs: Jobs, callback_url: Any, on_done: Any, on_done_queue: Any
) -> None:
    ends = {"callback_url": callback_url, "on_done": on_done, "on_done_queue": on_done_queue}
    with jobs.ending():
        jobs.track(check(toolkit.run_command_background("true", **ends)))
        jobs.track(check(toolkit.run_python_code_background("1", **ends)))
        jobs.track(check(toolkit.run_command("true", background=True, **ends)))
