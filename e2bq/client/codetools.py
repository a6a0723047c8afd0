"""The code tools: run Python in one sandbox, in the background, in every sandbox, over a pool."""

from __future__ import annotations

import time

from ..callbacks import notify_fields
from ..errors import E2BQError
from ..protocol import DEFAULT_CODE_TIMEOUT, RUN_CODE, RUN_CODE_EACH, RunCodeArgs, RunCodeEachArgs
from ..types import (
    AcceptedResult,
    CodeResult,
    ErrorResult,
    FanOutResult,
    MapAcceptedResult,
)
from .calls import tool
from .core import ToolkitCore
from .inputs import check_text, check_timeout

_FAN_OUT_CHUNK = 100  # sandboxes per fan-out task (one node's, or E2B cloud's spread over workers)


class CodeTools(ToolkitCore):
    @tool
    def run_python_code(
        self, code: str, sandbox_id: str | None = None, timeout: int | None = None
    ) -> CodeResult | ErrorResult:
        """Execute Python code synchronously in a sandbox; state persists between calls.

        Returns results (display data and the last expression, by MIME type), logs, and error.
        """
        check_text(code, "code")
        check_timeout(timeout)
        target = self._target(sandbox_id)
        args = RunCodeArgs(
            sandbox_id=target.sandbox_id, code=code, job=False, timeout=float(timeout or DEFAULT_CODE_TIMEOUT)
        )
        result = self.dispatcher.call(RUN_CODE, args)
        if "results" in result:
            self._last_results[target.sandbox_id] = result["results"]
        return target.noted(result)

    @tool
    def run_python_code_background(
        self,
        code: str,
        sandbox_id: str | None = None,
        job_id: str | None = None,
        callback_url: str | None = None,
        on_done: str | None = None,
        on_done_queue: str | None = None,
    ) -> AcceptedResult:
        """Execute Python code as a background job; returns its job_id at once.

        When it ends, its final status is POSTed, signed, to callback_url and sent to the Celery
        task named on_done (on on_done_queue, else Celery's default queue), if given; wait_job
        waits for the end.
        """
        check_text(code, "code")
        notify = notify_fields(self.settings, callback_url, on_done, on_done_queue)
        target = self._target(sandbox_id)
        args = RunCodeArgs(sandbox_id=target.sandbox_id, code=code, job=True)
        return target.noted(self._submit_job("code", RUN_CODE, args, job_id, notify))

    @tool
    def run_in_all_sandboxes(self, code: str, timeout_each: int | None = None) -> FanOutResult:
        """Run code in every managed sandbox at once; a result per sandbox id (under both result
        and results).

        One task goes to each node, which runs the code in all of its sandboxes concurrently.
        """
        check_text(code, "code")
        check_timeout(timeout_each, "timeout_each")
        limit = float(timeout_each or DEFAULT_CODE_TIMEOUT)
        entries = self.registry.list(self.manager.namespace)
        by_node: dict[str | None, list[str]] = {}
        for entry in entries:
            by_node.setdefault(entry.get("node"), []).append(entry["sandbox_id"])
        outcome: dict[str, CodeResult | ErrorResult] = {}
        sent: list[tuple[str, str | None, list[str]]] = []
        for node, ids in by_node.items():
            for part in _chunks(ids, _FAN_OUT_CHUNK):
                try:
                    route = self.manager.router.to_node(node)
                    args = RunCodeEachArgs(sandbox_ids=part, code=code, timeout=limit)
                    sent.append((self.dispatcher.submit(RUN_CODE_EACH, args, route=route), node, part))
                except E2BQError as exc:
                    outcome.update({sid: _failed(sid, exc) for sid in part})
        until = time.monotonic() + self.dispatcher.wait_for(RUN_CODE_EACH, RunCodeEachArgs(
            sandbox_ids=[], code=code, timeout=limit
        ))
        for task_id, node, part in sent:
            try:
                remaining = max(0.1, until - time.monotonic())
                each = self.dispatcher.wait(task_id, name=RUN_CODE_EACH, timeout=remaining, node=node)
            except E2BQError as exc:
                outcome.update({sid: _failed(sid, exc) for sid in part})
                continue
            if each["status"] == "success":
                outcome.update(each["results"])
            else:
                outcome.update({sid: {**each, "sandbox_id": sid} for sid in part})
        missing = "its node's worker returned no result for it"
        ordered = {
            sid: outcome.get(sid) or {"status": "error", "sandbox_id": sid, "message": missing}
            for sid in (entry["sandbox_id"] for entry in entries)
        }
        succeeded = sum(1 for result in ordered.values() if result["status"] == "success")
        return {
            "status": "success",
            "result": ordered,
            "results": ordered,
            "message": f"{succeeded} of {len(ordered)} succeeded",
        }

    @tool
    def map_python_code(
        self,
        codes: list[str],
        pool_size: int = 10,
        timeout_each: int | None = None,
        retries: int = 1,
        job_id: str | None = None,
        callback_url: str | None = None,
        on_done: str | None = None,
        on_done_queue: str | None = None,
    ) -> MapAcceptedResult:
        """Run each code string in a pool of at most pool_size new sandboxes, as one background job.

        Returns its job_id at once; get_job_status shows progress (total, done, failed),
        get_job_results the per-item results in input order, kill_job stops every item. A sandbox
        runs item after item, so state (variables, imports, files) carries from one item to the
        next in the same sandbox; an item whose sandbox died is run again on a fresh one, up to
        retries times. The pool's sandboxes are spread over the nodes and shut down at the end.
        callback_url, on_done and on_done_queue: as for run_python_code_background, for the map's end.
        """
        notify = notify_fields(self.settings, callback_url, on_done, on_done_queue)
        return self.maps.submit(
            codes,
            pool_size=pool_size,
            timeout_each=timeout_each,
            retries=retries,
            job_id=job_id,
            notify=notify,
        )


def _chunks(ids: list[str], size: int) -> list[list[str]]:
    return [ids[start : start + size] for start in range(0, len(ids), size)]


def _failed(sandbox_id: str, exc: E2BQError) -> ErrorResult:
    return {"status": "error", "sandbox_id": sandbox_id, "message": str(exc)}
