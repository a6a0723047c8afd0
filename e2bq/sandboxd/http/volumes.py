"""E2B's volumes: the control plane (``/volumes``, ``X-API-KEY``) and the volume content API
(``/volumecontent/{id}/...``, ``Authorization: Bearer <the volume's token>``).

The SDK sends content requests to ``E2B_VOLUME_API_URL`` (else ``https://api.<E2B_DOMAIN>``):
point it at sandboxd's own address, as ``E2B_API_URL``. A volume in use by a sandbox (running or
paused, or being created) is not destroyed: 409. Taking it away from a running jail would leave
that sandbox's code writing into a folder that no longer exists, and its files would vanish
under it; kill the sandboxes first.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from ..errors import HostError
from ..lifecycle.sandboxes import SandboxHost
from ..volumes.content import VolumeContent, os_error, read_chunks
from ..volumes.store import Volume
from .control import _json_body, error

Endpoint = Callable[[Request], Awaitable[Response]]
_MAX_ID = 0xFFFFFFFE
_WRITE_BATCH = 1 << 20  # bytes gathered before one write in a worker thread


def _int_param(value: Any, name: str, top: int) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = -1
    if isinstance(value, bool) or not 0 <= number <= top:
        raise HostError(400, f"{name} must be a whole number from 0 to {top}, not {value!r}")
    return number


def _metadata(source: Any) -> tuple[int | None, tuple[int, int] | None]:
    """(mode, (uid, gid)) from query parameters or a PATCH body; a lone uid or gid keeps the other."""
    mode = _int_param(source.get("mode"), "mode", 0o777)
    uid = _int_param(source.get("uid"), "uid", _MAX_ID)
    gid = _int_param(source.get("gid"), "gid", _MAX_ID)
    if uid is None and gid is None:
        return mode, None
    return mode, (-1 if uid is None else uid, -1 if gid is None else gid)


def _path(request: Request) -> str:
    path = request.query_params.get("path")
    if path is None:
        raise HostError(400, "the 'path' query parameter is required")
    return path


class VolumeRoutes:
    def __init__(self, host: SandboxHost) -> None:
        self.host = host
        self.store = host.volumes

    def routes(self) -> list[BaseRoute]:
        key, token = self._key, self._token
        return [
            Route("/volumes", key(self.create), methods=["POST"]),
            Route("/volumes", key(self.list), methods=["GET"]),
            Route("/volumes/{volume_id}", key(self.info), methods=["GET"]),
            Route("/volumes/{volume_id}", key(self.destroy), methods=["DELETE"]),
            Route("/volumecontent/{volume_id}/path", token(self.stat), methods=["GET"]),
            Route("/volumecontent/{volume_id}/path", token(self.update), methods=["PATCH"]),
            Route("/volumecontent/{volume_id}/path", token(self.remove), methods=["DELETE"]),
            Route("/volumecontent/{volume_id}/dir", token(self.list_dir), methods=["GET"]),
            Route("/volumecontent/{volume_id}/dir", token(self.make_dir), methods=["POST"]),
            Route("/volumecontent/{volume_id}/file", token(self.read), methods=["GET"]),
            Route("/volumecontent/{volume_id}/file", token(self.write), methods=["PUT"]),
        ]

    @staticmethod
    async def _answer(endpoint: Endpoint, request: Request) -> Response:
        try:
            return await endpoint(request)
        except HostError as exc:
            return error(exc.status, exc.message)

    def _key(self, endpoint: Endpoint) -> Endpoint:
        async def guarded(request: Request) -> Response:
            key = request.headers.get("x-api-key", "")
            if not hmac.compare_digest(key.encode(), self.host.settings.api_key.encode()):
                return error(401, "Invalid API key: send this host's key in X-API-KEY")
            return await self._answer(endpoint, request)

        return guarded

    def _token(self, endpoint: Endpoint) -> Endpoint:
        """The volume's own token, and nothing else, opens its content (404 for an unknown id)."""

        async def guarded(request: Request) -> Response:
            volume = self.store.volumes.get(request.path_params["volume_id"])
            scheme, _, given = request.headers.get("authorization", "").partition(" ")
            if volume is None:
                return error(404, f"volume {request.path_params['volume_id']} not found")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), volume.token.encode()):
                return error(401, "Invalid volume token: send its Volume.create/connect token as Bearer")
            request.state.volume = volume
            return await self._answer(endpoint, request)

        return guarded

    # -- control plane ---------------------------------------------------------------------------

    async def create(self, request: Request) -> Response:
        body = await _json_body(request)
        name = body.get("name")
        if not isinstance(name, str):
            raise HostError(400, "a volume needs a 'name' (a string)")
        volume = await asyncio.to_thread(self.store.create, name)
        return JSONResponse(volume.with_token(), status_code=201)

    async def list(self, _: Request) -> Response:
        return JSONResponse([volume.info() for volume in self.store.all()])

    async def info(self, request: Request) -> Response:
        return JSONResponse(self.store.get(request.path_params["volume_id"]).with_token())

    async def destroy(self, request: Request) -> Response:
        volume = self.store.get(request.path_params["volume_id"])
        users = sorted(
            s.sandbox_id for s in self.host.sandboxes.values()
            if any(m["name"] == volume.name for m in s.volume_mounts)
        )
        if users or self.store.claimed(volume.volume_id):
            raise HostError(
                409,
                f"volume {volume.name!r} is mounted by sandbox(es) {', '.join(users) or 'being created'}: "
                "kill them first",
            )
        await asyncio.to_thread(self.store.destroy, volume.volume_id)
        return Response(status_code=204)

    # -- content -----------------------------------------------------------------------------------

    def _content(self, request: Request) -> VolumeContent:
        volume: Volume = request.state.volume
        return VolumeContent(self.store.data(volume))

    async def stat(self, request: Request) -> Response:
        entry = await asyncio.to_thread(self._content(request).stat, _path(request))
        return JSONResponse(entry)

    async def list_dir(self, request: Request) -> Response:
        depth = _int_param(request.query_params.get("depth", "1"), "depth", 64)
        if not depth:
            raise HostError(400, "depth must be 1 or more")
        entries = await asyncio.to_thread(self._content(request).listing, _path(request), depth)
        return JSONResponse(entries)

    async def make_dir(self, request: Request) -> Response:
        mode, owner = _metadata(request.query_params)
        force = request.query_params.get("force", "false").lower() == "true"
        content = self._content(request)
        entry = await asyncio.to_thread(
            lambda: content.make_dir(_path(request), mode=mode, owner=owner, force=force)
        )
        return JSONResponse(entry, status_code=201)

    async def update(self, request: Request) -> Response:
        mode, owner = _metadata(await _json_body(request))
        content = self._content(request)
        entry = await asyncio.to_thread(lambda: content.update(_path(request), mode=mode, owner=owner))
        return JSONResponse(entry)

    async def remove(self, request: Request) -> Response:
        await asyncio.to_thread(self._content(request).remove, _path(request))
        return Response(status_code=204)

    async def read(self, request: Request) -> Response:
        handle = await asyncio.to_thread(self._content(request).open_read, _path(request))
        return StreamingResponse(read_chunks(handle), media_type="application/octet-stream")

    async def write(self, request: Request) -> Response:
        path = _path(request)
        mode, owner = _metadata(request.query_params)
        content = self._content(request)
        handle = await asyncio.to_thread(lambda: content.open_write(path, mode=mode, owner=owner))
        try:
            with handle:
                batch = bytearray()
                async for chunk in request.stream():
                    batch += chunk
                    if len(batch) >= _WRITE_BATCH:
                        await asyncio.to_thread(handle.write, bytes(batch))
                        batch.clear()
                if batch:
                    await asyncio.to_thread(handle.write, bytes(batch))
        except OSError as exc:
            await asyncio.to_thread(content.discard, path)
            raise os_error(exc, path) from exc
        return JSONResponse(await asyncio.to_thread(content.stat, path), status_code=201)
