"""``GET /v2/sandboxes``: E2B's list of sandboxes, filtered and paged.

Query parameters, as the SDK's ``Sandbox.list(query=SandboxQuery(...), limit=, next_token=,
order=)`` sends them: ``metadata`` (``k=v&...``, escaped once more), ``state`` (``running,paused``),
``template`` (a template's id or alias), ``startedAfter`` / ``startedBefore`` (ISO 8601; a sandbox
started at that instant matches), ``order`` (``asc`` / ``desc`` by start time, newest first by
default), ``limit`` (1 to 100, 100 by default) and ``nextToken``. A page with more after it
carries the token of the next one in the ``x-next-token`` header. The token is a cursor (the last
sandbox's start time and id), so sandboxes killed or created between two pages neither shift nor
repeat the ones that follow.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl, unquote_plus

from ..errors import HostError
from ..lifecycle.sandboxes import Sandbox

STATES = ("running", "paused")
MAX_LIMIT = 100


@dataclass(frozen=True)
class ListQuery:
    metadata: dict[str, str]
    states: frozenset[str]
    template: str | None
    started_after: datetime | None
    started_before: datetime | None
    descending: bool
    limit: int
    cursor: tuple[float, str] | None

    @classmethod
    def parse(cls, query: Mapping[str, str], *, max_limit: int = MAX_LIMIT) -> ListQuery:
        """From the request's query string; raises HostError(400) naming what to change."""
        # E2B's API unescapes the filter once more before splitting it into pairs, and the SDK
        # escapes keys and values once more to match: "k%3Dv" arrives as "k%253Dv"
        metadata = dict(parse_qsl(unquote_plus(query.get("metadata", "")), keep_blank_values=True))
        states = frozenset(s for s in query.get("state", "").split(",") if s) or frozenset(STATES)
        if not states <= set(STATES):
            raise HostError(400, f"state must be a comma-separated list of {STATES}, not {query['state']!r}")
        order = query.get("order") or "desc"
        if order not in ("asc", "desc"):
            raise HostError(400, f"order must be 'asc' or 'desc', not {order!r}")
        try:
            limit = int(query.get("limit") or max_limit)
        except ValueError as exc:
            raise HostError(400, "limit must be a whole number") from exc
        if not 1 <= limit <= max_limit:
            raise HostError(400, f"limit must be between 1 and {max_limit}, not {limit}")
        return cls(
            metadata=metadata,
            states=states,
            template=query.get("template") or None,
            started_after=_instant(query, "startedAfter"),
            started_before=_instant(query, "startedBefore"),
            descending=order == "desc",
            limit=limit,
            cursor=_cursor(query.get("nextToken")),
        )

    def matches(self, sandbox: Sandbox) -> bool:
        # to the microsecond, as startedAt is shown: the instant a client read matches itself
        started = datetime.fromtimestamp(sandbox.started_at, UTC)
        return (
            sandbox.state in self.states
            and sandbox.alive()
            and (self.template is None or self.template == sandbox.template_id)
            and (self.started_after is None or started >= self.started_after)
            and (self.started_before is None or started <= self.started_before)
            and all(sandbox.metadata.get(k) == v for k, v in self.metadata.items())
        )

    def page(self, sandboxes: Iterable[Sandbox]) -> tuple[list[Sandbox], str | None]:
        """The sandboxes of this page, in order, and the token of the next page (None: the last)."""

        def key(sandbox: Sandbox) -> tuple[float, str]:
            return (sandbox.started_at, sandbox.sandbox_id)

        ordered = sorted((s for s in sandboxes if self.matches(s)), key=key, reverse=self.descending)
        if self.cursor is not None:
            cursor = self.cursor
            ordered = [s for s in ordered if (key(s) < cursor if self.descending else key(s) > cursor)]
        page = ordered[: self.limit]
        more = len(ordered) > self.limit
        return page, (_token(key(page[-1])) if more else None)


def _instant(query: Mapping[str, str], name: str) -> datetime | None:
    raw = query.get(name)
    if not raw:
        return None
    try:
        # Python 3.11 reads "Z" and offsets; a time without an offset is taken as UTC, as E2B does
        moment = datetime.fromisoformat(raw.replace(" ", "+"))  # "+" unescaped as a space
    except ValueError as exc:
        raise HostError(400, f"{name} must be an ISO 8601 date and time, not {raw!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def _token(key: tuple[float, str]) -> str:
    started_at, sandbox_id = key
    return base64.urlsafe_b64encode(f"{started_at!r}:{sandbox_id}".encode()).decode()


def _cursor(token: str | None) -> tuple[float, str] | None:
    if not token:
        return None
    try:
        started_at, _, sandbox_id = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        return float(started_at), sandbox_id
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise HostError(400, f"nextToken {token!r} is not one this host gave: list from the start") from exc
