"""Builds asked for through E2B's template API: their uploads, their state and logs, their thread.

A build goes ``waiting`` (requested, steps not sent yet, or queued behind another build) →
``building`` → ``ready`` or ``error``. Builds run one at a time in a thread of their own: each is
minutes of mmdebstrap, pip and npm on a host that also runs sandboxes, and two builds of the same
steps would otherwise both do the work the content hash lets the second skip.

The files an SDK ``copy()`` sends are kept as uploaded, by the SDK's files hash, in
``<templates folder>/.uploads/<hash>.tar``, so a build whose files are unchanged uploads nothing;
a build unpacks the ones it needs into a folder of its own (refusing links and paths that leave it).
Each job's state and logs are written to ``<templates folder>/.sdk-builds/jobs/<build id>.json`` as
it moves on, so a restarted sandboxd still answers the SDK's status polls: a build that had ended
as it ended, one that was queued or running when sandboxd stopped as ``error`` saying so (a build
running at a stop is finished before the process exits, its thread joined, so that is a crash or a
kill). The newest ``KEPT_JOBS`` records are kept.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tarfile
import threading
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, Literal, NotRequired, TypedDict

from ..errors import TemplateError
from .build import BuildOptions, build_definition
from .definition import TemplateDefinition
from .sdksteps import copy_hashes, translate
from .store import TemplateStore

log = logging.getLogger("e2bq.sandboxd")

Level = Literal["debug", "info", "warn", "error"]
Status = Literal["waiting", "building", "ready", "error"]
_HASH = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
MAX_UPLOAD_BYTES = 4 << 30  # one copy()'s archive; E2B's own limit is of the same order
KEPT_JOBS = 500  # build records kept on disk, newest first


class LogEntry(TypedDict):
    """E2B's ``BuildLogEntry``."""

    timestamp: str
    level: Level
    message: str
    step: NotRequired[str]


class Reason(TypedDict):
    """E2B's ``BuildStatusReason``: why a build ended in ``error``."""

    message: str
    logEntries: list[LogEntry]


@dataclass
class BuildJob:
    template_id: str  # the template's name: E2B's ids and names are one here
    build_id: str
    status: Status = "waiting"
    logs: list[LogEntry] = field(default_factory=list)
    reason: Reason | None = None
    started: bool = False

    def log(self, message: str, level: Level = "info") -> None:
        self.logs.append(LogEntry(timestamp=datetime.now(UTC).isoformat(), level=level, message=message))


class JobRecord(TypedDict):
    """A build job as kept on disk."""

    templateID: str
    buildID: str
    status: Status
    logs: list[LogEntry]
    reason: Reason | None


class SdkBuilds:
    def __init__(self, templates_dir: Path, options: BuildOptions) -> None:
        self.store = TemplateStore(templates_dir)
        self.options = options
        self.uploads = templates_dir / ".uploads"
        self.work = templates_dir / ".sdk-builds"
        self.records = self.work / "jobs"
        self.jobs: dict[str, BuildJob] = {}
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="template-build")

    def request(self, name: str) -> BuildJob:
        job = BuildJob(template_id=name, build_id=str(uuid.uuid4()))
        job.log(f"build {job.build_id} of template {name} requested")
        self.jobs[job.build_id] = job
        self._save(job)
        return job

    def job(self, template_id: str, build_id: str) -> BuildJob | None:
        job = self.jobs.get(build_id) or self._load(build_id)
        return job if job is not None and job.template_id == template_id else None

    def _save(self, job: BuildJob) -> None:
        """Write the job's record (a crash leaves the old one or the new one, never half)."""
        record = JobRecord(
            templateID=job.template_id, buildID=job.build_id, status=job.status, logs=job.logs,
            reason=job.reason,
        )  # fmt: skip
        try:
            self.records.mkdir(parents=True, exist_ok=True)
            path = self.records / f"{job.build_id}.json"
            partial = path.with_suffix(".part")
            partial.write_text(json.dumps(record))
            partial.replace(path)
        except OSError as exc:  # a status poll after a restart is all that is lost
            log.warning("build %s: its record could not be written: %s", job.build_id, exc)

    def _load(self, build_id: str) -> BuildJob | None:
        """A job of an earlier run of sandboxd, from its record; one that had not ended never will."""
        try:
            uuid.UUID(build_id)
            record: JobRecord = json.loads((self.records / f"{build_id}.json").read_text())
        except (ValueError, OSError):
            return None
        job = BuildJob(
            template_id=record["templateID"], build_id=build_id, status=record["status"],
            logs=record["logs"], reason=record["reason"], started=True,
        )  # fmt: skip
        if job.status in ("waiting", "building"):
            self._fail(job, "sandboxd stopped before this build ended: build the template again")
            self._save(job)
        self.jobs[build_id] = job
        return job

    def prune(self) -> None:
        """Keep the newest KEPT_JOBS records (at start)."""
        try:
            records = sorted(self.records.glob("*.json"), key=lambda path: path.stat().st_mtime)
        except OSError:
            return
        for path in records[:-KEPT_JOBS]:
            path.unlink(missing_ok=True)

    # Uploads -------------------------------------------------------------------------------------

    def upload_path(self, files_hash: str) -> Path:
        if not _HASH.match(files_hash):
            raise TemplateError(f"files hash {files_hash!r} is not a hash (letters and digits)")
        return self.uploads / f"{files_hash}.tar"

    def has_upload(self, files_hash: str) -> bool:
        return self.upload_path(files_hash).is_file()

    async def receive(self, files_hash: str, chunks: AsyncIterator[bytes]) -> int:
        """Keep an uploaded archive under its hash; it replaces an earlier one only when complete."""
        target = self.upload_path(files_hash)
        self.uploads.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.name}.{uuid.uuid4().hex}.part")
        size = 0
        try:
            with partial.open("wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > MAX_UPLOAD_BYTES:
                        raise TemplateError(f"the upload is larger than {MAX_UPLOAD_BYTES >> 30} GiB")
                    out.write(chunk)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        return size

    # Builds --------------------------------------------------------------------------------------

    def start(self, job: BuildJob, body: dict[str, Any]) -> None:
        """Check the steps and queue the build. Raises TemplateError (nothing queued) for steps this
        host cannot build or files that were not uploaded."""
        with self._lock:
            if job.started:
                raise TemplateError(f"build {job.build_id} was started already: request a new build")
            job.started = True
        context = self.work / job.build_id
        try:
            for files_hash in copy_hashes(body):
                if not self.has_upload(files_hash):
                    raise TemplateError(f"copy: the files of hash {files_hash} were not uploaded")
                _unpack(self.upload_path(files_hash), context / files_hash)
            translation = translate(body, context)
        except (TemplateError, tarfile.TarError, OSError) as exc:
            shutil.rmtree(context, ignore_errors=True)
            self._fail(job, str(exc))
            raise TemplateError(str(exc)) from exc
        for note in translation.notes:
            job.log(note, "warn")
        self._save(job)
        self._executor.submit(self._build, job, translation.definition, context)

    def _build(self, job: BuildJob, definition: TemplateDefinition, context: Path) -> None:
        job.status = "building"
        job.log(f"building {job.template_id} from Debian {definition.base}")
        self._save(job)

        def report(step: str, seconds: float | None) -> None:
            job.log(f"step {step} ..." if seconds is None else f"step {step} done in {seconds:.1f} s")

        try:
            result = build_definition(
                job.template_id, definition, context, store=self.store, options=self.options, report=report
            )
        except Exception as exc:
            self._fail(job, str(exc) if isinstance(exc, TemplateError) else f"the build failed: {exc!r}")
        else:
            record = result["template"]
            size = record["size_bytes"] / 2**20
            how = "unchanged: build reused" if result["cached"] else f"built in {result['seconds']:.0f} s"
            job.log(f"template {job.template_id} ready: {how} ({record['hash']}, {size:.0f} MiB)")
            job.status = "ready"
        finally:
            shutil.rmtree(context, ignore_errors=True)
            self._save(job)

    def _fail(self, job: BuildJob, message: str) -> None:
        now = datetime.now(UTC).isoformat()
        failed = [LogEntry(timestamp=now, level="error", message=line) for line in message.splitlines()]
        job.logs.extend(failed)
        job.reason = Reason(message=message, logEntries=failed)
        job.status = "error"
        self._save(job)


def _unpack(archive: Path, folder: Path) -> None:
    """Unpack an uploaded tar (gzipped or not) into ``folder``. Raises TemplateError for a member
    that would land outside it, a device or fifo, or a link that could lead out of it.

    tarfile's ``data`` filter does this on Pythons that have it (3.11.4+); Debian 12's 3.11.2 has
    not, so the members are checked here first, on every Python: names relative and without ``..``,
    symlink targets relative and without ``..`` (a link can then only point further down), hard
    links to members' names; no special files; permissions without setuid, setgid or sticky bits,
    owners not kept.
    """
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        for member in members:
            _check_member(member)
            member.mode &= 0o755
            member.uid = member.gid = 0
            member.uname = member.gname = ""
        tar.extractall(folder, members=members, numeric_owner=True)


def _check_member(member: tarfile.TarInfo) -> None:
    def inside(path: str) -> bool:
        parts = PurePosixPath(path).parts
        return bool(parts) and not path.startswith("/") and ".." not in parts

    if not inside(member.name):
        raise TemplateError(f"copy: {member.name!r} would land outside the template's files")
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        raise TemplateError(f"copy: {member.name!r} is a device or fifo; copy files, folders and links")
    if (member.issym() or member.islnk()) and not inside(member.linkname):
        raise TemplateError(f"copy: the link {member.name!r} leads outside ({member.linkname!r})")
