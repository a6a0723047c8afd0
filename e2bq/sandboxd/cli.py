"""sandboxd's own command: ``e2bq sandboxd`` and ``python -m e2bq.sandboxd`` are this group.

It lives beside sandboxd rather than in ``e2bq/cli.py`` so that sandboxd starts without importing
the rest of e2bq's command line (which adds this group to its own). The server, the host checks and
the runtime builder are imported only by the command that needs them.
"""

from __future__ import annotations

from pathlib import Path

import click

from .settings import DEFAULT_RUNTIME, HostSettings


@click.group(invoke_without_command=True)
@click.option("--host", help="Address to listen on [E2BQ_SANDBOXD_HOST, 127.0.0.1].")
@click.option("--port", type=int, help="Port to listen on [E2BQ_SANDBOXD_PORT, 49982].")
@click.option("--api-key", help="Key clients must send [E2BQ_SANDBOXD_API_KEY or E2B_API_KEY].")
@click.option(
    "--max-sandboxes",
    type=click.IntRange(min=1),
    help="Live sandboxes at most [E2BQ_SANDBOXD_MAX_SANDBOXES].",
)
@click.option(
    "--max-paused",
    type=click.IntRange(min=0),
    help="Sandboxes paused with their memory at most; past it the oldest is moved to disk "
    "[E2BQ_SANDBOXD_MAX_PAUSED, 20].",
)
@click.option(
    "--warm-pool",
    type=click.IntRange(min=0),
    help="Sandboxes kept launched ahead of creates [E2BQ_SANDBOXD_WARM_POOL, 0].",
)
@click.option(
    "--warm-pool-max",
    type=click.IntRange(min=0),
    help="Let the warm pool grow past --warm-pool to the largest burst of creates of the last "
    "5 minutes, up to this [E2BQ_SANDBOXD_WARM_POOL_MAX, 0: a fixed pool].",
)
@click.option("--state-dir", type=click.Path(path_type=Path), help="Where sandboxes live.")
@click.option("--runtime", type=click.Path(path_type=Path), help="The sandbox runtime folder.")
@click.option("--memory-mb", type=int, help="Memory per sandbox [E2BQ_SANDBOX_MEMORY_MB, 1024].")
@click.option("--pids", type=int, help="Processes per sandbox [E2BQ_SANDBOX_PIDS, 256].")
@click.option("--cpu", type=float, help="CPU share per sandbox, in cores [E2BQ_SANDBOX_CPU, 1.0].")
@click.option("--disk-mb", type=int, help="Writable space per sandbox [E2BQ_SANDBOX_DISK_MB, 2048].")
@click.option("--open-files", type=int, help="Open files per process [E2BQ_SANDBOX_OPEN_FILES, 1024].")
@click.option("--output-bytes", type=int, help="Output kept per stream of a run [E2BQ_SANDBOX_OUTPUT_BYTES].")
@click.option(
    "--local", is_flag=True, help="Local mode: without a key, make one; listen on loopback only."
)
@click.option(
    "--build-templates",
    is_flag=True,
    help="First build the shipped templates sandboxes run on by default (code-interpreter-v1, base) "
    "that are not built yet: minutes, once [E2BQ_SANDBOXD_BUILD_TEMPLATES].",
)
@click.option("--log-level", default="info", show_default=True)
@click.pass_context
def sandboxd(
    ctx: click.Context,
    host: str | None,
    port: int | None,
    api_key: str | None,
    max_sandboxes: int | None,
    max_paused: int | None,
    warm_pool: int | None,
    warm_pool_max: int | None,
    state_dir: Path | None,
    runtime: Path | None,
    memory_mb: int | None,
    pids: int | None,
    cpu: float | None,
    disk_mb: int | None,
    open_files: int | None,
    output_bytes: int | None,
    local: bool,
    build_templates: bool,
    log_level: str,
) -> None:
    """Run the local sandbox host (E2B's wire protocol, one bubblewrap jail per sandbox).

    It refuses to start without an API key unless in --local mode, where it makes one, prints
    it, and listens on 127.0.0.1 only.
    """
    if ctx.invoked_subcommand is not None:
        return
    from .http.server import serve

    settings = HostSettings.from_env(
        host=host,
        port=port,
        api_key=api_key,
        max_sandboxes=max_sandboxes,
        max_paused=max_paused,
        warm_pool=warm_pool,
        warm_pool_max=warm_pool_max,
        state_dir=state_dir,
        runtime=runtime,
        build_templates=build_templates or None,  # not given: E2BQ_SANDBOXD_BUILD_TEMPLATES
        limits={
            name: value
            for name, value in {
                "memory_mb": memory_mb, "pids": pids, "cpu": cpu, "disk_mb": disk_mb,
                "open_files": open_files, "output_bytes": output_bytes,
            }.items()
            if value is not None
        },
    )
    if settings.key_generated and not local:
        raise click.UsageError(
            "sandboxd needs an API key: --api-key or E2BQ_SANDBOXD_API_KEY (e2b_ + 40 hex digits); "
            "or --local to make one for this machine only"
        )
    if settings.key_generated and settings.host not in ("127.0.0.1", "localhost", "::1"):
        raise click.UsageError(
            "--local without an API key listens on loopback only: drop --host (and E2BQ_SANDBOXD_HOST)"
        )
    if settings.build_templates:
        from .doctor import SHIPPED_DEFAULTS
        from .templates.cli import build_missing

        build_missing(SHIPPED_DEFAULTS, settings)
    _require_host(settings)
    click.echo(
        f"E2B_API_URL={settings.url} E2B_SANDBOX_URL={settings.url} E2B_VOLUME_API_URL={settings.url}",
        err=True,
    )
    if settings.key_generated:
        click.echo(f"E2B_API_KEY={settings.api_key}", err=True)
    serve(settings, log_level=log_level)


def _require_host(settings: HostSettings) -> None:
    """Exit with doctor's lines for what is missing, before any sandbox is started; warn of
    what is missing but not needed to run."""
    from .doctor import check_templates, examine

    missing = [finding for finding in examine(settings.runtime) if not finding.ok]
    if missing:
        for finding in missing:
            click.echo(finding.line(), err=True)
        raise click.ClickException("this host lacks what sandboxd needs (see above; `e2bq doctor` checks it)")
    templates = check_templates(settings.templates_dir, host_root=settings.host_root)
    if not templates.ok:
        click.echo(templates.line(), err=True)


@sandboxd.command("install-runtime")
@click.option(
    "--target", type=click.Path(path_type=Path), default=DEFAULT_RUNTIME, show_default=True
)
@click.option("--upgrade", is_flag=True, help="Build it anew.")
def install_runtime_command(target: Path, upgrade: bool) -> None:
    """Build the Python environment sandboxes run (needs python3-venv)."""
    from .runtime import install_runtime

    install_runtime(target, upgrade=upgrade)
    click.echo(f"sandbox runtime ready at {target}")


def main(argv: list[str] | None = None) -> None:
    """``python -m e2bq.sandboxd``: the same command as ``e2bq sandboxd``, under the same name."""
    sandboxd.main(args=argv, prog_name="e2bq sandboxd")
