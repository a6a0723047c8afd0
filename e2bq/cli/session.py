"""The toolkit a command uses, made from the environment, and the sandbox a command runs in."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ..errors import E2BQError
from .console import fail

if TYPE_CHECKING:
    from ..client.toolkit import E2BToolkit


def open_toolkit() -> E2BToolkit:
    """A toolkit on the environment's settings (``E2BQ_REDIS_URL``, ``E2BQ_NAMESPACE``, ...); it
    makes no sandbox: the commands that need one ask :func:`sandbox_for`."""
    from ..client.manager import SandboxManager
    from ..client.toolkit import E2BToolkit

    try:
        return E2BToolkit(SandboxManager(), auto_create_default=False)
    except E2BQError as exc:
        fail(str(exc))


def sandbox_for(toolkit: E2BToolkit, sandbox_id: str | None) -> str | None:
    """The sandbox to run in: ``sandbox_id``, else None for the namespace's default sandbox, made
    first (and said on stderr) when there is none, as ``auto_create_default`` would."""
    if sandbox_id is not None:
        return sandbox_id
    listed = toolkit.list_managed_sandboxes()
    if listed["status"] != "success":
        fail(listed.get("message") or "cannot list the namespace's sandboxes")
    if listed.get("default_sandbox_id"):
        return None
    namespace = toolkit.manager.namespace
    click.echo(f"namespace {namespace!r} has no default sandbox: creating one as its default", err=True)
    made = toolkit.create_sandbox(set_as_default=True)
    if made["status"] != "success":
        fail(made.get("message") or "the default sandbox could not be created")
    click.echo(f"created sandbox {made['sandbox_id']} as the default of {namespace!r}", err=True)
    return None
