"""Client side of file transfers, and saving images and chart data from execution results."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError, LocalFileNotFoundError, NotFoundError
from ..protocol import DOWNLOAD_FILE, QUEUE_MARGIN, UPLOAD_FILE, TransferArgs
from ..stores.transfer import ChunkPipe, new_transfer_id
from ..types import ChartResult, ErrorResult, ExecutionResult, FileResult, PngResult, TransferResult
from .dispatch import Dispatcher
from .inputs import check_local_path, check_sandbox_path, local_file_errors
from .routing import Route


def upload(
    dispatcher: Dispatcher, sandbox_id: str, local_path: str, sandbox_path: str | None
) -> FileResult | ErrorResult:
    """Stream a local file into the sandbox (``sandbox_path`` defaults to its name, in the home)."""
    source = check_local_path(local_path, "local_path")
    with local_file_errors(source, "read"):
        found = source.is_file()
    if not found:
        raise LocalFileNotFoundError(
            f"no local file at {local_path!r:.200}: give the path of an existing file"
        )
    target = check_sandbox_path(sandbox_path, "sandbox_path") if sandbox_path else source.name
    transfer_id = new_transfer_id()
    pipe = ChunkPipe(dispatcher.settings, transfer_id)
    args = TransferArgs(sandbox_id=sandbox_id, sandbox_path=target, transfer_id=transfer_id)
    route = dispatcher.router.route(args)
    task_id = dispatcher.submit(UPLOAD_FILE, args, route=route)
    chunk_size = dispatcher.settings.transfer_chunk_bytes
    check = _node_check(dispatcher, route)
    try:
        with local_file_errors(source, "read"), source.open("rb") as handle:
            while chunk := handle.read(chunk_size):
                pipe.push(chunk, check=check)
        pipe.close(check=check)
    except Exception as exc:
        pipe.fail(f"the client stopped sending: {exc}")
        with contextlib.suppress(Exception):
            dispatcher.wait(task_id, name=UPLOAD_FILE, timeout=QUEUE_MARGIN, node=route.node)
        pipe.discard()
        raise
    result = dispatcher.wait(
        task_id, name=UPLOAD_FILE, timeout=dispatcher.wait_for(UPLOAD_FILE, args), node=route.node
    )
    pipe.discard()
    return _with_local_path(result, source)


def download(
    dispatcher: Dispatcher, sandbox_id: str, sandbox_path: str, local_path: str | None
) -> FileResult | ErrorResult:
    """Stream a file out of the sandbox to ``local_path`` (defaults to its name, here)."""
    check_sandbox_path(sandbox_path, "sandbox_path")
    name = os.path.basename(sandbox_path.rstrip("/"))
    target = check_local_path(local_path, "local_path") if local_path else Path(name)
    with local_file_errors(target, "written"):
        if target.is_dir():
            target = target / name
        if not name and target.is_dir():
            raise InvalidInputError(f"sandbox_path {sandbox_path!r} names no file: pass a file's path")
        if not target.parent.is_dir():
            raise InvalidInputError(f"the local folder {target.parent} does not exist")
    transfer_id = new_transfer_id()
    pipe = ChunkPipe(dispatcher.settings, transfer_id)
    args = TransferArgs(sandbox_id=sandbox_id, sandbox_path=sandbox_path, transfer_id=transfer_id)
    route = dispatcher.router.route(args)
    task_id = dispatcher.submit(DOWNLOAD_FILE, args, route=route)
    partial = target.with_name(f".{target.name}.{transfer_id[:8]}.part")
    check = _node_check(dispatcher, route)
    try:
        with local_file_errors(target, "written"), partial.open("wb") as handle:
            while (chunk := pipe.pop(timeout=120, check=check)) is not None:
                handle.write(chunk)
    except Exception:
        partial.unlink(missing_ok=True)
        failed = dispatcher.wait(task_id, name=DOWNLOAD_FILE, timeout=QUEUE_MARGIN, node=route.node)
        pipe.discard()
        if failed["status"] == "error":
            return failed
        raise
    result = dispatcher.wait(
        task_id, name=DOWNLOAD_FILE, timeout=dispatcher.wait_for(DOWNLOAD_FILE, args), node=route.node
    )
    pipe.discard()
    if result["status"] != "success":
        partial.unlink(missing_ok=True)
        return result
    with local_file_errors(target, "written"):
        partial.replace(target)
    return _with_local_path(result, target)


def _node_check(dispatcher: Dispatcher, route: Route) -> Callable[[], None] | None:
    """What a transfer runs while it waits for the worker: NodeLostError once the worker's node is
    lost, so that it fails soon, naming the node, instead of stalling out (None: no node)."""
    node = route.node
    return None if node is None else lambda: dispatcher.router.check(node)


def _with_local_path(result: TransferResult | ErrorResult, local: Path) -> FileResult | ErrorResult:
    if result["status"] != "success":
        return result
    return {**result, "local_path": str(local)}


def pick(results: list[ExecutionResult], field: str, index: int) -> ExecutionResult:
    """The ``index``-th result that carries ``field`` (a PNG, a chart)."""
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise InvalidInputError(f"result_index must be a whole number >= 0, not {index!r}")
    matching = [r for r in results if r.get(field) is not None]
    if index >= len(matching):
        raise NotFoundError(
            f"the last execution has {len(matching)} result(s) with {field}; "
            f"result_index {index} is out of range (run code that produces one first)"
        )
    return matching[index]


def save_png(
    results: list[ExecutionResult], index: int, sandbox_id: str, output_path: str | None, agent: Any
) -> PngResult:
    """Save the ``index``-th PNG among ``results`` (default file: ``<sandbox>_result_<index>.png``)
    and give it to ``agent`` when it takes images."""
    result = pick(results, "png", index)
    default = Path(f"{sandbox_id}_result_{index}.png")
    path = check_local_path(output_path, "output_path") if output_path else default
    image_id = uuid.uuid4().hex
    with local_file_errors(path, "written"):
        size = _write_png(result, path)
        attached = _attach_image(agent, path, path.read_bytes(), image_id)
    return {
        "status": "success",
        "sandbox_id": sandbox_id,
        "path": str(path),
        "size": size,
        "result": attached,
        "image_id": image_id,
        "file_url": path.resolve().as_uri(),
    }


def save_chart(
    results: list[ExecutionResult],
    index: int,
    sandbox_id: str,
    output_path: str | None,
    agent: Any,
    *,
    with_image: bool,
) -> ChartResult:
    """Save the ``index``-th chart among ``results`` as JSON (default file:
    ``<sandbox>_chart_<index>.json``); with ``with_image``, its PNG beside it, given to ``agent``."""
    result = pick(results, "chart", index)
    default = Path(f"{sandbox_id}_chart_{index}.json")
    path = check_local_path(output_path, "output_path") if output_path else default
    text = json.dumps(result["chart"], indent=2)
    saved: ChartResult = {
        "status": "success",
        "sandbox_id": sandbox_id,
        "path": str(path),
        "size": len(text),
        "result": result["chart"],
        "chart_path": str(path),
    }
    with local_file_errors(path, "written"):
        path.write_text(text)
        if with_image and result.get("png") is not None:
            image, image_id = path.with_suffix(".png"), uuid.uuid4().hex
            _attach_image(agent, image, image.read_bytes() if _write_png(result, image) else b"", image_id)
            saved["chart_image"] = {
                "image_id": image_id, "file_url": image.resolve().as_uri(), "path": str(image)
            }
    return saved


def _write_png(result: ExecutionResult, path: Path) -> int:
    data = base64.b64decode(result["png"])
    path.write_bytes(data)
    return len(data)


def _attach_image(agent: Any, path: Path, content: bytes, image_id: str) -> bool:
    """Give the image to an agent framework's agent when it can take one (agno's Agent/Team)."""
    if agent is None or not hasattr(agent, "add_image"):
        return False
    try:
        from agno.media import Image

        # agno's Image takes one source (content, filepath or url); the bytes stay valid if the
        # file is moved or deleted.
        agent.add_image(Image(id=image_id, content=content, format="png", mime_type="image/png"))
    except ImportError:
        agent.add_image({"id": image_id, "filepath": str(path), "content": content})
    return True
