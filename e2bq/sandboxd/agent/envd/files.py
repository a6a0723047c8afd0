"""envd's plain-HTTP file transfer on the envd port: ``GET /files`` and ``POST /files``.

``GET /files?path=`` answers the file's bytes, streamed from disk (Range requests work too).
``POST /files?path=`` takes a ``multipart/form-data`` body (part ``file``; the part's filename is
the target when there is no ``path`` query; several parts are several files) or an
``application/octet-stream`` body, either optionally ``Content-Encoding: gzip``, and answers
``[{"name", "type": "file", "path", "metadata"?}]``; ``X-Metadata-<key>`` headers set every
uploaded file's metadata (see ``metadata.py``). Errors are ``{"code": <status>, "message"}`` with the status
the SDK maps: 400 bad request, 404 missing, 507 disk full (NotEnoughSpaceException).

Sandboxd checks tokens and signed URLs before proxying here; ``username`` is accepted and ignored
(everything in the sandbox runs as its one user). Downloads are never compressed: identity is
always acceptable, and the bytes only cross a local socket.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from ..config import AgentConfig
from ..errors import ConnectError, HTTPError
from ..paths import resolve
from . import metadata as file_metadata
from .connect import Message
from .upload import MultipartUpload, PendingFile, decoded, http_error


async def _chunks(path: Path, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    with path.open("rb") as handle:
        while chunk := await asyncio.to_thread(handle.read, size):
            yield chunk


def _commit(files: list[PendingFile], metadata: file_metadata.Metadata) -> list[Message]:
    """Put every file in place with ``metadata``; the upload's answer, each file's metadata as
    read back from the disk (envd does not claim what it could not keep)."""
    for index, pending in enumerate(files):
        try:
            pending.commit(metadata)
        except HTTPError:
            _discard(files[index + 1 :])
            raise
    written: list[Message] = []
    for pending in files:
        entry: Message = {"name": pending.path.name, "type": "file", "path": str(pending.path)}
        kept = file_metadata.read(pending.path)
        if kept:
            entry["metadata"] = kept
        written.append(entry)
    return written


def _discard(files: list[PendingFile]) -> None:
    for pending in files:
        pending.discard()


class FilesService:
    """File downloads and uploads of one sandbox."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/files", self._download, methods=["GET"]),
            Route("/files", self._upload, methods=["POST"]),
        ]

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def _query_path(self, request: Request) -> Path | None:
        raw = request.query_params.get("path")
        if not raw:
            return None
        try:
            return resolve(raw, self.config.home)
        except ConnectError as exc:
            raise HTTPError(400, exc.message) from exc

    async def _download(self, request: Request) -> Response:
        try:
            path = self._query_path(request)
            if path is None:
                raise HTTPError(400, "the path query parameter is required")
            st = await asyncio.to_thread(self._readable, path)
        except HTTPError as err:
            return err.response()
        if st.st_size == 0:
            # /proc and /sys files say 0 bytes yet have content: send them without a length
            return StreamingResponse(_chunks(path), media_type="application/octet-stream")
        return FileResponse(path, stat_result=st)

    @staticmethod
    def _readable(path: Path) -> os.stat_result:
        try:
            st = os.stat(path)
        except FileNotFoundError as exc:
            raise HTTPError(404, f"path '{path}' does not exist") from exc
        except OSError as exc:
            raise http_error(exc, "cannot read", path) from exc
        if stat.S_ISDIR(st.st_mode):
            raise HTTPError(400, f"path '{path}' is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise HTTPError(400, f"path '{path}' is not a regular file")
        if not os.access(path, os.R_OK):
            raise HTTPError(403, f"cannot read '{path}': Permission denied")
        return st

    async def _upload(self, request: Request) -> Response:
        files: list[PendingFile] = []
        try:
            metadata = file_metadata.from_headers(request.headers.items())
            await self._receive(request, files)
            written = await asyncio.to_thread(_commit, files, metadata)
        except HTTPError as err:
            await asyncio.to_thread(_discard, files)
            return err.response()
        except ClientDisconnect:
            await asyncio.to_thread(_discard, files)
            return HTTPError(400, "the client went away before the upload was complete").response()
        except BaseException:
            _discard(files)  # cancelled or a bug: never leave staging files behind
            raise
        return JSONResponse(written)

    async def _receive(self, request: Request, files: list[PendingFile]) -> None:
        """Stream the body into ``files`` (appended as they start, so the caller can clean up)."""
        content_type = request.headers.get("content-type", "")
        media_type = content_type.split(";")[0].strip().lower()
        body = decoded(request.stream(), request.headers.get("content-encoding", ""))
        path = self._query_path(request)
        if media_type == "application/octet-stream":
            if path is None:
                raise HTTPError(400, "an octet-stream upload needs the path query parameter")
            pending = await asyncio.to_thread(PendingFile, path)
            files.append(pending)
            async for chunk in body:
                await asyncio.to_thread(pending.write, chunk)
        elif media_type.startswith("multipart/"):
            upload = MultipartUpload(content_type, home=self.config.home, path=str(path) if path else None)
            try:
                async for chunk in body:
                    await upload.feed(chunk)
                upload.finish()
            finally:
                files.extend(upload.files)
        else:
            raise HTTPError(
                400,
                f"unsupported Content-Type '{content_type}'; "
                "use multipart/form-data or application/octet-stream",
            )
