"""Where built templates live, and the content hash that lets a rebuild be skipped.

Layout under the templates folder (``E2BQ_SANDBOXD_TEMPLATES_DIR``)::

    builds/<hash>/rootfs/        the root filesystem, shared read-only by every sandbox made from it
    builds/<hash>/build.json     what was built: hash, created, size on disk, the definition, ...
    <name>/template.json         the same record with the template's name and its rootfs path
    <name>/rootfs -> ../builds/<hash>/rootfs
    .staging/                    builds in progress (same filesystem, so finishing one is a rename)

Two names built from the same definition and files share one build. A build folder no name points
at any more is removed by ``delete``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, TypedDict

from ..errors import TemplateError
from .definition import TemplateDefinition, source_of

# Part of every hash: bump it when the build steps change what they make from the same definition.
BUILDER_VERSION = 1
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


class BuildRecord(TypedDict):
    """``builds/<hash>/build.json``: one finished build."""

    hash: str
    created: float  # seconds since the epoch
    build_seconds: float
    size_bytes: int  # disk used by rootfs/, as du counts it
    definition: dict[str, Any]
    env: dict[str, str]
    user: str
    workdir: str
    start_cmd: str


class TemplateRecord(BuildRecord):
    """``<name>/template.json``: a build under a name; ``rootfs`` is the folder to use as ``/``."""

    name: str
    rootfs: str


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise TemplateError(
            f"template name {name!r}: use 1-63 lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (like 'code-interpreter-v1')"
        )
    return name


def content_hash(definition: TemplateDefinition, folder: Path) -> str:
    """A hash of the definition and of every copied file's path, mode and bytes."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"builder": BUILDER_VERSION, **definition.as_dict()}, sort_keys=True).encode())
    for entry in definition.files:
        source = source_of(entry, folder)
        paths = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
        for path in paths:
            digest.update(f"\0{entry.dest}\0{path.relative_to(source)}\0{path.stat().st_mode:o}\0".encode())
            with path.open("rb") as stream:
                for chunk in iter(lambda: stream.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()[:32]


def remove_tree(path: Path) -> None:
    """``rm -r``, refusing a folder with anything mounted below it (a host /dev bound into a rootfs)."""
    prefix = str(path.resolve()) + "/"
    with open("/proc/self/mountinfo") as table:
        mounted = [line.split()[4] for line in table if (line.split()[4] + "/").startswith(prefix)]
    if mounted:
        raise TemplateError(
            f"{path} still has {mounted[0]} mounted in it: unmount it (umount -R), then retry"
        )
    shutil.rmtree(path)


def disk_usage(path: Path) -> int:
    """Bytes on disk, hard links counted once (what ``du -s`` says)."""
    out = subprocess.run(
        ["du", "-s", "--block-size=1", str(path)], capture_output=True, text=True, check=True
    )
    return int(out.stdout.split()[0])


class TemplateStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def staging(self) -> Path:
        return self.root / ".staging"

    def sweep_staging(self) -> None:
        """Make the staging folder; remove what builds whose process is gone left in it."""
        self.staging.mkdir(parents=True, exist_ok=True)
        for leftover in self.staging.iterdir():
            parts = leftover.name.split("-")
            pid = int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else 0
            if leftover.name.startswith("delete-") or (pid and not Path(f"/proc/{pid}").exists()):
                remove_tree(leftover)

    def build_dir(self, digest: str) -> Path:
        return self.root / "builds" / digest

    def find_build(self, digest: str) -> BuildRecord | None:
        try:
            record: BuildRecord = json.loads((self.build_dir(digest) / "build.json").read_text())
        except FileNotFoundError:
            return None
        return record

    def get(self, name: str) -> TemplateRecord:
        try:
            record: TemplateRecord = json.loads((self.root / check_name(name) / "template.json").read_text())
        except FileNotFoundError:
            raise TemplateError(
                f"no template named {name!r} in {self.root}: "
                f"build it with `e2bq template build {name} --from FILE`"
            ) from None
        return record

    def templates(self) -> list[TemplateRecord]:
        if not self.root.is_dir():
            return []
        names = sorted(p.parent.name for p in self.root.glob("*/template.json") if _NAME.match(p.parent.name))
        return [self.get(name) for name in names]

    def publish(self, name: str, build: BuildRecord) -> TemplateRecord:
        """Point ``name`` at a finished build; each file is replaced by a rename, never half-written."""
        folder = self.root / check_name(name)
        folder.mkdir(parents=True, exist_ok=True)
        rootfs = self.build_dir(build["hash"]) / "rootfs"
        record = TemplateRecord(**build, name=name, rootfs=str(rootfs))
        link = folder / "rootfs.new"
        link.unlink(missing_ok=True)
        link.symlink_to(Path("..") / "builds" / build["hash"] / "rootfs")
        os.replace(link, folder / "rootfs")
        write_json(folder / "template.json", dict(record))
        return record

    def delete(self, name: str) -> list[str]:
        """Remove a name, then every build no name points at and no sandbox runs on; returns the
        builds removed. Raises TemplateError while a sandbox runs on the name's build."""
        record = self.get(name)
        roots = [Path(record["rootfs"]), *self.root.glob("builds/*/rootfs")]
        in_use = builds_in_use() | idmapped_in_use(roots)
        if str(Path(record["rootfs"]).resolve()) in in_use:
            raise TemplateError(
                f"template {name!r} is in use by running or paused sandboxes: kill them, then delete it"
            )
        shutil.rmtree(self.root / name)
        used = {record["hash"] for record in self.templates()}
        removed = []
        for build in sorted((self.root / "builds").glob("*")):
            if build.name not in used and str((build / "rootfs").resolve()) not in in_use:
                # Renamed away first, so a reader never sees a half-deleted root filesystem.
                doomed = self.staging / f"delete-{build.name}"
                self.staging.mkdir(parents=True, exist_ok=True)
                os.replace(build, doomed)
                remove_tree(doomed)
                removed.append(build.name)
        return removed


def builds_in_use() -> set[str]:
    """The root filesystems some sandbox's overlay lies on now (its lowerdir, in the mount table)."""
    used = set()
    with open("/proc/self/mountinfo") as table:
        for line in table:
            _, _, after = line.partition(" - ")
            fields = after.split()
            if len(fields) >= 3 and fields[0] == "overlay":
                for option in fields[2].split(","):
                    if option.startswith("lowerdir="):
                        used.update(option.removeprefix("lowerdir=").split(":"))
    return used


def idmapped_in_use(roots: list[Path]) -> set[str]:
    """Those of ``roots`` (resolved) shown somewhere through an idmapped mount: the lower layer of a
    sandbox with a uid range of its own is its template's tree idmapped (see ``jail.idmap``), so
    its overlay's lowerdir names that mount, not the tree; a bind mount's root is the same inode."""
    shown = set()
    with open("/proc/self/mountinfo") as table:
        for line in table:
            fields = line.split()
            if len(fields) > 5 and "idmapped" in fields[5].split(","):
                with contextlib.suppress(OSError):
                    found = os.stat(fields[4].replace("\\040", " "))
                    shown.add((found.st_dev, found.st_ino))
    used = set()
    for root in roots:
        with contextlib.suppress(OSError):
            found = root.resolve().stat()
            if (found.st_dev, found.st_ino) in shown:
                used.add(str(root.resolve()))
    return used


def write_json(path: Path, value: dict[str, Any]) -> None:
    partial = path.with_name(path.name + ".new")
    partial.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n")
    os.replace(partial, path)
