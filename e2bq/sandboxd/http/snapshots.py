"""E2B's snapshot and fork routes of the control plane.

- ``POST /sandboxes/{id}/snapshots`` ``{"name"?, "memory"?}`` → 201 ``{"snapshotID", "names"}``
- ``GET /snapshots?sandboxID=&name=&limit=&nextToken=`` → 200 ``[{"snapshotID", "names"}]``, the next
  page's token in ``x-next-token``
- ``DELETE /templates/{id}`` (a snapshot's id or name) → 204, 404 when there is none
- ``POST /sandboxes/{id}/fork`` ``{"timeout"?, "count"?}`` → 201 ``[{"sandbox": …} | {"error": …}]``
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..errors import HostError
from ..lifecycle import snapshots
from ..lifecycle.sandboxes import SandboxHost
from ..lifecycle.snapshots import SnapshotRecord, SnapshotStore

Endpoint = Callable[[Request], Awaitable[Response]]
JsonBody = Callable[[Request], Awaitable[dict[str, Any]]]


def _info(record: SnapshotRecord) -> dict[str, Any]:
    return {"snapshotID": record["snapshotID"], "names": record["names"]}


def _whole(value: Any, name: str, low: int, high: int, default: int) -> int:
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise HostError(400, f"{name} must be a whole number from {low} to {high}, not {value!r}")
    return value


class SnapshotRoutes:
    def __init__(self, host: SandboxHost, json_body: JsonBody) -> None:
        self.host = host
        self.json_body = json_body

    def routes(self, guard: Callable[[Endpoint], Endpoint]) -> list[BaseRoute]:
        return [
            Route("/sandboxes/{sandbox_id}/snapshots", guard(self.create), methods=["POST"]),
            Route("/snapshots", guard(self.list), methods=["GET"]),
            Route("/templates/{template_id:path}", guard(self.delete), methods=["DELETE"]),
            Route("/sandboxes/{sandbox_id}/fork", guard(self.fork), methods=["POST"]),
        ]

    @property
    def store(self) -> SnapshotStore:
        if self.host.snapshots is None:
            raise HostError(503, "the host is starting")
        return self.host.snapshots

    async def create(self, request: Request) -> Response:
        body = await self.json_body(request)
        name = body.get("name")
        if name is not None and (not isinstance(name, str) or not name.strip() or len(name) > 128):
            raise HostError(400, "name must be a non-empty string of at most 128 characters")
        sandbox = self.host.get(request.path_params["sandbox_id"])
        store = self.store
        store.check_room(name)  # before any copy is made
        layer = await snapshots.capture(self.host, sandbox, pinned=True)
        try:
            record = store.add(sandbox.sandbox_id, name, layer)
        except HostError:
            store.layers.unpin(layer)
            raise
        return JSONResponse(_info(record), status_code=201)

    async def list(self, request: Request) -> Response:
        query = request.query_params
        limit_text = query.get("limit")
        limit = _whole(
            int(limit_text) if limit_text and limit_text.isdigit() else limit_text,
            "limit", 1, snapshots.LIST_LIMIT, snapshots.LIST_LIMIT,
        )
        page, token = self.store.page(
            sandbox_id=query.get("sandboxID"),
            name=query.get("name"),
            limit=limit,
            token=query.get("nextToken"),
        )
        headers = {"x-next-token": token} if token else {}
        return JSONResponse([_info(r) for r in page], headers=headers)

    async def delete(self, request: Request) -> Response:
        key = request.path_params["template_id"]
        if not self.store.delete(key):
            raise HostError(404, f"snapshot {key} not found")
        return Response(status_code=204)

    async def fork(self, request: Request) -> Response:
        body = await self.json_body(request)
        count = _whole(body.get("count"), "count", 1, snapshots.MAX_FORKS, 1)
        timeout = self.host.clamp_timeout(body.get("timeout"))
        sandbox = self.host.get(request.path_params["sandbox_id"])
        results = await snapshots.fork(self.host, sandbox, count, timeout)
        return JSONResponse(results, status_code=201)
