"""File operations: bytes stream between the sandbox and a client through a ChunkPipe."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from e2bq.protocol import TransferArgs
from e2bq.stores.transfer import ChunkPipe
from e2bq.types import TransferResult

from .operations import Context
from .translate import translate


async def upload_file(ctx: Context, args: TransferArgs) -> TransferResult:
    """Write the chunks a client sends to ``sandbox_path`` in the sandbox."""
    sandbox_id, sandbox_path = args["sandbox_id"], args["sandbox_path"]
    pipe = ChunkPipe(ctx.settings, args["transfer_id"])
    size = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal size
        while (chunk := await asyncio.to_thread(pipe.pop)) is not None:
            size += len(chunk)
            yield chunk

    try:
        sandbox = await ctx.loop.sandbox(sandbox_id)
        info = await sandbox.files.write(sandbox_path, chunks())
    except BaseException as exc:
        await asyncio.to_thread(pipe.fail, f"the upload failed: {exc}")
        raise
    return {"status": "success", "sandbox_id": sandbox_id, "sandbox_path": info.path, "size": size}


async def download_file(ctx: Context, args: TransferArgs) -> TransferResult:
    """Send the file at ``sandbox_path`` to the client in chunks."""
    sandbox_id, sandbox_path = args["sandbox_id"], args["sandbox_path"]
    pipe = ChunkPipe(ctx.settings, args["transfer_id"])
    limit = ctx.settings.transfer_chunk_bytes
    size = 0
    try:
        sandbox = await ctx.loop.sandbox(sandbox_id)
        stream = await sandbox.files.read(sandbox_path, format="stream")
        async for piece in stream:
            for start in range(0, len(piece), limit):
                chunk = bytes(piece[start : start + limit])
                await asyncio.to_thread(pipe.push, chunk)
                size += len(chunk)
        await asyncio.to_thread(pipe.close)
    except Exception as exc:
        await asyncio.to_thread(pipe.fail, str(translate(exc, sandbox_id)))
        raise
    except asyncio.CancelledError:
        await asyncio.to_thread(pipe.fail, "the download was cancelled")
        raise
    return {"status": "success", "sandbox_id": sandbox_id, "sandbox_path": sandbox_path, "size": size}
