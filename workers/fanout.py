"""A node's part of a fan-out: the same code in each of its sandboxes at once, on the SDK loop.

One task per node carries every sandbox of that node, so a fan-out over a hundred sandboxes holds
one worker thread per node rather than a hundred; each sandbox's call succeeds or fails on its own,
and a paused sandbox is resumed for it, as for any call.
"""

from __future__ import annotations

import asyncio

from e2bq.protocol import RUN_CODE, RunCodeArgs, RunCodeEachArgs
from e2bq.types import CodeResult, EachResult, ErrorResult

from .operations import Context, run_code
from .runner import error_result, on_running


async def run_code_each(ctx: Context, args: RunCodeEachArgs) -> EachResult:
    """Run ``args["code"]`` in every sandbox of ``args["sandbox_ids"]`` concurrently, each within
    the task's deadline (the protocol's, from ``args["timeout"]``)."""

    async def one(sandbox_id: str) -> CodeResult | ErrorResult:
        call = RunCodeArgs(sandbox_id=sandbox_id, code=args["code"], job=False)
        try:
            return await on_running(ctx, RUN_CODE, run_code, call, sandbox_id)  # a paused one resumed first
        except Exception as exc:
            return error_result(RUN_CODE, exc, sandbox_id, ctx)

    ids = list(dict.fromkeys(args["sandbox_ids"]))
    outcomes = await asyncio.gather(*(one(sandbox_id) for sandbox_id in ids))
    return {"status": "success", "results": dict(zip(ids, outcomes, strict=True))}
