"""Which host uids a jail runs as: one of its own per sandbox, or a range of them on a template.

A sandbox on the host's system folders runs as a host uid of its own (``E2BQ_SANDBOX_UID`` + 1,
+2, ...), so per-uid kernel limits (inotify instances, message queues, pending signals) bind it
alone. A sandbox on a template gets a range of 65536 host ids (see ``jail.idmap``) from
``E2BQ_SANDBOX_UID_RANGE_BASE``: root inside is the range's first id, its user the range's id 1000.
A paused sandbox keeps its ids, which own its files. Without root, jails run as sandboxd's own uid
(None here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import LaunchError
from ..jail import idmap
from ..settings import MIN_UID_RANGE_BASE, UID_RANGES

if TYPE_CHECKING:
    from .persist import DiskRecord


class Identities:
    """The host uids of one sandboxd's jails: ``first`` (E2BQ_SANDBOX_UID, None without root) and
    the ranges from ``range_base``."""

    def __init__(self, first: int | None, range_base: int) -> None:
        self.first = first
        self.range_base = range_base
        self._in_use: set[int] = set()

    def for_jail(self, disk: DiskRecord | None, *, on_template: bool) -> tuple[int | None, int | None]:
        """The jail's user's host uid, and the first of its uid range if it has one: a jail on a
        template has a range of its own where sandboxd is root (its disk, if kept, made so).
        Raises LaunchError when every range is taken."""
        if disk is not None:
            uid = self._owner_again(disk)
            on_range = on_template and uid is not None and uid >= MIN_UID_RANGE_BASE
            return uid, (uid - idmap.INSIDE_USER if on_range and uid is not None else None)
        if not on_template or self.first is None:
            return self.take(), None
        slot = 0
        while idmap.base_of(slot, self.range_base) + idmap.INSIDE_USER in self._in_use:
            slot += 1
        if slot >= UID_RANGES:
            raise LaunchError(f"all {UID_RANGES} uid ranges of this host are in use: end a sandbox")
        base = idmap.base_of(slot, self.range_base)
        self._in_use.add(base + idmap.INSIDE_USER)
        return base + idmap.INSIDE_USER, base

    def take(self) -> int | None:
        """A host uid no other jail has."""
        if self.first is None:
            return None
        uid = self.first + 1
        while uid in self._in_use:
            uid += 1
        self._in_use.add(uid)
        return uid

    def reserve(self, uid: int | None) -> None:
        """Keep ``uid`` from new sandboxes: a paused sandbox's files belong to it."""
        if uid is not None:
            self._in_use.add(uid)

    def release(self, uid: int | None) -> None:
        if uid is not None:
            self._in_use.discard(uid)

    def _owner_again(self, disk: DiskRecord) -> int | None:
        """The uid of a relaunched jail: the one its files belong to, while this host runs jails
        as their own uids."""
        if self.first is None:
            return None
        owner = disk["owner"]
        if owner is None:
            return self.take()
        self._in_use.add(owner)
        return owner


def make_userns(base: int) -> int:
    """A user namespace mapping the range from ``base`` (see ``idmap``); its fd. Raises LaunchError."""
    try:
        return idmap.make_userns(base)
    except idmap.IdmapError as exc:
        raise LaunchError(str(exc)) from exc
