"""``e2bq sandboxes``: the namespace's managed sandboxes."""

from __future__ import annotations

import click
from rich.table import Table

from .console import failed, print_json, print_table, until
from .session import open_toolkit


@click.command()
@click.option("--json", "as_json", is_flag=True, help="The toolkit's list_managed_sandboxes result as JSON.")
def sandboxes(as_json: bool) -> None:
    """The sandboxes of this namespace (E2BQ_NAMESPACE): id, state, node, expiry, metadata; the
    default one is marked *."""
    listed = open_toolkit().list_managed_sandboxes()
    if listed["status"] != "success":
        failed(listed, as_json)
    if as_json:
        print_json(listed)
        return
    entries = listed["sandboxes"]
    if not entries:
        click.echo("no sandboxes in this namespace: `e2bq run` or `e2bq exec` makes a default one")
        return
    default = listed["default_sandbox_id"]
    table = Table(box=None, pad_edge=False)
    for column in ("", "sandbox", "state", "node", "expires", "metadata"):
        table.add_column(column, no_wrap=column in ("sandbox", "node"))
    for entry in sorted(entries, key=lambda entry: entry["created_at"]):
        metadata = " ".join(f"{name}={value}" for name, value in sorted(entry["metadata"].items()))
        table.add_row(
            "*" if entry["sandbox_id"] == default else "",
            entry["sandbox_id"],
            entry.get("state", ""),
            entry.get("node") or "cloud",
            until(entry["expires_at"]),
            metadata,
        )
    print_table(table)
