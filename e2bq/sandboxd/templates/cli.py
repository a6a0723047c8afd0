"""``e2bq template build|list|delete``: templates on this host's templates folder."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from ..errors import TemplateError
from ..settings import DEFAULT_TEMPLATES_DIR, HostSettings
from .build import BuildOptions, build_template
from .store import TemplateRecord, TemplateStore

SHIPPED = Path(__file__).parent / "defs"

_DIR_OPTION = click.option(
    "--dir",
    "templates_dir",
    type=click.Path(path_type=Path),
    help=f"The templates folder [E2BQ_SANDBOXD_TEMPLATES_DIR, {DEFAULT_TEMPLATES_DIR}].",
)


def _settings(templates_dir: Path | None) -> HostSettings:
    return HostSettings.from_env(templates_dir=templates_dir)


@click.group()
def template() -> None:
    """Build, list and delete sandbox templates (root filesystems made from Debian, PyPI and npm)."""


@template.command()
@click.argument("name")
@click.option(
    "--from",
    "source",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The template file (TOML). Without it: the definition shipped as NAME (base, code-interpreter-v1).",
)
@_DIR_OPTION
def build(name: str, source: Path | None, templates_dir: Path | None) -> None:
    """Build template NAME; an unchanged definition with unchanged files is reused at once."""
    record = build_shown(name, source, _settings(templates_dir))
    click.echo(record["rootfs"])


def build_shown(name: str, source: Path | None, settings: HostSettings) -> TemplateRecord:
    """Build template NAME (a shipped one without ``source``), its progress shown on stderr.
    Raises click.ClickException."""
    if source is None:
        source = SHIPPED / f"{name}.toml"
        if not source.is_file():
            shipped = ", ".join(sorted(p.stem for p in SHIPPED.glob("*.toml")))
            raise click.ClickException(f"no shipped template {name!r} ({shipped}): pass --from FILE")
    options = BuildOptions(
        mirror=settings.template_mirror,
        pip_index=settings.template_pip_index,
        npm_registry=settings.template_npm_registry,
        ca_bundle=settings.template_ca_bundle,
    )
    console = Console(file=sys.stderr, highlight=False)
    with console.status(f"building {name}") as status:

        def report(step: str, seconds: float | None) -> None:
            if seconds is None:
                status.update(f"[bold]{name}[/]: {step} ...")
            else:
                console.print(f"  [green]✓[/] {step} [dim]({seconds:.1f} s)[/]")

        try:
            result = build_template(
                name, source, store=TemplateStore(settings.templates_dir), options=options, report=report
            )
        except TemplateError as exc:
            raise click.ClickException(str(exc)) from exc
    record = result["template"]
    size = record["size_bytes"] / 2**20
    if result["cached"]:
        console.print(f"{name}: unchanged, cached build {record['hash']} reused ({size:.0f} MiB)")
    else:
        console.print(f"{name}: built {record['hash']} in {result['seconds']:.0f} s ({size:.0f} MiB)")
    return record


def build_missing(names: tuple[str, ...], settings: HostSettings) -> None:
    """Build those of the shipped templates ``names`` not built yet (a first start takes a few
    minutes: Debian's archive and PyPI over the network). Raises click.ClickException."""
    store = TemplateStore(settings.templates_dir)
    for name in names:
        try:
            store.get(name)
        except TemplateError:
            click.echo(f"template {name} is not built in {settings.templates_dir}: building it", err=True)
            build_shown(name, None, settings)


@template.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print the templates' records as JSON.")
@_DIR_OPTION
def list_(as_json: bool, templates_dir: Path | None) -> None:
    """List the templates built on this host."""
    records = TemplateStore(_settings(templates_dir).templates_dir).templates()
    if as_json:
        click.echo(json.dumps(records, indent=2))
        return
    table = Table("name", "hash", "size", "built", "user", box=None)
    for record in records:
        built = time.strftime("%Y-%m-%d %H:%M", time.localtime(record["created"]))
        table.add_row(
            record["name"],
            record["hash"][:12],
            f"{record['size_bytes'] / 2**20:.0f} MiB",
            built,
            record["user"],
        )
    Console(highlight=False).print(table)


@template.command()
@click.argument("name")
@_DIR_OPTION
def delete(name: str, templates_dir: Path | None) -> None:
    """Delete template NAME, and its build when no other name uses it."""
    try:
        removed = TemplateStore(_settings(templates_dir).templates_dir).delete(name)
    except TemplateError as exc:
        raise click.ClickException(str(exc)) from exc
    freed = (
        f"; removed build {', '.join(removed)}" if removed else "; its build is still used by another name"
    )
    click.echo(f"deleted {name}{freed}")
