"""The record a filesystem-paused sandbox leaves beside its disk, so a restarted sandboxd finds it.

A sandbox paused without its memory is only files: its disk image (home, /tmp, everything it
wrote), unmounted, in its folder of the state folder, and this record, ``paused.json``, beside
it. The record holds what the sandbox is to the outside (id, tokens, metadata, envs, lifecycle,
limits, internet access, when it started and was paused) and the description of its disk as data
(:class:`DiskRecord`), so a relaunch needs nothing else. Written when the sandbox pauses, deleted
once it runs again; the launcher's start-up sweep keeps the folders that hold one.

The record carries the sandbox's tokens: it is written by root, readable by root only.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, TypedDict, cast

log = logging.getLogger("e2bq.sandboxd")

RECORD = "paused.json"
PAUSED_IMAGE = "disk.paused.img"  # no run mark: the start-up sweep of dead runs' disks skips it
VERSION = 1


class _Disk(TypedDict):
    image: str | None
    owner: int | None


class DiskRecord(_Disk, total=False):
    """A sandbox's disk, as data: enough to mount it again in a new jail.

    ``image`` is the image's file name in the sandbox's folder (None: a plain folder, on a host
    without disk images); ``owner`` is the host uid its files belong to.
    """

    layers: list[str]  # the layers its files lie on (a fork's, or from a snapshot), topmost first
    rootfs: str  # the template's root filesystem its / is an overlay of (see jail.rootfs)


class NetworkRecord(TypedDict):
    """A sandbox's outbound rules as asked (``jail.egress.EgressRules``' fields)."""

    allow_out: list[str]
    deny_out: list[str]
    dns_servers: list[str] | None


class MountRecord(TypedDict):
    """A volume the sandbox mounts: its name, and where the jail sees it."""

    name: str
    path: str


class _Paused(TypedDict):
    version: int
    sandbox_id: str
    template_id: str
    metadata: dict[str, str]
    envs: dict[str, str]
    started_at: float
    end_at: float
    paused_at: float
    timeout: int
    access_token: str
    traffic_token: str
    lifecycle: dict[str, Any]  # Lifecycle's fields
    limits: dict[str, Any]  # Limits' fields
    internet: bool
    disk: DiskRecord


class PausedRecord(_Paused, total=False):
    """``paused.json``: everything a filesystem-paused sandbox is, besides its files."""

    # Not in the records of earlier releases (read as none):
    network: NetworkRecord | None  # its outbound rules, put back in its new namespace on resume
    volume_mounts: list[MountRecord]  # bound again on resume


def write(folder: Path, record: PausedRecord) -> None:
    """Write the record atomically (a crash leaves the old one or the new one, never half)."""
    target = folder / RECORD
    partial = folder / (RECORD + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(record, handle)
        handle.flush()
        os.fsync(handle.fileno())
    partial.replace(target)


def read(folder: Path) -> PausedRecord | None:
    """The record in ``folder``; None (and a warning) when it is unreadable or not one of ours."""
    try:
        raw = json.loads((folder / RECORD).read_text())
    except (OSError, ValueError) as exc:
        log.warning("paused sandbox record %s unreadable, left as it is: %s", folder / RECORD, exc)
        return None
    if (
        not isinstance(raw, dict)
        or not PausedRecord.__required_keys__ <= raw.keys()
        or raw["version"] != VERSION
        or raw["sandbox_id"] != folder.name
    ):
        log.warning("paused sandbox record %s is not one this host wrote, left as it is", folder / RECORD)
        return None
    return cast(PausedRecord, raw)


def remove(folder: Path) -> None:
    (folder / RECORD).unlink(missing_ok=True)


def holds_record(folder: Path) -> bool:
    """Whether ``folder`` is a filesystem-paused sandbox's (to be kept, not swept, at start-up)."""
    return (folder / RECORD).is_file()
