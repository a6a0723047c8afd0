"""The keys of agno's E2BTools that e2bq's own results spell differently, added beside them so
that code written against that toolkit runs unchanged."""

from __future__ import annotations

from typing import cast, overload

from ..types import CommandResult, ErrorResult, JobRecord


@overload
def with_output(result: CommandResult) -> CommandResult: ...
@overload
def with_output(result: CommandResult | ErrorResult) -> CommandResult | ErrorResult: ...
def with_output(result: CommandResult | ErrorResult) -> CommandResult | ErrorResult:
    """A command's result with ``output: {stdout, stderr}`` beside its own keys."""
    if "exit_code" in result:
        result["output"] = {"stdout": result["stdout"], "stderr": result["stderr"]}
    return result


def job_with_output(record: JobRecord) -> JobRecord:
    """A command job's record whose result nests its output the same way."""
    result = record.get("result")
    if record["kind"] in ("command", "server") and result is not None and "exit_code" in result:
        with_output(cast("CommandResult", result))
    return record
