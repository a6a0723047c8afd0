"""Streaming uploads for ``POST /files``: bodies go to disk chunk by chunk, never whole in memory.

Each file is written to a hidden file beside its target and renamed over the target only when the
whole request succeeded, so a failed or interrupted upload leaves no half-written file (parent
directories it created stay). A target that is a symlink is written through to the file it names,
as envd does; an existing file keeps its permission bits.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import stat
import uuid
import zlib
from collections.abc import AsyncIterator, Mapping
from io import BufferedWriter
from pathlib import Path
from typing import TYPE_CHECKING

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from ..errors import ConnectError, HTTPError
from ..paths import resolve
from . import metadata as file_metadata

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

STAGING_PREFIX = ".e2bq-upload-"  # files being uploaded, renamed over their target when done
_INFLATE_CHUNK = 256 * 1024
_STATUS = {
    errno.ENOENT: 404,
    errno.EACCES: 403,
    errno.EPERM: 403,
    errno.EROFS: 403,
    errno.ENOTDIR: 400,
    errno.EISDIR: 400,
    errno.EEXIST: 400,
    errno.ENAMETOOLONG: 400,
    errno.ELOOP: 400,
    errno.EINVAL: 400,
    errno.ENOSPC: 507,
    errno.EDQUOT: 507,
}


def http_error(exc: OSError, action: str, path: Path | str) -> HTTPError:
    """HTTPError for an OS error; 507 when the disk is full (SDK: NotEnoughSpaceException)."""
    status = _STATUS.get(exc.errno or 0, 500)
    reason = exc.strerror or str(exc)
    if status == 507:
        reason = f"not enough disk space available ({reason})"
    return HTTPError(status, f"{action} '{path}': {reason}")


class PendingFile:
    """One uploaded file: written beside ``path`` and renamed over it by :meth:`commit`.

    Every method blocks; call them from a worker thread.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._final = Path(os.path.realpath(path))
        if self._final.is_dir():
            raise HTTPError(400, f"path '{path}' is a directory")
        try:
            os.makedirs(self._final.parent, exist_ok=True)
        except FileExistsError as exc:  # a file where a parent directory should be
            raise HTTPError(400, f"cannot write '{path}': a parent is not a directory") from exc
        except OSError as exc:
            raise http_error(exc, "cannot create the parent directories of", path) from exc
        self._staging = self._final.with_name(f"{STAGING_PREFIX}{uuid.uuid4().hex[:16]}")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        try:
            fd = os.open(self._staging, flags, 0o666)
        except OSError as exc:
            raise http_error(exc, "cannot write", path) from exc
        self._file: BufferedWriter = os.fdopen(fd, "wb")

    def write(self, data: bytes) -> None:
        try:
            self._file.write(data)
        except OSError as exc:
            raise http_error(exc, "cannot write", self.path) from exc

    def commit(self, metadata: Mapping[str, str] | None = None) -> None:
        """Put the file in place (keeping an existing target's permission bits and owner), with
        ``metadata`` as its whole set of user metadata (a new file has none to clear)."""
        try:
            if metadata:
                self._file.flush()
                file_metadata.write(self._file.fileno(), metadata, self.path)
            self._file.close()
            with contextlib.suppress(FileNotFoundError):
                previous = os.stat(self._final)
                os.chmod(self._staging, stat.S_IMODE(previous.st_mode))
                with contextlib.suppress(PermissionError):
                    os.chown(self._staging, previous.st_uid, previous.st_gid)
            os.replace(self._staging, self._final)
        except OSError as exc:
            self.discard()
            raise http_error(exc, "cannot write", self.path) from exc

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(OSError):
            os.unlink(self._staging)


async def decoded(chunks: AsyncIterator[bytes], encoding: str) -> AsyncIterator[bytes]:
    """The request body undone of its ``Content-Encoding`` (identity or gzip), in bounded pieces."""
    encoding = encoding.split(";")[0].strip().lower()
    if encoding in ("", "identity"):
        async for chunk in chunks:
            if chunk:
                yield chunk
        return
    if encoding != "gzip":
        raise HTTPError(400, f"unsupported Content-Encoding '{encoding}'; use gzip or none")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    fed = False
    async for chunk in chunks:
        data = chunk
        while data:
            fed = True
            try:
                out = inflater.decompress(data, _INFLATE_CHUNK)
            except zlib.error as exc:
                raise HTTPError(400, f"the body is not valid gzip: {exc}") from exc
            if out:
                yield out
            if inflater.eof:  # a gzip member ended; another may follow
                data = inflater.unused_data
                inflater, fed = zlib.decompressobj(16 + zlib.MAX_WBITS), False
            else:
                data = inflater.unconsumed_tail
    if fed and not inflater.eof:
        raise HTTPError(400, "the gzip body ended before its end")


class MultipartUpload:
    """Files from a ``multipart/form-data`` body, streamed to :class:`PendingFile`s.

    Parts named ``file`` are files; the target is the ``path`` query if given, else the part's
    filename (a path, relative ones to ``home``). Other parts are ignored, as envd does.
    """

    def __init__(self, content_type: str, *, home: Path, path: str | None) -> None:
        _, options = parse_options_header(content_type)
        boundary = options.get(b"boundary")
        if not boundary:
            raise HTTPError(400, "the multipart Content-Type has no boundary")
        self.files: list[PendingFile] = []
        self._home = home
        self._path = path
        # What the parser found, in order: a part's headers, a piece of its data, None at its end.
        self._events: list[dict[str, bytes] | bytes | None] = []
        self._field = bytearray()
        self._value = bytearray()
        self._headers: dict[str, bytes] = {}
        self._ended = False
        self._current: PendingFile | None = None
        callbacks: MultipartCallbacks = {
            "on_part_begin": self._on_part_begin,
            "on_header_field": lambda data, start, end: self._field.extend(data[start:end]),
            "on_header_value": lambda data, start, end: self._value.extend(data[start:end]),
            "on_header_end": self._on_header_end,
            "on_headers_finished": lambda: self._events.append(dict(self._headers)),
            "on_part_data": lambda data, start, end: self._events.append(bytes(data[start:end])),
            "on_part_end": lambda: self._events.append(None),
            "on_end": self._on_end,
        }
        try:
            self._parser = MultipartParser(boundary, callbacks)
        except FormParserError as exc:
            raise HTTPError(400, f"invalid multipart body: {exc}") from exc

    def _on_part_begin(self) -> None:
        self._headers = {}

    def _on_header_end(self) -> None:
        self._headers[self._field.decode("latin-1").lower()] = bytes(self._value)
        self._field.clear()
        self._value.clear()

    def _on_end(self) -> None:
        self._ended = True

    async def feed(self, chunk: bytes) -> None:
        try:
            self._parser.write(chunk)
        except FormParserError as exc:
            raise HTTPError(400, f"invalid multipart body: {exc}") from exc
        events, self._events = self._events, []
        for event in events:
            if isinstance(event, dict):
                self._current = await self._begin_part(event)
            elif event is None:
                self._current = None
            elif self._current is not None:
                await asyncio.to_thread(self._current.write, event)

    def finish(self) -> None:
        if not self._ended:
            raise HTTPError(400, "the multipart body ended before its closing boundary")

    async def _begin_part(self, headers: dict[str, bytes]) -> PendingFile | None:
        _, options = parse_options_header(headers.get("content-disposition", b""))
        if options.get(b"name") != b"file":
            return None
        raw = self._path
        if raw is None:
            filename = options.get(b"filename")
            if not filename:
                raise HTTPError(400, "a file part needs a filename (its path) or a path query")
            try:
                raw = filename.decode()
            except UnicodeDecodeError as exc:
                raise HTTPError(400, "the part's filename is not valid UTF-8") from exc
        try:
            target = resolve(raw, self._home)
        except ConnectError as exc:
            raise HTTPError(400, exc.message) from exc
        if any(pending.path == target for pending in self.files):
            raise HTTPError(400, f"the upload names '{target}' more than once")
        pending = await asyncio.to_thread(PendingFile, target)
        self.files.append(pending)
        return pending
