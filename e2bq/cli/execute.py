"""``e2bq run`` (Python code, as a notebook cell) and ``e2bq exec`` (a shell command)."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import IO, Any

import click

from .console import failed, note, print_json, size
from .session import open_toolkit, sandbox_for

_IMAGES = ("png", "jpeg", "svg", "pdf")
_SANDBOX = click.option(
    "--sandbox", "sandbox_id", metavar="ID", help="Run in this sandbox [the default one]."
)


@click.command()
@_SANDBOX
@click.argument("code", required=False)
@click.option("-f", "--file", "source", type=click.File("r"), help="Read the code from FILE (- for stdin).")
@click.option("--timeout", type=click.IntRange(min=1), help="Seconds the code may run [300].")
@click.option("--json", "as_json", is_flag=True, help="The toolkit's run_python_code result as JSON.")
def run(
    sandbox_id: str | None, code: str | None, source: IO[str] | None, timeout: int | None, as_json: bool
) -> None:
    """Run Python CODE (or -f FILE) in a sandbox, whose state persists between runs; print its
    stdout, stderr and results as a notebook cell would. Code that raises: its traceback on stderr,
    exit status 1."""
    if (code is None) == (source is None):
        raise click.UsageError("give the code as CODE or with -f FILE (- for stdin), one of them")
    text = code if code is not None else source.read() if source is not None else ""
    toolkit = open_toolkit()
    result: Mapping[str, Any] = toolkit.run_python_code(text, sandbox_for(toolkit, sandbox_id), timeout)
    if as_json:
        print_json(result)
    error = result.get("error")
    if result["status"] != "success" and not isinstance(error, dict):
        failed(result, False)
    if not as_json:
        _print_cell(result)
    if isinstance(error, dict):
        if not as_json:
            click.echo(error.get("traceback") or f"{error.get('name')}: {error.get('value')}", err=True)
        raise SystemExit(1)


def _print_cell(result: Mapping[str, Any]) -> None:
    logs = result.get("logs") or {}
    for chunk in logs.get("stdout", []):
        click.echo(chunk, nl=False)
    for chunk in logs.get("stderr", []):
        click.echo(chunk, nl=False, err=True)
    for item in result.get("results", []):
        click.echo(_shown(item))
    error = result.get("error")
    note(result, besides=f"{error.get('name')}: {error.get('value')}" if isinstance(error, dict) else "")


def _shown(item: Mapping[str, Any]) -> str:
    """A result as text: its text, or what kind of image (or other output) it is."""
    images = [kind for kind in _IMAGES if item.get(kind)]
    if images:
        kind = images[0]
        return f"[image/{kind} returned, {size(len(item[kind]) * 3 / 4)}]"
    if item.get("text") is not None:
        return str(item["text"])
    kinds = sorted(name for name in item if name not in ("is_main_result", "extra"))
    return f"[{', '.join(kinds) or 'empty'} result returned]"


@click.command("exec", context_settings={"ignore_unknown_options": True})
@_SANDBOX
@click.option("--background", is_flag=True, help="Run it as a background job; print its job id.")
@click.option("--json", "as_json", is_flag=True, help="The toolkit's run_command result as JSON.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_command(sandbox_id: str | None, background: bool, as_json: bool, command: tuple[str, ...]) -> None:
    """Run a shell command in a sandbox (after --, its words joined as a shell would quote them);
    print its output and exit with its exit code. With --background: print the job's id (follow
    it with `e2bq job ID --follow`)."""
    toolkit = open_toolkit()
    line = shlex.join(command)
    sandbox = sandbox_for(toolkit, sandbox_id)
    if background:
        accepted: Mapping[str, Any] = toolkit.run_command_background(line, sandbox)
        if accepted["status"] != "accepted":
            failed(accepted, as_json)
        if as_json:
            print_json(accepted)
        else:
            click.echo(accepted["job_id"])
            note(accepted)
        return
    result: Mapping[str, Any] = toolkit.run_command(line, sandbox)
    code = result.get("exit_code")
    if not isinstance(code, int):
        failed(result, as_json)
    if as_json:
        print_json(result)
    else:
        click.echo(result.get("stdout", ""), nl=False)
        click.echo(result.get("stderr", ""), nl=False, err=True)
        note(result, besides=f"the command exited with code {code}")
    raise SystemExit(code)
