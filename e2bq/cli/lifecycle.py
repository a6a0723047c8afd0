"""``e2bq pause``, ``resume``, ``fork`` and ``snapshots``: a sandbox's pauses, copies and snapshots."""

from __future__ import annotations

import click
from rich.table import Table

from .console import failed, print_json, print_table, until
from .session import open_toolkit

_JSON = "The toolkit's result as JSON."


@click.command()
@click.argument("sandbox_id")
@click.option(
    "--no-memory", is_flag=True, help="Keep only its files: its processes end (a filesystem-only pause)."
)
@click.option("--json", "as_json", is_flag=True, help=_JSON)
def pause(sandbox_id: str, no_memory: bool, as_json: bool) -> None:
    """Pause a sandbox: it uses no CPU and its lifetime stops counting until it is resumed (any
    call on it, or `e2bq resume`, resumes it)."""
    result = open_toolkit().pause_sandbox(sandbox_id, keep_memory=not no_memory)
    if result["status"] != "success":
        failed(result, as_json)
    if as_json:
        print_json(result)
        return
    kept = "its memory kept" if result["keep_memory"] else "its files kept"
    click.echo(f"paused {sandbox_id} ({kept})" if result["paused"] else f"{sandbox_id} was paused already")


@click.command()
@click.argument("sandbox_id")
@click.option(
    "--timeout", type=int, default=None, help="Seconds it lives from now (default: what it had left)."
)
@click.option("--json", "as_json", is_flag=True, help=_JSON)
def resume(sandbox_id: str, timeout: int | None, as_json: bool) -> None:
    """Resume a paused sandbox."""
    result = open_toolkit().resume_sandbox(sandbox_id, timeout=timeout)
    if result["status"] != "success":
        failed(result, as_json)
    if as_json:
        print_json(result)
        return
    how = "resumed" if result["resumed"] else "was running already"
    click.echo(f"{sandbox_id} {how}; it ends {until(result['expires_at'])}")


@click.command()
@click.argument("sandbox_id")
@click.option("-n", "--count", type=int, default=1, show_default=True, help="Copies to make (1 to 100).")
@click.option("--timeout", type=int, default=None, help="Seconds each copy lives (default: the manager's).")
@click.option("--json", "as_json", is_flag=True, help=_JSON)
def fork(sandbox_id: str, count: int, timeout: int | None, as_json: bool) -> None:
    """Copy a sandbox: each copy is a new managed sandbox with its files and fresh processes.
    Prints one line per copy (its id, or why it failed); exits 1 if any failed."""
    result = open_toolkit().fork_sandbox(sandbox_id, count=count, timeout=timeout)
    if result["status"] != "success":
        failed(result, as_json)
    if as_json:
        print_json(result)
    else:
        for outcome in result["forks"]:
            if outcome["status"] == "success":
                click.echo(outcome["sandbox_id"])
            else:
                click.echo(f"a fork failed: {outcome.get('message', '')}", err=True)
    if result["count"] < len(result["forks"]):
        raise SystemExit(1)


@click.command()
@click.option("--sandbox", "sandbox_id", default=None, help="Only the snapshots taken of this sandbox.")
@click.option("--json", "as_json", is_flag=True, help=_JSON)
def snapshots(sandbox_id: str | None, as_json: bool) -> None:
    """The snapshots the provider keeps: id, node, the sandbox taken of, names. Create a sandbox
    from one with the toolkit's create_sandbox(template=ID)."""
    listed = open_toolkit().list_snapshots(sandbox_id)
    if listed["status"] != "success":
        failed(listed, as_json)
    if as_json:
        print_json(listed)
        return
    if not listed["snapshots"]:
        click.echo("no snapshots")
        return
    table = Table(box=None, pad_edge=False)
    for column in ("snapshot", "node", "of sandbox", "names"):
        table.add_column(column, no_wrap=column != "names")
    for snapshot in listed["snapshots"]:
        names = " ".join(snapshot["names"])
        table.add_row(
            snapshot["snapshot_id"], snapshot["node"] or "cloud", snapshot.get("sandbox_id", ""), names
        )
    print_table(table)
