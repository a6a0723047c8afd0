"""How kernel messages become the lines of ``/execute``, in the shape E2B's interpreter writes them.

Each line is one JSON object with a ``type``: ``stdout``/``stderr`` ``{"text", "timestamp"}``
(an ISO 8601 time, as E2B sends it); ``result`` with one field per MIME type and
``is_main_result``; ``error`` ``{"name", "value", "traceback"}``; ``number_of_executions``
``{"execution_count"}``; and, last, ``end_of_execution``.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

Output = dict[str, Any]
Message = dict[str, Any]

END_OF_EXECUTION: Output = {"type": "end_of_execution"}
# a display_data metadata key: this display is the cell's value, for kernels that cannot send
# execute_result themselves (tslab: see ``languages``)
MAIN_RESULT_MARK = "e2bq_main_result"
_COLOUR = re.compile(r"\x1b\[[0-9;]*m")

# MIME type -> result field; every other MIME type goes under "extra".
RESULT_FIELDS = {
    "text/plain": "text",
    "text/html": "html",
    "text/markdown": "markdown",
    "image/svg+xml": "svg",
    "image/png": "png",
    "image/jpeg": "jpeg",
    "application/pdf": "pdf",
    "text/latex": "latex",
    "application/json": "json",
    "application/javascript": "javascript",
    "e2b/data": "data",
    "e2b/chart": "chart",
}


def result(bundle: dict[str, Any], *, is_main_result: bool) -> Output:
    """A ``result`` line from a display bundle (``execute_result`` or ``display_data`` data)."""
    output: Output = {"type": "result"}
    extra: dict[str, Any] = {}
    for mime, value in bundle.items():
        field = RESULT_FIELDS.get(mime)
        if field is None:
            extra[mime] = value
        else:
            output[field] = value
    text = output.get("text")
    if isinstance(text, str) and len(text) >= 2 and text[0] == text[-1] == "'":
        output["text"] = text[1:-1]  # E2B shows a string result without its quotes
    if extra:
        output["extra"] = extra
    output["is_main_result"] = is_main_result
    return output


def error(name: str, value: str, traceback: list[str] | str) -> Output:
    """An ``error`` line; a traceback given as IPython's list of parts is joined into one string."""
    text = traceback if isinstance(traceback, str) else "\n".join(traceback)
    # colour codes out, as the Python kernel's (JJava colours its tracebacks)
    return {"type": "error", "name": name, "value": value, "traceback": _COLOUR.sub("", text)}


def stream(name: str, text: str, timestamp: datetime.datetime | str | None = None) -> Output:
    """A ``stdout`` or ``stderr`` line."""
    if timestamp is None:
        timestamp = datetime.datetime.now(datetime.UTC)
    if isinstance(timestamp, datetime.datetime):
        timestamp = timestamp.isoformat()
    return {"type": name, "text": text, "timestamp": timestamp}


def from_message(message: Message) -> Output | None:
    """The line an iopub message stands for, or None for messages the SDK has no use for."""
    kind = message["msg_type"]
    content = message["content"]
    if kind == "stream" and content.get("name") in ("stdout", "stderr"):
        return stream(content["name"], content["text"], message["header"].get("date"))
    if kind == "execute_result":
        return result(content["data"], is_main_result=True)
    if kind == "display_data":
        main = bool((content.get("metadata") or {}).get(MAIN_RESULT_MARK))
        return result(content["data"], is_main_result=main)
    if kind == "error":
        return error(content["ename"], content["evalue"], content["traceback"])
    if kind == "execute_input":
        return {"type": "number_of_executions", "execution_count": content["execution_count"]}
    return None
