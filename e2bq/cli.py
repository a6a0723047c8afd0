"""The ``e2bq`` command."""

from __future__ import annotations

import os
from pathlib import Path

import click

from .sandboxd.settings import DEFAULT_RUNTIME, HostSettings


@click.group()
def cli() -> None:
    """e2bq: a distributed job queue for code sandboxes."""


@cli.group(invoke_without_command=True)
@click.option("--host", help="Address to listen on [E2BQ_SANDBOXD_HOST, 127.0.0.1].")
@click.option("--port", type=int, help="Port to listen on [E2BQ_SANDBOXD_PORT, 49982].")
@click.option("--api-key", help="Key clients must send [E2BQ_SANDBOXD_API_KEY or E2B_API_KEY].")
@click.option("--max-sandboxes", type=int, help="Live sandboxes at most [E2BQ_SANDBOXD_MAX_SANDBOXES].")
@click.option("--state-dir", type=click.Path(path_type=Path), help="Where sandboxes live.")
@click.option("--runtime", type=click.Path(path_type=Path), help="The sandbox runtime folder.")
@click.option("--log-level", default="info", show_default=True)
@click.pass_context
def sandboxd(
    ctx: click.Context,
    host: str | None,
    port: int | None,
    api_key: str | None,
    max_sandboxes: int | None,
    state_dir: Path | None,
    runtime: Path | None,
    log_level: str,
) -> None:
    """Run the local sandbox host (E2B's wire protocol, one bubblewrap jail per sandbox)."""
    if ctx.invoked_subcommand is not None:
        return
    from .sandboxd.server import serve

    settings = HostSettings.from_env(
        host=host, port=port, api_key=api_key, max_sandboxes=max_sandboxes,
        state_dir=state_dir, runtime=runtime,
    )
    click.echo(f"E2B_API_URL={settings.url} E2B_SANDBOX_URL={settings.url}", err=True)
    if not (api_key or os.environ.get("E2BQ_SANDBOXD_API_KEY") or os.environ.get("E2B_API_KEY")):
        click.echo(f"E2B_API_KEY={settings.api_key}", err=True)
    serve(settings, log_level=log_level)


@sandboxd.command("install-runtime")
@click.option("--target", type=click.Path(path_type=Path), default=DEFAULT_RUNTIME, show_default=True)
@click.option("--upgrade", is_flag=True, help="Build it anew.")
def install_runtime_command(target: Path, upgrade: bool) -> None:
    """Build the Python environment sandboxes run (needs python3-venv)."""
    from .sandboxd.runtime import install_runtime

    install_runtime(target, upgrade=upgrade)
    click.echo(f"sandbox runtime ready at {target}")


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="e2bq")
