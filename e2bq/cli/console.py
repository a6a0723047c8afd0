"""How the commands speak: results as JSON on stdout, tables and progress for people, errors on stderr.

stdout carries what a command produces (output, a table, or with ``--json`` the toolkit's dict and
nothing else); stderr carries everything about it (notes, progress, errors), so that
``e2bq ... --json | jq`` and ``e2bq exec -- cat f > copy`` stay clean.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from typing import NoReturn

import click
from rich.console import Console
from rich.table import Table

# The statuses of a toolkit result that are not a failure (kill_job may answer "cancelled").
OK_STATUSES = frozenset({"success", "accepted", "cancelled", "running", "done"})


def stdout_console() -> Console:
    """A console on stdout; wide when stdout is no terminal, so that piped tables keep whole ids."""
    stream = sys.stdout
    width = None if stream.isatty() else 200
    return Console(file=stream, highlight=False, width=width)


def stderr_console() -> Console:
    return Console(file=sys.stderr, highlight=False)


def print_table(table: Table) -> None:
    """A rich table on stdout, without the padding rich leaves at the ends of its lines."""
    console = stdout_console()
    with console.capture() as captured:
        console.print(table)
    for line in captured.get().splitlines():
        click.echo(line.rstrip())


def print_json(result: Mapping[str, object]) -> None:
    click.echo(json.dumps(result, indent=2))


def note(result: Mapping[str, object], *, besides: str = "") -> None:
    """Say on stderr what a call noted (e.g. its default sandbox was replaced), unless it only
    says ``besides`` (and details of it), which the command shows already."""
    message = str(result.get("message") or "")
    if message and not (besides and message.startswith(besides)):
        click.echo(message, err=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Stop the command: ``message`` on stderr, exit status ``code``."""
    click.echo(f"Error: {message}", err=True)
    raise SystemExit(code)


def failed(result: Mapping[str, object], as_json: bool, code: int = 1) -> NoReturn:
    """Stop on a toolkit result that failed: its dict on stdout with ``--json``, its message on stderr."""
    if as_json:
        print_json(result)
    fail(str(result.get("message") or f"the call failed ({result.get('status')})"), code)


def size(count: float) -> str:
    """Bytes in human units: ``1.5 MiB``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def span(seconds: float) -> str:
    """A duration in human terms: ``45 s``, ``4 min 10 s``, ``2 h 5 min``, ``3 d 4 h``."""
    whole = round(abs(seconds))
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


def until(at: float, now: float | None = None) -> str:
    """When ``at`` (epoch seconds) comes, from now: ``in 4 min 10 s`` or ``expired 3 s ago``."""
    left = at - (time.time() if now is None else now)
    return f"in {span(left)}" if left >= 0 else f"expired {span(left)} ago"


def ago(at: float | None, now: float | None = None) -> str:
    if at is None:
        return ""
    return f"{span((time.time() if now is None else now) - at)} ago"
