"""E2B's sandbox metrics endpoints, answered from sandboxd's own samples (``sandboxd.usage``).

``GET /sandboxes/{id}/metrics?start=&end=`` (Unix seconds; the SDK's ``get_metrics``): the points
in that range, oldest first — from the sandbox's start to now when not given, an empty list before
the first sample. ``GET /sandboxes/metrics?sandbox_ids=a,b``: each named running sandbox's latest
point, ``{"sandboxes": {id: point}}``. A sandbox that is not running here is 404 (the SDK's
``SandboxNotFoundException``), a bad range 400, as E2B's API answers.
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..errors import HostError
from ..lifecycle.sandboxes import SandboxHost
from ..usage import SandboxMetric, UsageSampler

MAX_IDS = 100


def _seconds(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise HostError(400, f"{name} must be a Unix time in whole seconds, not {raw!r}") from exc


async def sandbox_metrics(host: SandboxHost, sampler: UsageSampler, request: Request) -> Response:
    sandbox = host.get(request.path_params["sandbox_id"])
    start, end = _seconds(request, "start"), _seconds(request, "end")
    if min(start or 0, end or 0) < 0:
        raise HostError(400, "start and end must not be before 1970")
    low = int(sandbox.started_at) if start is None else start
    high = int(time.time()) if end is None else end
    if low > high:
        raise HostError(400, f"Invalid time range for metrics: start {low} is after end {high}")
    return JSONResponse(sampler.series(sandbox.sandbox_id, low, high))


async def sandboxes_metrics(host: SandboxHost, sampler: UsageSampler, request: Request) -> Response:
    raw = request.query_params.get("sandbox_ids", "")
    ids = [sid for sid in raw.split(",") if sid]
    if not ids:
        raise HostError(400, "sandbox_ids is required: a comma-separated list of sandbox ids")
    if len(ids) > MAX_IDS:
        raise HostError(400, f"at most {MAX_IDS} sandbox ids at once, not {len(ids)}")
    latest: dict[str, SandboxMetric] = {}
    for sandbox_id in ids:
        if sandbox_id in host.sandboxes:
            point = sampler.latest(sandbox_id)
            if point is not None:
                latest[sandbox_id] = point
    return JSONResponse({"sandboxes": latest})
