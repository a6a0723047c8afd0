"""``e2bq jobs`` (the listing), ``e2bq job ID [--follow]`` and ``e2bq kill JOB``."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

import click
from rich.table import Table

from ..errors import E2BQError
from .console import OK_STATUSES, ago, fail, failed, print_json, print_table, span
from .follow import CANCELLED_EXIT, NOT_FOUND_EXIT, exit_status, follow_output
from .session import open_toolkit

if TYPE_CHECKING:
    from ..client.toolkit import E2BToolkit
    from ..types import JobFilter, JobSummary


def show_jobs(state: str | None, limit: int, as_json: bool) -> None:
    """Print the namespace's newest ``limit`` jobs (only those in ``state`` when given)."""
    toolkit = open_toolkit()
    namespace = toolkit.manager.namespace
    result = toolkit.list_jobs(cast("JobFilter | None", state), limit)  # the toolkit checks it
    if result["status"] != "success":
        failed(result, as_json)
    listed = result["jobs"]
    if as_json:
        print_json(result)
        return
    if not listed:
        click.echo(f"no {state + ' ' if state else ''}jobs in namespace {namespace!r}")
        return
    table = Table(box=None, pad_edge=False)
    for column in ("job", "status", "kind", "sandbox", "created", "took", "message"):
        table.add_column(column, no_wrap=column in ("job", "sandbox"), overflow="ellipsis")
    for summary in listed:
        table.add_row(
            summary["job_id"],
            _status(summary),
            summary["kind"],
            summary["sandbox_id"],
            ago(summary["created_at"]),
            _took(summary),
            summary["message"][:80],
        )
    print_table(table)


def _status(job: Mapping[str, Any]) -> str:
    return f"running ({job['state']})" if job["status"] == "running" else str(job["status"])


def _took(job: JobSummary | Mapping[str, Any]) -> str:
    started, finished = job.get("started_at"), job.get("finished_at")
    if started is None:
        return ""
    return span((finished or time.time()) - started) + ("" if finished else " so far")


@click.command()
@click.argument("job_id", metavar="ID")
@click.option("--follow", is_flag=True, help="Print its output as it comes, then exit with its exit status.")
@click.option("--json", "as_json", is_flag=True, help="The job's status as JSON (with --follow: at its end).")
def job(job_id: str, follow: bool, as_json: bool) -> None:
    """A background job's status. With --follow, its stdout and stderr live until it ends; then
    exits with the job's status: a command's exit code, 1 for code that raised or an error,
    130 when cancelled, 2 when there is no such job. Ctrl-C stops following, not the job.
    """
    toolkit = open_toolkit()
    try:
        record: Mapping[str, Any]
        if follow and not as_json:
            record = _follow(toolkit, job_id)
        else:
            record = toolkit.wait_job(job_id) if follow else toolkit.get_job_status(job_id)
    except E2BQError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        click.echo(f"\nstopped following; job {job_id} goes on (`e2bq kill {job_id}` stops it)", err=True)
        raise SystemExit(CANCELLED_EXIT) from None
    if as_json:
        print_json(record)
    elif record["status"] == "not_found":
        fail(str(record.get("message")), NOT_FOUND_EXIT)
    elif follow:
        _say_end(record)
    else:
        _show_job(record)
    if record["status"] == "not_found" or follow:
        raise SystemExit(exit_status(record))


def _follow(toolkit: E2BToolkit, job_id: str) -> Mapping[str, Any]:
    """Print the job's output until it ends; its final status (a map, which has no output, is
    waited for)."""
    why = follow_output(toolkit, job_id)
    if why is None:
        return toolkit.get_job_status(job_id)
    record = toolkit.get_job_status(job_id)
    if record["status"] == "not_found":
        return record
    click.echo(why, err=True)
    return toolkit.wait_job(job_id)


def _say_end(record: Mapping[str, Any]) -> None:
    """One line on stderr after a followed job's output: how it ended."""
    line = f"job {record['job_id']} {record['status']}"
    if record.get("message"):
        line += f": {record['message']}"
    click.echo(line, err=True)


def _show_job(record: Mapping[str, Any]) -> None:
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    result = record.get("result")
    rows = [
        ("job", record["job_id"]),
        ("status", _status(record)),
        ("kind", record.get("kind", "")),
        ("sandbox", record.get("sandbox_id", "")),
        ("node", record.get("node") or ""),
        ("created", ago(record.get("created_at"))),
        ("took", _took(record)),
        ("exit code", str(result["exit_code"]) if isinstance(result, dict) and "exit_code" in result else ""),
        (
            "progress",
            f"{record['done']} done, {record['failed']} failed of {record['total']}"
            if "total" in record
            else "",
        ),
        ("message", record.get("message") or ""),
    ]
    for name, value in rows:
        if value:
            table.add_row(name, value)
    print_table(table)
    tail = record.get("output")
    if tail:
        click.echo(f"--- output (last {len(tail.encode())} bytes) ---")
        click.echo(tail, nl=not tail.endswith("\n"))


@click.command()
@click.argument("job_id", metavar="JOB")
@click.option("--json", "as_json", is_flag=True, help="The toolkit's kill_job result as JSON.")
def kill(job_id: str, as_json: bool) -> None:
    """Cancel a background job: a queued job never runs, a running one's work is stopped."""
    result: Mapping[str, Any] = open_toolkit().kill_job(job_id)
    if result["status"] not in OK_STATUSES:
        failed(result, as_json, NOT_FOUND_EXIT if result["status"] == "not_found" else 1)
    if as_json:
        print_json(result)
    else:
        click.echo(f"cancelled job {job_id}", err=True)
