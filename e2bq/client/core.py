"""What every tool of the toolkit stands on: its stores, its default sandbox, its jobs' submission.

The tools themselves are grouped by subject in the ``*tools`` modules beside this one; each group is
a subclass of :class:`ToolkitCore`, and :class:`~e2bq.client.toolkit.E2BToolkit` combines them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from ..errors import E2BQError, InvalidInputError, NotFoundError
from ..protocol import RunCodeArgs, RunCommandArgs, Task
from ..stores.events import JobEvents
from ..stores.jobs import JobStore
from ..stores.nodes import made_state
from ..stores.output import JobOutput
from ..types import AcceptedResult, ExecutionResult, JobKind, JobRecord
from .batchmap import MapJobs
from .calls import Target
from .inputs import check_id, is_id
from .manager import SandboxManager
from .tools import Toolkit

J = TypeVar("J", RunCodeArgs, RunCommandArgs)  # the arguments of tasks that run as jobs
T = TypeVar("T")
R = TypeVar("R")


class ToolkitCore(Toolkit):
    """The toolkit's state and the steps its tools share.

    ``global_workers`` bounds how many calls this client has in flight at once where one tool
    makes many (shutdown_all_sandboxes, force_shutdown_all); the work itself runs on however many
    workers serve the queue.
    """

    hidden_parameters = frozenset({"agent"})

    def __init__(
        self,
        sandbox_manager: SandboxManager,
        auto_create_default: bool = True,
        global_workers: int = 10,
        **kwargs: Any,
    ) -> None:
        if not isinstance(sandbox_manager, SandboxManager):
            raise InvalidInputError(
                f"sandbox_manager must be an e2bq SandboxManager, not {type(sandbox_manager).__name__}"
            )
        if isinstance(global_workers, bool) or not isinstance(global_workers, int) or global_workers < 1:
            raise InvalidInputError(f"global_workers must be a whole number >= 1, not {global_workers!r:.80}")
        self.manager = sandbox_manager
        self.settings = sandbox_manager.settings
        self.dispatcher = sandbox_manager.dispatcher
        self.registry = sandbox_manager.registry
        self.jobs = JobStore(self.settings, self.registry.redis)
        self.events = JobEvents(self.settings, self.registry.redis)
        self.maps = MapJobs(self.manager, self.jobs)
        self.output = JobOutput(self.settings)
        self.global_workers = global_workers
        self._last_results: dict[str, list[ExecutionResult]] = {}  # run_python_code's, per sandbox
        super().__init__(name=kwargs.pop("name", "e2b_tools"), tools=self._tool_methods(), **kwargs)
        if auto_create_default:
            self.ensure_default()

    def ensure_default(self) -> None:
        """Make a default sandbox unless a live one exists (what ``auto_create_default`` does)."""
        if self._live_default() is None:
            self.manager.create(set_default=True)

    def _tool_methods(self) -> list[Callable[..., Any]]:
        """The methods offered as tools (E2BToolkit lists them)."""
        return []

    # -- the default sandbox -------------------------------------------------------------------

    @property
    def default_sandbox_id(self) -> str | None:
        """The sandbox calls without a sandbox_id use (None: there is none, or it is gone).

        Shared by every toolkit on the same Redis and namespace; assigning a managed sandbox's id
        makes it the default, as set_default_sandbox does."""
        return self._live_default()

    @default_sandbox_id.setter
    def default_sandbox_id(self, sandbox_id: str | None) -> None:
        if sandbox_id is None:
            self.registry.clear_default(self.manager.namespace)
            return
        if self.registry.get(check_id(sandbox_id, "sandbox_id")) is None:
            raise NotFoundError(f"sandbox {sandbox_id} is not managed here: connect_to_sandbox first")
        self.registry.set_default(self.manager.namespace, sandbox_id)

    def _live_default(self) -> str | None:
        """The default sandbox, unless it expired, was killed, or its node is lost."""
        default = self.registry.default_sandbox(self.manager.namespace, self.manager.nodes.key)
        if default is None or not default.live:
            return None
        if default.heartbeat is not None:
            self.manager.router.seen(default.heartbeat)  # the call's route needs no second look at the node
            node = self.manager.nodes.info(default.heartbeat, placed=0)
            # a paused sandbox outlives its host's restarts (kept on disk): only its node lost ends it
            restarted = not default.paused and made_state(default.node_started_at, node) == "lost"
            if node["state"] == "lost" or restarted:
                return None
        return default.sandbox_id

    def _default_or(self, sandbox_id: str | None) -> str:
        """``sandbox_id``, else the default sandbox's id, even when that sandbox is gone."""
        if sandbox_id is not None:
            return check_id(sandbox_id, "sandbox_id")
        default = self.registry.default(self.manager.namespace)
        if default is None:
            raise NotFoundError("no sandbox_id given and no default sandbox is set")
        return default

    def _target(self, sandbox_id: str | None) -> Target:
        """The sandbox to use: ``sandbox_id``, else the default one (made anew if it is gone)."""
        if sandbox_id is not None:
            return Target(check_id(sandbox_id, "sandbox_id"))
        default = self._live_default()
        if default is not None:
            return Target(default)
        gone = self.registry.default(self.manager.namespace)
        if gone is None:
            raise NotFoundError(
                "no default sandbox: pass sandbox_id, or create one with create_sandbox(set_as_default=True)"
            )
        replacement = self.manager.create(set_default=True).sandbox_id
        return Target(
            replacement,
            note=f"the default sandbox {gone} was gone (killed, expired, or its node lost); "
            f"a new default sandbox {replacement} replaces it (its state starts empty).",
        )

    # -- jobs ----------------------------------------------------------------------------------

    def _submit_job(
        self,
        kind: JobKind,
        task: Task[J, Any],
        args: J,
        job_id: str | None,
        notify: Mapping[str, str] | None = None,
    ) -> AcceptedResult:
        """Record a job and queue its task (the task id is the job id); ``notify``: its end's
        callback and on_done task (``e2bq.callbacks``)."""
        job_id = uuid.uuid4().hex if job_id is None else check_id(job_id, "job_id")
        sandbox_id = args["sandbox_id"]
        route = self.manager.router.route(args)
        self.jobs.create(
            job_id, kind, sandbox_id, self.manager.namespace, route.node, args=args, notify=notify
        )
        try:
            self.dispatcher.submit(task, args, task_id=job_id, route=route)
        except E2BQError as exc:
            self.jobs.finish(job_id, "error", None, str(exc))
            raise
        return {"status": "accepted", "job_id": job_id, "sandbox_id": sandbox_id}

    def _job(self, job_id: object) -> JobRecord | None:
        """The job's record, after ending it if its worker is gone (so none reads ``running`` forever,
        even when no worker is left to reap it)."""
        if not is_id(job_id):
            return None
        self.jobs.end_if_lost(job_id)
        return self.jobs.get(job_id)

    def _each(self, call: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """``call`` on every item, at most ``global_workers`` at once, results in the items' order."""
        items = list(items)
        if len(items) <= 1:
            return [call(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self.global_workers, len(items))) as pool:
            return list(pool.map(call, items))
