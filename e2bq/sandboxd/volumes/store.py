"""The volumes of one sandboxd: named, persistent, each in its own folder of the state folder.

``<state>/volumes/<volume id>/`` holds ``volume.json`` (id, name, token, size, creation time),
``volume.img`` (with root: the ext4 image whose size is the volume's limit) and ``data/`` (where the
image is mounted: the volume's content, bound into the sandboxes that mount it). Volume ids start
with ``v``, never ``i``: the launcher clears ``<state>/i*`` (dead jails) at every start. Records are
read again at start, so volumes, their names and tokens survive a restart of sandboxd.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import secrets
import shutil
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypedDict

from ..errors import HostError
from .image import VolumeImages

log = logging.getLogger("e2bq.sandboxd")

RECORD = "volume.json"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


class VolumeInfo(TypedDict):
    """``GET /volumes`` items."""

    volumeID: str
    name: str


class VolumeAndToken(VolumeInfo):
    """``POST /volumes`` and ``GET /volumes/{id}``: the token authorises the content API."""

    token: str


@dataclass(frozen=True)
class Volume:
    volume_id: str
    name: str
    token: str
    size_mb: int
    created_at: float
    limited: bool  # on an ext4 image of its own (size_mb holds), not a plain folder

    def info(self) -> VolumeInfo:
        return {"volumeID": self.volume_id, "name": self.name}

    def with_token(self) -> VolumeAndToken:
        return {"volumeID": self.volume_id, "name": self.name, "token": self.token}


class VolumeStore:
    """Every volume of this host, by id, and which are about to be or are mounted."""

    def __init__(self, folder: Path, *, size_mb: int) -> None:
        self.folder = folder
        self.size_mb = size_mb
        self.images = VolumeImages()
        self.volumes: dict[str, Volume] = {}
        self._claims: Counter[str] = Counter()  # creates under way that mount a volume

    def data(self, volume: Volume) -> Path:
        """The volume's content on the host (the mounted image, or a plain folder)."""
        return self.folder / volume.volume_id / "data"

    def load(self) -> None:
        """Read the records of the volumes made before this run and mount their images."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o711)  # jails (unprivileged uids) traverse it to bind a volume
        if not self.images.available:
            log.warning("volume size limits unavailable (need root, mkfs.ext4 and loop devices)")
        for record in sorted(self.folder.glob(f"v*/{RECORD}")):
            try:
                volume = Volume(**json.loads(record.read_text()))
                self.images.mount(record.parent, self.data(volume))
            except (OSError, ValueError, TypeError) as exc:
                log.warning("volume record %s skipped: %s", record, exc)
                continue
            self.volumes[volume.volume_id] = volume

    def close(self) -> None:
        """Unmount every image (they are mounted again at the next start)."""
        for volume in self.volumes.values():
            self.images.unmount(self.data(volume))

    def create(self, name: str) -> Volume:
        """A new, empty volume; blocks (formats an image): call from a thread."""
        if not isinstance(name, str) or not NAME.match(name):
            raise HostError(
                400,
                f"volume name {name!r} is not valid: use 1 to 63 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit",
            )
        if self.by_name(name) is not None:
            raise HostError(409, f"a volume named {name!r} exists already: connect to it or pick another")
        volume_id = "v" + secrets.token_hex(10)
        folder = self.folder / volume_id
        folder.mkdir(mode=0o711)
        try:
            limited = self.images.create(folder, self.data_path(volume_id), self.size_mb)
            volume = Volume(volume_id, name, secrets.token_urlsafe(32), self.size_mb, time.time(), limited)
            (folder / RECORD).write_text(json.dumps(asdict(volume)))
            (folder / RECORD).chmod(0o600)
        except BaseException:
            self.images.unmount(self.data_path(volume_id))
            shutil.rmtree(folder, ignore_errors=True)
            raise
        self.volumes[volume_id] = volume
        return volume

    def data_path(self, volume_id: str) -> Path:
        return self.folder / volume_id / "data"

    def get(self, volume_id: str) -> Volume:
        volume = self.volumes.get(volume_id)
        if volume is None:
            raise HostError(404, f"volume {volume_id} not found")
        return volume

    def by_name(self, name: str) -> Volume | None:
        return next((v for v in self.volumes.values() if v.name == name), None)

    def all(self) -> list[Volume]:
        return sorted(self.volumes.values(), key=lambda v: v.created_at)

    @contextlib.contextmanager
    def claim(self, volume_ids: Iterable[str]) -> Iterator[None]:
        """Hold the volumes while a sandbox that mounts them is being made (no destroy meanwhile)."""
        ids = list(volume_ids)
        self._claims.update(ids)
        try:
            yield
        finally:
            self._claims.subtract(ids)

    def claimed(self, volume_id: str) -> bool:
        return self._claims[volume_id] > 0

    def destroy(self, volume_id: str) -> None:
        """Remove the volume and its content for good; blocks: call from a thread."""
        volume = self.volumes.pop(volume_id)
        self.images.unmount(self.data(volume))
        shutil.rmtree(self.folder / volume_id, ignore_errors=True)
