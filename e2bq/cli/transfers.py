"""``e2bq upload`` and ``e2bq download``: a file into or out of a sandbox, with progress on stderr.

The toolkit moves a file in one call, so the display is a spinner with the elapsed time while it
runs (and the file's size, when known: an upload's), then one line with the size and the rate.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import click

from .console import fail, failed, note, print_json, size, stderr_console
from .session import open_toolkit, sandbox_for

_SANDBOX = click.option("--sandbox", "sandbox_id", metavar="ID", help="The sandbox [the default one].")
_JSON = click.option("--json", "as_json", is_flag=True, help="The toolkit's result as JSON.")


@click.command()
@click.argument("local", type=click.Path(dir_okay=False, path_type=str))
@_SANDBOX
@click.option("--to", "sandbox_path", metavar="PATH", help="Where in the sandbox [its name, in /home/user].")
@_JSON
def upload(local: str, sandbox_id: str | None, sandbox_path: str | None, as_json: bool) -> None:
    """Copy the local file LOCAL into a sandbox."""
    try:
        known = os.stat(local).st_size
    except OSError as exc:
        fail(f"cannot read {local}: {exc.strerror}")
    toolkit = open_toolkit()
    sandbox = sandbox_for(toolkit, sandbox_id)
    description = f"uploading {os.path.basename(local)} ({size(known)})"
    result = _with_progress(description, lambda: toolkit.upload_file(local, sandbox, sandbox_path), as_json)
    _report(
        result, "uploaded", f"{local} to {result.get('sandbox_id')}:{result.get('sandbox_path')}", as_json
    )


@click.command()
@click.argument("sandbox_path", metavar="PATH")
@_SANDBOX
@click.option("--to", "local", metavar="LOCAL", help="Where to write it [its name, in this folder].")
@_JSON
def download(sandbox_path: str, sandbox_id: str | None, local: str | None, as_json: bool) -> None:
    """Copy the file at PATH in a sandbox (relative paths: from /home/user) to this machine."""
    toolkit = open_toolkit()
    sandbox = sandbox_for(toolkit, sandbox_id)
    description = f"downloading {sandbox_path}"
    result = _with_progress(
        description, lambda: toolkit.download_file_from_sandbox(sandbox_path, sandbox, local), as_json
    )
    _report(
        result,
        "downloaded",
        f"{result.get('sandbox_id')}:{sandbox_path} to {result.get('local_path')}",
        as_json,
    )


def _with_progress(
    description: str, transfer: Callable[[], Mapping[str, Any]], as_json: bool
) -> Mapping[str, Any]:
    """Run ``transfer`` under a spinner on stderr: its result, with the ``seconds`` it took."""
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    started = time.monotonic()
    console = stderr_console()
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as progress:
        progress.add_task(description, total=None)
        result = transfer()
    if result["status"] != "success":
        failed(result, as_json)
    return {**result, "seconds": time.monotonic() - started}


def _report(result: Mapping[str, Any], verb: str, what: str, as_json: bool) -> None:
    """The transfer's result: as JSON (the toolkit's dict), or a line on stderr with its rate."""
    if as_json:
        print_json({name: value for name, value in result.items() if name != "seconds"})
        return
    seconds = max(float(result["seconds"]), 1e-6)
    count = int(result.get("size") or 0)
    click.echo(f"{verb} {what}: {size(count)} in {seconds:.2f} s ({size(count / seconds)}/s)", err=True)
    note(result)
