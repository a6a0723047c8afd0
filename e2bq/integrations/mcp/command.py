"""The ``e2bq mcp`` command: the toolkit as an MCP server.

The ``mcp`` package is an extra (``e2bq[mcp]``): it is imported only when the command runs, so
``e2bq`` itself works without it.
"""

from __future__ import annotations

import logging
import sys

import click

_EXTRA = ("mcp", "mcp_types")  # the packages `pip install 'e2bq[mcp]'` brings


@click.command("mcp")
@click.option(
    "--transport",
    type=click.Choice(["stdio", "http"]),
    default="stdio",
    show_default=True,
    help="stdio: one client that started this process; http: streamable HTTP for any number.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="HTTP: the address to listen on.")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=8765, show_default=True, help="HTTP: the port."
)
@click.option("--path", default="/mcp", show_default=True, help="HTTP: the endpoint's path.")
@click.option(
    "--token",
    envvar="E2BQ_MCP_TOKEN",
    help="HTTP: a secret every request must carry as 'Authorization: Bearer <token>', else 401 "
    "[E2BQ_MCP_TOKEN].",
)
@click.option(
    "--no-default-sandbox",
    is_flag=True,
    help="Create no default sandbox at start: calls then need a sandbox_id (or create_sandbox first).",
)
def mcp_command(
    transport: str, host: str, port: int, path: str, token: str | None, no_default_sandbox: bool
) -> None:
    """Serve the toolkit's tools over the Model Context Protocol, with background jobs as
    resources e2bq://jobs/{job_id} (subscribe to hear when one ends).

    It reaches the cluster as any client does: E2BQ_REDIS_URL, E2BQ_QUEUE, E2BQ_NAMESPACE. Logs go
    to stderr (over stdio, stdout is the protocol's).
    """
    try:
        from .run import run
    except ImportError as exc:
        if exc.name is not None and exc.name.split(".")[0] in _EXTRA:
            raise click.ClickException(
                "the MCP server needs the mcp package: pip install 'e2bq[mcp]'"
            ) from exc
        raise
    from ... import E2BQError
    from .transports import is_loopback

    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if not path.startswith("/"):
        raise click.BadParameter("the path must start with '/'", param_hint="--path")
    if transport == "http" and not token and not is_loopback(host):
        click.echo(
            f"warning: serving {host} without a token: anyone who reaches it can run code in your "
            "sandboxes; set --token (or E2BQ_MCP_TOKEN)",
            err=True,
        )
    try:
        run(
            transport=transport,
            host=host,
            port=port,
            path=path,
            token=token,
            default_sandbox=not no_default_sandbox,
        )
    except E2BQError as exc:
        raise click.ClickException(str(exc)) from exc
