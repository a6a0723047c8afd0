"""E2B's control plane (``X-API-KEY``): create, list, inspect, extend, connect and kill sandboxes.

Sandbox metrics (``/sandboxes/{id}/metrics``, ``/sandboxes/metrics``) are in ``usage.py``.
Also e2bq's one extension, ``GET /sandboxes/{id}/ports/{port}`` → ``{"url": ...}``: the address at
which a server listening on that port inside the sandbox answers.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..errors import HostError
from ..jail.limits import asked_limits
from ..lifecycle import fspause, pause
from ..lifecycle.pause import Lifecycle
from ..lifecycle.sandboxes import Sandbox, SandboxHost
from ..usage import UsageSampler
from ..volumes import mounts as volume_mounts
from . import netrules
from . import usage as usage_api
from .listing import ListQuery
from .snapshots import SnapshotRoutes
from .templatebuilds import TemplateBuildRoutes

Endpoint = Callable[[Request], Awaitable[Response]]
V1_LIST_LIMIT = 1000  # GET /sandboxes (v1) has no pages in E2B's API: this many at most


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"code": status, "message": message}, status_code=status, headers=headers)


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise HostError(400, f"the request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise HostError(400, "the request body must be a JSON object")
    return body


def _string_map(value: Any, name: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise HostError(400, f"{name} must be an object of strings")
    return {k: str(v) for k, v in value.items()}


class ControlPlane:
    def __init__(self, host: SandboxHost, usage: UsageSampler | None = None) -> None:
        self.host = host
        self.usage = usage or UsageSampler(host)

    def routes(self) -> list[BaseRoute]:
        guard = self._guard
        return [
            Route("/health", self.health, methods=["GET"]),
            Route("/metrics", self.metrics, methods=["GET"]),
            Route("/sandboxes", guard(self.create), methods=["POST"]),
            Route("/v2/sandboxes", guard(self.create), methods=["POST"]),
            Route("/sandboxes", guard(self.list), methods=["GET"]),
            Route("/sandboxes/metrics", guard(self.sandboxes_metrics), methods=["GET"]),
            Route("/v2/sandboxes", guard(self.list), methods=["GET"]),
            Route("/sandboxes/{sandbox_id}", guard(self.info), methods=["GET"]),
            Route("/sandboxes/{sandbox_id}", guard(self.kill), methods=["DELETE"]),
            Route("/sandboxes/{sandbox_id}/timeout", guard(self.timeout), methods=["POST"]),
            Route("/sandboxes/{sandbox_id}/refreshes", guard(self.refresh), methods=["POST"]),
            Route("/sandboxes/{sandbox_id}/connect", guard(self.connect), methods=["POST"]),
            Route("/v2/sandboxes/{sandbox_id}/connect", guard(self.connect), methods=["POST"]),
            Route("/sandboxes/{sandbox_id}/resume", guard(self.resume), methods=["POST"]),
            Route("/sandboxes/{sandbox_id}/pause", guard(self.pause), methods=["POST"]),
            Route("/sandboxes/{sandbox_id}/ports/{port:int}", guard(self.port), methods=["GET"]),
            Route("/sandboxes/{sandbox_id}/metrics", guard(self.sandbox_metrics), methods=["GET"]),
            Route("/sandboxes/{sandbox_id}/network", guard(self.update_network), methods=["PUT"]),
            *SnapshotRoutes(self.host, _json_body).routes(guard),
            *TemplateBuildRoutes(self.host, _json_body).routes(guard),
        ]

    def _guard(self, endpoint: Endpoint) -> Endpoint:
        """Check the API key, and answer HostError as E2B's JSON error."""

        async def guarded(request: Request) -> Response:
            key = request.headers.get("x-api-key", "")
            if not hmac.compare_digest(key.encode(), self.host.settings.api_key.encode()):
                return error(401, "Invalid API key: send this host's key in X-API-KEY")
            try:
                return await endpoint(request)
            except HostError as exc:
                headers = {"Retry-After": "1"} if exc.status == 429 else None
                return error(exc.status, exc.message, headers)

        return guarded

    async def health(self, _: Request) -> Response:
        """Liveness and capacity (counts only): what a node's workers publish in its heartbeat."""
        live, capacity = self.host.load, self.host.settings.max_sandboxes
        return JSONResponse(
            {
                "status": "ok",
                "sandboxes": live,
                "max_sandboxes": capacity,
                "free": max(0, capacity - live),
                "started_at": self.host.started_at,
            }
        )

    async def metrics(self, _: Request) -> Response:
        """Prometheus metrics: counts and durations only, nothing about any sandbox's content."""
        return Response(self.host.metrics.render(), media_type="text/plain; version=0.0.4")

    async def create(self, request: Request) -> Response:
        body = await _json_body(request)
        template = body.get("templateID") or "base"
        timeout = self.host.clamp_timeout(body.get("timeout"))
        metadata = _string_map(body.get("metadata"), "metadata")
        envs = _string_map(body.get("envVars"), "envVars")
        try:
            asked = asked_limits(metadata, body.get("limits"))
        except ValueError as exc:
            raise HostError(400, str(exc)) from exc
        internet = body.get("allow_internet_access", body.get("allowInternetAccess", True))
        if not isinstance(internet, bool):
            raise HostError(400, "allow_internet_access must be true or false")
        lifecycle = Lifecycle.from_create(body)
        rules = await netrules.for_create(self.host, body, internet)
        binds = volume_mounts.parse(body.get("volumeMounts"), self.host.volumes)
        with self.host.volumes.claim(bind.volume.volume_id for bind in binds):
            sandbox = await self.host.create(
                str(template),
                timeout,
                metadata,
                envs,
                limits=self.host.limits(asked),
                internet=internet,
                lifecycle=lifecycle,
                rules=rules,
                binds=binds,
            )
        netrules.remember(sandbox, body)
        return JSONResponse(sandbox.created(), status_code=201)

    async def list(self, request: Request) -> Response:
        """E2B's list, filtered and paged (see ``listing``). ``GET /sandboxes`` (v1) is the same
        list, of running sandboxes unless asked, unpaged as E2B's v1 is (up to 1,000)."""
        if request.url.path == "/sandboxes":
            query = ListQuery.parse(request.query_params, max_limit=V1_LIST_LIMIT)
            if "state" not in request.query_params:
                query = dataclasses.replace(query, states=frozenset({"running"}))
        else:
            query = ListQuery.parse(request.query_params)
        page, token = query.page(self.host.sandboxes.values())
        headers = {"x-next-token": token} if token else {}
        return JSONResponse([s.summary() for s in page], headers=headers)

    def _sandbox(self, request: Request) -> Sandbox:
        return self.host.get(request.path_params["sandbox_id"])

    async def info(self, request: Request) -> Response:
        return JSONResponse(self._sandbox(request).detail())

    async def kill(self, request: Request) -> Response:
        sandbox_id = request.path_params["sandbox_id"]
        self.host.get(sandbox_id)  # 404 too for one past its timeout that the sweeper has not reaped
        if not await self.host.kill(sandbox_id):
            raise HostError(404, f"sandbox {sandbox_id} not found")
        return Response(status_code=204)

    async def timeout(self, request: Request) -> Response:
        body = await _json_body(request)
        if "timeout" not in body:
            raise HostError(400, "timeout is required")
        self.host.set_timeout(
            request.path_params["sandbox_id"], self.host.clamp_timeout(body["timeout"])
        )
        return Response(status_code=204)

    async def refresh(self, request: Request) -> Response:
        body = await _json_body(request)
        sandbox = self._sandbox(request)
        duration = self.host.clamp_timeout(body.get("duration"))
        sandbox.end_at = max(sandbox.end_at, time.time() + duration)
        return Response(status_code=204)

    async def connect(self, request: Request) -> Response:
        """Connect: 200 for a running sandbox (its timeout extended, never shortened); a paused
        one is resumed with the timeout given (the host's default if none) and answers 201."""
        body = await _json_body(request)
        sandbox = self._sandbox(request)
        if sandbox.state == "paused":
            return await self._resume(sandbox, body)
        if body.get("timeout") is not None:
            extended = time.time() + self.host.clamp_timeout(body["timeout"])
            sandbox.end_at = max(sandbox.end_at, extended)
        return JSONResponse(sandbox.created(), status_code=200)

    async def resume(self, request: Request) -> Response:
        """E2B's older resume: 201 for a paused sandbox, 409 for one already running."""
        body = await _json_body(request)
        sandbox = self._sandbox(request)
        if sandbox.state != "paused":
            raise HostError(409, f"sandbox {sandbox.sandbox_id} is already running")
        return await self._resume(sandbox, body)

    async def _resume(self, sandbox: Sandbox, body: dict[str, Any]) -> Response:
        timeout = self.host.clamp_timeout(body.get("timeout"))
        if body.get("memory") is False:  # on_resume="reboot": a cold boot from the disk
            async with sandbox.transition:
                if sandbox.state == "paused" and not sandbox.filesystem_paused:
                    await fspause.to_disk(self.host, sandbox)
        resumed = await pause.resume(self.host, sandbox, timeout)
        return JSONResponse(sandbox.created(), status_code=201 if resumed else 200)

    async def pause(self, request: Request) -> Response:
        """Pause (204), with its memory unless ``memory`` is false (``mode="filesystem"``: only
        its disk kept); 409 if it is paused already."""
        body = await _json_body(request)
        sandbox = self._sandbox(request)
        memory = body.get("memory", True)
        if not isinstance(memory, bool):
            raise HostError(400, "memory must be true or false")
        await (pause.pause if memory else fspause.pause)(self.host, sandbox)
        return Response(status_code=204)

    async def update_network(self, request: Request) -> Response:
        """``update_network``: the sandbox's outbound rules replaced at once (see ``netrules``)."""
        return await netrules.update(self.host, request, await _json_body(request))

    async def sandbox_metrics(self, request: Request) -> Response:
        return await usage_api.sandbox_metrics(self.host, self.usage, request)

    async def sandboxes_metrics(self, request: Request) -> Response:
        return await usage_api.sandboxes_metrics(self.host, self.usage, request)

    async def port(self, request: Request) -> Response:
        sandbox = self._sandbox(request)
        port = request.path_params["port"]
        if not 0 < port < 65536:
            raise HostError(400, f"port must be between 1 and 65535, not {port}")
        url = await sandbox.ports.publish(port)
        # a paused sandbox's agent cannot answer whether the port is open: not open, as E2B says
        is_open = sandbox.state == "running" and await sandbox.ports.is_open(port)
        return JSONResponse({"url": url, "port": port, "open": is_open})
