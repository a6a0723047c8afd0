"""``volumeMounts`` of a create: which volume goes where in the jail, checked before any jail starts.

A mount path must be absolute and normalised (no ``.``/``..``, no repeated or trailing ``/``), and
must not be ``/`` or cover or sit inside what the jail needs: its system folders (read-only binds
that cannot take a mount point), ``/proc``, ``/dev``, ``/run/e2bq`` (the agent's sockets),
``/opt/e2bq`` (runtime and agent), nor ``/home``, ``/home/user`` or ``/tmp`` themselves (folders
below ``/home/user`` and ``/tmp`` are fine). Each answer of a refusal is a 400 saying what to change.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from ..errors import HostError
from .store import Volume, VolumeStore

# No mount at or below these: the jail's own system, sockets and runtime.
_RESERVED_TREES = (
    "/proc", "/dev", "/sys", "/run/e2bq", "/opt/e2bq", "/usr", "/etc", "/bin", "/sbin", "/lib",
    "/lib32", "/lib64", "/libx32",
)
# No mount exactly here (it would hide the sandbox's home or temporary files); below is fine.
_RESERVED_POINTS = ("/", "/home", "/home/user", "/tmp", "/run", "/opt")
MAX_MOUNTS = 16


class VolumeMount(TypedDict):
    """One item of ``volumeMounts`` (create body, and sandbox info/list answers)."""

    name: str
    path: str


@dataclass(frozen=True)
class Bind:
    """A volume's host folder and where the jail sees it."""

    source: Path
    target: str
    volume: Volume

    def mount(self) -> VolumeMount:
        return {"name": self.volume.name, "path": self.target}


def check_path(path: Any) -> str:
    """``path`` if a volume may be mounted there; HostError(400) saying why not else."""
    if not isinstance(path, str) or not path:
        raise HostError(400, "a volume mount path must be a non-empty string")
    if "\0" in path or not path.startswith("/"):
        raise HostError(400, f"volume mount path {path!r} must be an absolute path such as /mnt/data")
    if posixpath.normpath(path) != path or path.startswith("//"):
        raise HostError(
            400, f"volume mount path {path!r} must be normalised: no '.', '..', '//' or trailing '/'"
        )
    if path in _RESERVED_POINTS:
        raise HostError(400, f"a volume cannot be mounted at {path}: mount it below, e.g. /mnt/data")
    for tree in _RESERVED_TREES:
        if path == tree or path.startswith(tree + "/"):
            raise HostError(400, f"a volume cannot be mounted at {path}: {tree} is the sandbox's system")
    return path


def parse(value: Any, store: VolumeStore) -> list[Bind]:
    """The binds ``volumeMounts`` asks for; HostError(400) for a bad item or an unknown volume."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_MOUNTS:
        raise HostError(400, f"volumeMounts must be a list of at most {MAX_MOUNTS} {{name, path}} objects")
    binds: list[Bind] = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise HostError(400, "each volumeMounts item must be an object with a volume 'name' and a 'path'")
        target = check_path(item.get("path"))
        volume = store.by_name(item["name"])
        if volume is None:
            raise HostError(400, f"volume {item['name']!r} does not exist: create it with Volume.create")
        for other in binds:
            if _overlaps(other.target, target):
                raise HostError(400, f"volume mount paths {other.target} and {target} overlap")
        binds.append(Bind(store.data(volume), target, volume))
    return binds


def _overlaps(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")
