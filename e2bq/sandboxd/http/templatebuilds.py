"""E2B's template build API, as ``Template.build`` / ``build_in_background`` / ``get_build_status``
and ``Template.exists`` call it (see ``templates.sdkbuilds`` for the builds, ``templates.sdksteps``
for what is built):

- ``POST /v3/templates`` ``{"name", "tags"?, "cpuCount"?, ...}`` → 202 ``{"templateID", "buildID",
  "public", "names", "tags", "aliases"}``; the template's id is its name
- ``GET /templates/{id}/files/{hash}`` → 201 ``{"present", "url"?}``: a ``copy()``'s files are
  uploaded once, by the SDK's hash of them, with ``PUT`` to the url (this host, a one-time token)
- ``POST /v2/templates/{id}/builds/{buildID}`` (the steps) → 202, the build queued; 400 naming the
  step for what this host cannot build
- ``GET /templates/{id}/builds/{buildID}/status?logsOffset=&limit=&level=`` → 200 ``{"templateID",
  "buildID", "status", "logs": [], "logEntries", "reason"?}``
- ``GET /templates/aliases/{name}`` → 200 ``{"templateID", "public"}``, 404 when there is none
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..errors import HostError, TemplateError
from ..lifecycle.sandboxes import SandboxHost
from ..templates.build import BuildOptions
from ..templates.sdkbuilds import BuildJob, LogEntry, SdkBuilds
from ..templates.store import check_name

Endpoint = Callable[[Request], Awaitable[Response]]
JsonBody = Callable[[Request], Awaitable[dict[str, Any]]]
_LEVELS = ("debug", "info", "warn", "error")
_PAGE = 100  # log entries per status answer at most, as E2B's
_MAX_TOKENS = 1000  # upload links outstanding


class TemplateBuildRoutes:
    def __init__(self, host: SandboxHost, json_body: JsonBody) -> None:
        settings = host.settings
        self.json_body = json_body
        self.enabled = settings.template_builds
        self.builds = SdkBuilds(
            settings.templates_dir,
            BuildOptions(
                mirror=settings.template_mirror,
                pip_index=settings.template_pip_index,
                npm_registry=settings.template_npm_registry,
                ca_bundle=settings.template_ca_bundle,
            ),
        )
        self._tokens: dict[str, str] = {}  # upload token → files hash
        self.builds.prune()
        self.templates = host.templates

    def routes(self, guard: Callable[[Endpoint], Endpoint]) -> list[BaseRoute]:
        return [
            Route("/v3/templates", guard(self.request), methods=["POST"]),
            Route("/templates/aliases/{alias:path}", guard(self.alias), methods=["GET"]),
            Route("/templates/{template_id}/files/{files_hash}", guard(self.upload_link), methods=["GET"]),
            Route("/template-uploads/{token}", self.receive, methods=["PUT"]),
            Route("/v2/templates/{template_id}/builds/{build_id}", guard(self.start), methods=["POST"]),
            Route("/templates/{template_id}/builds/{build_id}/status", guard(self.status), methods=["GET"]),
        ]

    async def request(self, request: Request) -> Response:
        if not self.enabled:
            raise HostError(
                403,
                "template builds through the API are off on this host: build on the host with "
                "`e2bq template build NAME --from FILE`, or set E2BQ_SANDBOXD_TEMPLATE_BUILDS=1",
            )
        body = await self.json_body(request)
        name = body.get("name") or body.get("alias")
        if not isinstance(name, str) or not name:
            raise HostError(400, "name is required: Template.build(template, 'my-template')")
        name, _, tag = name.partition(":")
        if (tag and tag != "latest") or [t for t in body.get("tags") or [] if t != "latest"]:
            raise HostError(400, "tags: this host keeps one build per template name; build without tags")
        try:
            check_name(name)
        except TemplateError as exc:
            raise HostError(400, str(exc)) from exc
        job = self.builds.request(name)
        return JSONResponse(
            {
                "templateID": name,
                "buildID": job.build_id,
                "public": False,
                "names": [name],
                "tags": [],
                "aliases": [name],
            },
            status_code=202,
        )

    async def alias(self, request: Request) -> Response:
        name = request.path_params["alias"]
        try:  # what a create on that name would get
            await asyncio.to_thread(self.templates.find, name)
        except HostError:
            raise HostError(404, f"template '{name}' not found") from None
        return JSONResponse({"templateID": name, "public": False})

    async def upload_link(self, request: Request) -> Response:
        files_hash = request.path_params["files_hash"]
        try:
            present = self.builds.has_upload(files_hash)
        except TemplateError as exc:
            raise HostError(400, str(exc)) from exc
        if present:  # no url: the SDK uploads nothing (forceUpload would send the same bytes again)
            return JSONResponse({"present": True}, status_code=201)
        while len(self._tokens) >= _MAX_TOKENS:  # links asked for and never used: the oldest go
            del self._tokens[next(iter(self._tokens))]
        token = secrets.token_urlsafe(24)
        self._tokens[token] = files_hash
        url = f"{str(request.base_url).rstrip('/')}/template-uploads/{token}"
        return JSONResponse({"present": False, "url": url}, status_code=201)

    async def receive(self, request: Request) -> Response:
        """The upload url: no API key (the SDK sends none there), the token given with it instead."""
        files_hash = self._tokens.pop(request.path_params["token"], None)
        if files_hash is None:
            return JSONResponse({"code": 403, "message": "unknown or used upload token"}, status_code=403)
        try:
            await self.builds.receive(files_hash, request.stream())
        except TemplateError as exc:
            return JSONResponse({"code": 413, "message": str(exc)}, status_code=413)
        return Response(status_code=200)

    def _job(self, request: Request) -> BuildJob:
        template_id, build_id = request.path_params["template_id"], request.path_params["build_id"]
        job = self.builds.job(template_id, build_id)
        if job is None:
            raise HostError(404, f"build {build_id} of template {template_id} not found")
        return job

    async def start(self, request: Request) -> Response:
        job = self._job(request)
        body = await self.json_body(request)
        try:
            self.builds.start(job, body)
        except TemplateError as exc:
            raise HostError(400, str(exc)) from exc
        return Response(status_code=202)

    async def status(self, request: Request) -> Response:
        job = self._job(request)
        query = request.query_params
        offset = _whole(query.get("logsOffset"), "logsOffset", 0)
        limit = min(_whole(query.get("limit"), "limit", _PAGE), _PAGE)
        level = query.get("level")
        if level is not None and level not in _LEVELS:
            raise HostError(400, f"level must be one of {', '.join(_LEVELS)}")
        # Status first: a build that is over has logged all it will, so the entries read after it
        # are complete. The SDK counts the entries it was given to ask for the next: filter, then page.
        status = job.status
        floor = _LEVELS.index(level) if level else 0
        entries: list[LogEntry] = [entry for entry in job.logs if _LEVELS.index(entry["level"]) >= floor]
        answer: dict[str, Any] = {
            "templateID": job.template_id,
            "buildID": job.build_id,
            "status": status,
            "logs": [],
            "logEntries": entries[offset : offset + limit],
        }
        if status == "error" and job.reason is not None:
            answer["reason"] = job.reason
        return JSONResponse(answer)


def _whole(text: str | None, name: str, default: int) -> int:
    if text is None:
        return default
    if not text.isdigit():
        raise HostError(400, f"{name} must be a whole number, not {text!r}")
    return int(text)
