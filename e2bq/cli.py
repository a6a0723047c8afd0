"""The ``e2bq`` command."""

from __future__ import annotations

import contextlib
import faulthandler
import os
import signal
import subprocess
import sys
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
@click.option(
    "--max-sandboxes",
    type=click.IntRange(min=1),
    help="Live sandboxes at most [E2BQ_SANDBOXD_MAX_SANDBOXES].",
)
@click.option(
    "--warm-pool",
    type=click.IntRange(min=0),
    help="Sandboxes kept launched ahead of creates [E2BQ_SANDBOXD_WARM_POOL, 0].",
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
@click.option("--log-level", default="info", show_default=True)
@click.pass_context
def sandboxd(
    ctx: click.Context,
    host: str | None,
    port: int | None,
    api_key: str | None,
    max_sandboxes: int | None,
    warm_pool: int | None,
    state_dir: Path | None,
    runtime: Path | None,
    memory_mb: int | None,
    pids: int | None,
    cpu: float | None,
    disk_mb: int | None,
    open_files: int | None,
    output_bytes: int | None,
    local: bool,
    log_level: str,
) -> None:
    """Run the local sandbox host (E2B's wire protocol, one bubblewrap jail per sandbox).

    It refuses to start without an API key unless in --local mode, where it makes one, prints
    it, and listens on 127.0.0.1 only.
    """
    if ctx.invoked_subcommand is not None:
        return
    from .sandboxd.server import serve

    given_key = api_key or os.environ.get("E2BQ_SANDBOXD_API_KEY") or os.environ.get("E2B_API_KEY")
    if not given_key and not local:
        raise click.UsageError(
            "sandboxd needs an API key: --api-key or E2BQ_SANDBOXD_API_KEY (e2b_ + 40 hex digits); "
            "or --local to make one for this machine only"
        )
    if local and not given_key and host not in (None, "127.0.0.1", "localhost", "::1"):
        raise click.UsageError("--local without an API key listens on loopback only: drop --host")

    settings = HostSettings.from_env(
        host=host,
        port=port,
        api_key=api_key,
        max_sandboxes=max_sandboxes,
        warm_pool=warm_pool,
        state_dir=state_dir,
        runtime=runtime,
        limits={
            name: value
            for name, value in {
                "memory_mb": memory_mb, "pids": pids, "cpu": cpu, "disk_mb": disk_mb,
                "open_files": open_files, "output_bytes": output_bytes,
            }.items()
            if value is not None
        },
    )
    _require_host(settings.runtime)
    click.echo(f"E2B_API_URL={settings.url} E2B_SANDBOX_URL={settings.url}", err=True)
    if not given_key:
        click.echo(f"E2B_API_KEY={settings.api_key}", err=True)
    serve(settings, log_level=log_level)


def _require_host(runtime: Path) -> None:
    """Exit with doctor's lines for what is missing, before any sandbox is started."""
    from .sandboxd.doctor import examine

    missing = [finding for finding in examine(runtime) if not finding.ok]
    if missing:
        for finding in missing:
            click.echo(finding.line(), err=True)
        raise click.ClickException("this host lacks what sandboxd needs (see above; `e2bq doctor` checks it)")


@cli.command()
@click.option(
    "--runtime",
    type=click.Path(path_type=Path),
    help=f"The sandbox runtime folder [E2BQ_SANDBOX_RUNTIME, {DEFAULT_RUNTIME}].",
)
def doctor(runtime: Path | None) -> None:
    """Check this host for everything sandboxd needs; one line per item, with what to do when missing.

    Exits 1 when anything is missing.
    """
    from .sandboxd.doctor import examine

    findings = examine(HostSettings.from_env(runtime=runtime).runtime)
    for finding in findings:
        click.echo(finding.line())
    missing = sum(not finding.ok for finding in findings)
    if missing:
        raise click.ClickException(f"{missing} of {len(findings)} items missing: sandboxd will not start")
    click.echo(f"all {len(findings)} items present: sandboxd can run here")


@sandboxd.command("install-runtime")
@click.option(
    "--target", type=click.Path(path_type=Path), default=DEFAULT_RUNTIME, show_default=True
)
@click.option("--upgrade", is_flag=True, help="Build it anew.")
def install_runtime_command(target: Path, upgrade: bool) -> None:
    """Build the Python environment sandboxes run (needs python3-venv)."""
    from .sandboxd.runtime import install_runtime

    install_runtime(target, upgrade=upgrade)
    click.echo(f"sandbox runtime ready at {target}")


_PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}


@cli.command(context_settings=_PASS_THROUGH)
@click.pass_context
def worker(ctx: click.Context) -> None:
    """Run a worker; Celery's worker options pass through (e.g. --concurrency, --pool, -n).

    Sandbox work waits on sandboxes rather than the CPU, so the default pool is 20 threads.
    """
    from workers.app import app

    from .config import Settings

    # A crash in native code (a signal, an abort) leaves the threads' tracebacks in the log.
    faulthandler.enable()
    os.environ.setdefault("LIBC_FATAL_STDERR_", "1")  # glibc's own fatal messages too, not the tty
    args = list(ctx.args)
    if not any(a in ("-P", "--pool") or a.startswith("--pool=") for a in args):
        args += ["--pool", "threads"]
        if not any(a in ("-c", "--concurrency") or a.startswith("--concurrency=") for a in args):
            args += ["--concurrency", "20"]
    if not any(a in ("-Q", "--queues") or a.startswith("--queues=") for a in args):
        args += ["--queues", Settings.from_env().queue]
    app.worker_main(argv=["worker", "--task-events", *args])


@cli.command(context_settings=_PASS_THROUGH)
@click.pass_context
def flower(ctx: click.Context) -> None:
    """Run Flower on e2bq's app; Flower's options pass through (e.g. --port 5555, --basic-auth=u:p).

    Flower shows every task's arguments, so it requires authentication (--basic-auth,
    FLOWER_BASIC_AUTH, or Flower's --auth) unless it listens on loopback only.
    """
    options = _tornado_options(ctx.args)
    authenticated = bool(os.environ.get("FLOWER_BASIC_AUTH") or os.environ.get("FLOWER_AUTH")) or any(
        a.startswith(("--basic-auth=", "--basic_auth=", "--auth=")) for a in options
    )
    address = next((a.split("=", 1)[1] for a in options if a.startswith("--address=")), "")
    if not authenticated and address not in ("127.0.0.1", "localhost", "::1"):
        raise click.UsageError(
            "Flower needs authentication here: --basic-auth=user:password (or FLOWER_BASIC_AUTH), "
            "or listen on loopback only with --address 127.0.0.1"
        )
    os.execvp(sys.executable, [sys.executable, "-m", "celery", "-A", "workers.app:app", "flower", *options])


def _tornado_options(args: list[str]) -> list[str]:
    """``--port 5555`` as ``--port=5555``: Flower parses its options with tornado, which needs the ``=``."""
    joined: list[str] = []
    for arg in args:
        previous = joined[-1] if joined else ""
        if not arg.startswith("-") and previous.startswith("--") and "=" not in previous:
            joined[-1] = f"{previous}={arg}"
        else:
            joined.append(arg)
    return joined


@cli.command(context_settings={"ignore_unknown_options": True})
@click.option("--flower-port", type=int, default=5555, show_default=True)
@click.option("--no-flower", is_flag=True, help="Do not start Flower.")
@click.option(
    "--redis-url", envvar="E2BQ_REDIS_URL", help="Use this Redis instead of starting one [E2BQ_REDIS_URL]."
)
@click.option(
    "--warm-pool",
    type=click.IntRange(min=0),
    envvar="E2BQ_SANDBOXD_WARM_POOL",
    help="Sandboxes kept launched ahead of creates [E2BQ_SANDBOXD_WARM_POOL, 2].",
)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def up(
    flower_port: int, no_flower: bool, redis_url: str | None, warm_pool: int | None, command: tuple[str, ...]
) -> None:
    """Start the embedded default: Redis (unless E2BQ_REDIS_URL is set), sandboxd, a worker, Flower.

    With COMMAND (after --), run it with the stack's environment, then stop everything;
    otherwise run until Ctrl-C.
    """
    from .embedded import embedded
    from .errors import ConfigurationError

    try:
        with embedded(
            redis_url=redis_url, warm_pool=warm_pool, flower_port=None if no_flower else flower_port
        ) as stack:
            for name, value in stack.env.items():
                if name != "E2B_API_KEY":
                    click.echo(f"export {name}={value}", err=True)
            if stack.flower is not None:
                click.echo(f"Flower: {stack.flower.url}", err=True)
            click.echo(f"logs: {stack.workdir}", err=True)
            if command:
                code = subprocess.call(list(command), env={**os.environ, **stack.env})
                raise SystemExit(code)
            with contextlib.suppress(KeyboardInterrupt):
                signal.sigwait({signal.SIGINT, signal.SIGTERM})
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="e2bq")


if __name__ == "__main__":
    main()
