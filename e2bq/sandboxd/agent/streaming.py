"""A streamed HTTP answer for the agent's long calls: Connect server streams and ``/execute``.

Starlette's StreamingResponse costs an anyio task group per answer and sends the end of the body in a
write of its own. Here one task watches for the client leaving, and the piece marked last goes out
together with the end of the body: one write, and the caller sees the end with the last message.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable

from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

# A piece of the body, and whether it is the last one.
Piece = tuple[bytes, bool]


class StreamedAnswer(Response):
    """Sends ``body``'s pieces as they come; calls ``on_gone`` (idempotent) when the client leaves
    or the answer breaks off before its last piece."""

    def __init__(
        self, body: AsyncGenerator[Piece, None], *, media_type: str, on_gone: Callable[[], None]
    ) -> None:
        self.body_iterator = body
        self.on_gone = on_gone
        self.status_code = 200
        self.media_type = media_type
        self.background = None
        self.init_headers()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        watcher = asyncio.create_task(self._watch(receive))
        finished = False
        try:
            start = {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
            await send(start)
            async for data, last in self.body_iterator:
                if last:
                    # Before the last send: that one wakes receive() with a disconnect too.
                    watcher.cancel()
                await send({"type": "http.response.body", "body": data, "more_body": not last})
                if last:
                    finished = True
                    return
            await send({"type": "http.response.body", "body": b""})
            finished = True
        finally:
            watcher.cancel()
            if not finished:
                self.on_gone()
            await self.body_iterator.aclose()  # its clean-up now, not when it is collected

    async def _watch(self, receive: Receive) -> None:
        message: Message = await receive()
        while message["type"] != "http.disconnect":
            message = await receive()
        self.on_gone()
