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

from ..integrations.mcp.command import mcp_command
from ..sandboxd.cli import sandboxd
from ..sandboxd.settings import DEFAULT_RUNTIME, HostSettings
from ..sandboxd.templates.cli import template
from .execute import exec_command, run
from .jobcommands import job, kill, show_jobs
from .lifecycle import fork, pause, resume, snapshots
from .sandboxes import sandboxes
from .transfers import download, upload


@click.group()
def cli() -> None:
    """e2bq: a distributed job queue for code sandboxes."""


cli.add_command(sandboxd)
cli.add_command(template)


@cli.command()
@click.option(
    "--runtime",
    type=click.Path(path_type=Path),
    help=f"The sandbox runtime folder [E2BQ_SANDBOX_RUNTIME, {DEFAULT_RUNTIME}].",
)
@click.option(
    "--fix",
    is_flag=True,
    help="First reclaim what sandboxds that died left behind: mounted disk images, loop devices, "
    "cgroups, firewall chains (never a running sandboxd's).",
)
def doctor(runtime: Path | None, fix: bool) -> None:
    """Check this host for everything sandboxd needs; one line per item, with what to do when missing.

    Exits 1 when anything is missing.
    """
    from ..sandboxd.doctor import check_templates, examine
    from ..sandboxd.doctor import fix as reclaim

    if fix:
        done = reclaim()
        for line in done:
            click.echo(f"FIXED    {line}")
        click.echo(f"reclaimed {len(done)} leftovers of sandboxds that died")

    settings = HostSettings.from_env(runtime=runtime)
    findings = examine(settings.runtime)
    for finding in [*findings, check_templates(settings.templates_dir, host_root=settings.host_root)]:
        click.echo(finding.line())
    missing = sum(not finding.ok for finding in findings)
    if missing:
        raise click.ClickException(f"{missing} of {len(findings)} items missing: sandboxd will not start")
    click.echo(f"all {len(findings)} items present: sandboxd can run here")


_PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}


@cli.command(context_settings=_PASS_THROUGH)
@click.option(
    "--node",
    envvar="E2BQ_NODE",
    help="The node this worker serves: the sandbox host E2B_API_URL names [E2BQ_NODE, the host name].",
)
@click.option(
    "--serves",
    type=click.Choice(["all", "interactive", "batch"]),
    envvar="E2BQ_WORKER_SERVES",
    help="What it takes: interactive calls, background jobs, or both [E2BQ_WORKER_SERVES, all].",
)
@click.pass_context
def worker(ctx: click.Context, node: str | None, serves: str | None) -> None:
    """Run a worker; Celery's worker options pass through (e.g. --concurrency, --pool, -n).

    With a local sandboxd it serves that host's node: it takes the calls to the node's sandboxes
    (queue <E2BQ_QUEUE>.node.<NODE>, and .batch for background jobs) and creates placed on
    it, besides the shared queues. Sandbox work waits on sandboxes rather than the CPU, so the
    default pool is 20 threads. A job holds a thread while it runs: give a node an "interactive"
    worker and a "batch" one when synchronous calls must never wait for a thread.
    """
    if serves:
        os.environ["E2BQ_WORKER_SERVES"] = serves
    if node:
        from ..errors import ConfigurationError
        from ..queues import check_node_name

        try:
            os.environ["E2BQ_NODE"] = check_node_name(node)  # read when the worker's app is made
        except ConfigurationError as exc:
            raise click.BadParameter(str(exc), param_hint="--node") from exc
    from workers.app import app

    # A crash in native code (a signal, an abort) leaves the threads' tracebacks in the log.
    faulthandler.enable()
    os.environ.setdefault("LIBC_FATAL_STDERR_", "1")  # glibc's own fatal messages too, not the tty
    args = list(ctx.args)
    if "--help" in args:  # e2bq's own options first, then Celery's
        click.echo(ctx.get_help() + "\n\nCelery's worker options follow.\n")
    if not any(a in ("-P", "--pool") or a.startswith("--pool=") for a in args):
        args += ["--pool", "threads"]
        if not any(a in ("-c", "--concurrency") or a.startswith("--concurrency=") for a in args):
            args += ["--concurrency", "20"]
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
@click.option(
    "--nodes",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Nodes to start: a sandboxd and its worker each (node1, node2, ...).",
)
@click.option(
    "--no-build",
    is_flag=True,
    help="Do not build the shipped templates (code-interpreter-v1, base) that are not built yet.",
)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def up(
    flower_port: int,
    no_flower: bool,
    redis_url: str | None,
    warm_pool: int | None,
    nodes: int,
    no_build: bool,
    command: tuple[str, ...],
) -> None:
    """Start the embedded default: Redis (unless E2BQ_REDIS_URL is set), sandboxd and a worker per
    node, Flower. The templates sandboxes run on by default are built first when they are not yet
    (once: a few minutes, from Debian's archive and PyPI).

    With COMMAND (after --), run it with the stack's environment, then stop everything;
    otherwise run until Ctrl-C.
    """
    from ..embedded import embedded
    from ..errors import ConfigurationError
    from ..sandboxd.doctor import SHIPPED_DEFAULTS
    from ..sandboxd.templates.cli import build_missing

    host_settings = HostSettings.from_env()
    if not (no_build or host_settings.host_root):
        build_missing(SHIPPED_DEFAULTS, host_settings)
    try:
        with embedded(
            redis_url=redis_url,
            nodes=nodes,
            warm_pool=warm_pool,
            flower_port=None if no_flower else flower_port,
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


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per node instead of a table.")
def nodes(as_json: bool) -> None:
    """List the nodes of this cluster (E2BQ_REDIS_URL, E2BQ_QUEUE): capacity, load, live or lost."""
    import json
    import time

    from ..config import Settings
    from ..errors import E2BQError
    from ..stores.nodes import NodeStore

    try:
        listed = NodeStore(Settings.from_env()).list()
    except E2BQError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        for node in listed:
            click.echo(json.dumps(node))
        return
    if not listed:
        click.echo("no node has published a heartbeat: start `e2bq worker` beside a sandboxd")
        return
    click.echo(f"{'node':<20} {'state':<5} {'live':>5} {'free':>5} {'capacity':>8} {'seen':>7}  url")
    for node in listed:
        seen = f"{time.time() - node['seen_at']:.0f} s"
        click.echo(
            f"{node['node']:<20} {node['state']:<5} {node['live']:>5} {node['free']:>5} "
            f"{node['capacity']:>8} {seen:>7}  {node['url']}"
        )


@cli.group(invoke_without_command=True)
@click.option(
    "--state",
    type=click.Choice(["running", "done", "error", "cancelled", "queued", "started"]),
    help="Only jobs with this status (queued and started: running jobs in that state).",
)
@click.option(
    "--limit", type=click.IntRange(1, 1000), default=20, show_default=True, help="Jobs listed at most."
)
@click.option("--json", "as_json", is_flag=True, help="The listing as one JSON object.")
@click.pass_context
def jobs(ctx: click.Context, state: str | None, limit: int, as_json: bool) -> None:
    """The namespace's background jobs, newest first (E2BQ_NAMESPACE); `e2bq jobs follow`: their events."""
    if ctx.invoked_subcommand is None:
        show_jobs(state, limit, as_json)


@jobs.command()
@click.option("--job", "job_id", help="Only this job's events; stop after its end.")
@click.option("--from-start", is_flag=True, help="Begin with the oldest event kept, not with the next one.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event instead of a line of text.")
def follow(job_id: str | None, from_start: bool, as_json: bool) -> None:
    """Print job events (queued, started, handed_over, taken_over, ended, cancelled) as they happen,
    one line each: stream id, time, job id, event, status, then kind, sandbox_id, node and worker
    when known."""
    import json

    from ..config import Settings
    from ..errors import E2BQError
    from ..stores.events import START, JobEvents, event_line

    try:
        stream = JobEvents(Settings.from_env())
        for event in stream.follow(after=START if from_start else None, job_id=job_id):
            if event is None:
                continue
            click.echo(json.dumps(event) if as_json else event_line(event))
            if job_id is not None and event["event"] in ("ended", "cancelled"):
                return
    except E2BQError as exc:
        raise click.ClickException(str(exc)) from exc
    except KeyboardInterrupt:
        return


cli.add_command(mcp_command)


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="e2bq")


cli.add_command(sandboxes)
cli.add_command(pause)
cli.add_command(resume)
cli.add_command(fork)
cli.add_command(snapshots)
cli.add_command(job)
cli.add_command(kill)
cli.add_command(run)
cli.add_command(exec_command)
cli.add_command(upload)
cli.add_command(download)
