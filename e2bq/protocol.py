"""The task protocol: every task's stable name, its arguments and its result, and its time bounds.

A task is a ``Task[Args, Result]``: its name — a ``str``, and all that Celery, Flower and the broker
ever see — typed with the TypedDict of its arguments and the result of its operation (any task may
instead return an :class:`~e2bq.types.ErrorResult`). Clients send tasks by these names; workers
register them under the same names.

``job`` in the arguments of code and command tasks is the one flag that makes a call a background
job: the task id is then the job id, the job store records the job, and nobody waits for the task.

:func:`deadline` is the only place that says how long a task may take: the worker stops work at its
``stop``, a caller waits for its result until its ``wait``; both sides call it with the same
arguments, so neither mirrors the other's arithmetic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Generic, NotRequired, TypedDict, TypeVar

from .config import Settings
from .errors import InvalidInputError
from .types import (
    AccountListResult,
    CancelResult,
    CodeResult,
    CommandResult,
    EachResult,
    ForkResult,
    LanesResult,
    PauseResult,
    PortResult,
    ResumeResult,
    SandboxEntryResult,
    ShutdownResult,
    SnapshotDeleteResult,
    SnapshotListResult,
    SnapshotResult,
    TimeoutResult,
    TransferResult,
    UrlResult,
)

A = TypeVar("A", bound=Mapping[str, object], contravariant=True)
R = TypeVar("R", covariant=True)


class Task(str, Generic[A, R]):
    """A task's stable name, typed with its arguments ``A`` and its operation's result ``R``.

    It is the name itself, so it goes wherever Celery expects a name; the type parameters let mypy
    check every call site's arguments (``dispatcher.call(RUN_CODE, RunCodeArgs(...))``).
    """

    __slots__ = ()


# -- arguments -----------------------------------------------------------------------------------


class PlacementArgs(TypedDict):
    """The slot a client reserved for a create on a node (``e2bq.stores.nodes``)."""

    node: str
    reservation: str


class CreateSandboxArgs(TypedDict):
    timeout: int  # the sandbox's lifetime, seconds
    metadata: dict[str, str]
    namespace: str
    set_default: bool
    options: dict[str, Any]  # the manager's default_options, for the SDK's create (template, envs, ...)
    placement: NotRequired[PlacementArgs]  # on a local cluster: the node's slot it takes
    create_wait: NotRequired[float]  # seconds it may wait for the provider's creation budget


class ConnectSandboxArgs(TypedDict):
    sandbox_id: str
    namespace: str  # adopts the sandbox into this namespace when the registry does not know it


class KillSandboxArgs(TypedDict):
    sandbox_id: str


class ListSandboxesArgs(TypedDict):
    """Every sandbox the provider runs (a node's sandbox host, or E2B's cloud for the API key)."""

    node: str | None  # the node asked, for the listing's entries (None: E2B's cloud)


class SetTimeoutArgs(TypedDict):
    sandbox_id: str
    timeout: int  # seconds from now until the sandbox ends


class PauseSandboxArgs(TypedDict):
    sandbox_id: str
    keep_memory: bool  # False: a filesystem-only pause (its processes end, its files stay)


class ResumeSandboxArgs(TypedDict):
    sandbox_id: str
    timeout: int | None  # seconds it lives from the resume (None: what it had left when paused)


class ForkSandboxArgs(TypedDict):
    sandbox_id: str
    count: int  # forks to make (the worker asks the provider in batches of at most 20)
    timeout: int  # each fork's lifetime, seconds
    metadata: dict[str, str]  # each fork's, beside its ``forked_from``
    namespace: str  # the registry namespace the forks are recorded in


class CreateSnapshotArgs(TypedDict):
    sandbox_id: str
    name: str | None


class ListSnapshotsArgs(TypedDict):
    """The snapshots one node's sandbox host keeps (or E2B's cloud's)."""

    node: str | None  # the node asked, for the listing's entries (None: E2B's cloud)
    source: str | None  # only those taken of this sandbox (None: all)


class DeleteSnapshotArgs(TypedDict):
    snapshot_id: str


class RunCodeArgs(TypedDict):
    sandbox_id: str
    code: str
    job: bool
    timeout: NotRequired[float | None]  # seconds; absent or None: DEFAULT_CODE_TIMEOUT (a job: none)
    takeover: NotRequired[int]  # a job's message sent again to take it over from a lost worker


class RunCodeEachArgs(TypedDict):
    """One node's part of a fan-out: the same code in each of its sandboxes, all at once."""

    sandbox_ids: list[str]
    code: str
    timeout: NotRequired[float | None]  # seconds, for each; absent or None: DEFAULT_CODE_TIMEOUT


class RunCommandArgs(TypedDict):
    sandbox_id: str
    command: str  # run with ``bash -l -c``
    job: bool
    timeout: NotRequired[float | None]  # seconds; absent or None: DEFAULT_COMMAND_TIMEOUT (a job: none)
    takeover: NotRequired[int]  # a job's message sent again to take it over from a lost worker


class TransferArgs(TypedDict):
    """A file streamed through Redis (``e2bq.stores.transfer``) into or out of the sandbox."""

    sandbox_id: str
    sandbox_path: str
    transfer_id: str


class PublicUrlArgs(TypedDict):
    sandbox_id: str
    port: int


class WaitForPortArgs(TypedDict):
    sandbox_id: str
    port: int
    wait_seconds: float  # how long something may take to listen on the port


class CancelJobArgs(TypedDict):
    job_id: str


class LaneArgs(TypedDict):
    """One lane of a batch map: a sandbox, made on the node the client reserved a slot on."""

    lane: int  # its number in the job, for the sandbox's metadata
    placement: NotRequired[PlacementArgs]  # on a local cluster; absent: the worker finds a slot on its node


class MapLanesArgs(TypedDict):
    """Lanes of a batch map that run together on one worker (``e2bq.stores.maps`` has the items)."""

    job_id: str
    group: int  # this task's number among the job's lane tasks
    lanes: list[LaneArgs]
    namespace: str  # the registry namespace the lanes' sandboxes are recorded in
    options: dict[str, Any]  # the manager's default_options, for the SDK's create
    timeout_each: float  # seconds an item may run
    retries: int  # times an item is run again on a fresh sandbox when its sandbox died under it


# -- the tasks -----------------------------------------------------------------------------------

CREATE_SANDBOX: Final = Task[CreateSandboxArgs, SandboxEntryResult]("e2bq.create_sandbox")
CONNECT_SANDBOX: Final = Task[ConnectSandboxArgs, SandboxEntryResult]("e2bq.connect_sandbox")
KILL_SANDBOX: Final = Task[KillSandboxArgs, ShutdownResult]("e2bq.kill_sandbox")
LIST_SANDBOXES: Final = Task[ListSandboxesArgs, AccountListResult]("e2bq.list_sandboxes")
SET_SANDBOX_TIMEOUT: Final = Task[SetTimeoutArgs, TimeoutResult]("e2bq.set_sandbox_timeout")
PAUSE_SANDBOX: Final = Task[PauseSandboxArgs, PauseResult]("e2bq.pause_sandbox")
RESUME_SANDBOX: Final = Task[ResumeSandboxArgs, ResumeResult]("e2bq.resume_sandbox")
FORK_SANDBOX: Final = Task[ForkSandboxArgs, ForkResult]("e2bq.fork_sandbox")
CREATE_SNAPSHOT: Final = Task[CreateSnapshotArgs, SnapshotResult]("e2bq.create_snapshot")
LIST_SNAPSHOTS: Final = Task[ListSnapshotsArgs, SnapshotListResult]("e2bq.list_snapshots")
DELETE_SNAPSHOT: Final = Task[DeleteSnapshotArgs, SnapshotDeleteResult]("e2bq.delete_snapshot")
RUN_CODE: Final = Task[RunCodeArgs, CodeResult]("e2bq.run_code")
RUN_CODE_EACH: Final = Task[RunCodeEachArgs, EachResult]("e2bq.run_code_each")
RUN_COMMAND: Final = Task[RunCommandArgs, CommandResult]("e2bq.run_command")
UPLOAD_FILE: Final = Task[TransferArgs, TransferResult]("e2bq.upload_file")
DOWNLOAD_FILE: Final = Task[TransferArgs, TransferResult]("e2bq.download_file")
PUBLIC_URL: Final = Task[PublicUrlArgs, UrlResult]("e2bq.public_url")
WAIT_FOR_PORT: Final = Task[WaitForPortArgs, PortResult]("e2bq.wait_for_port")
CANCEL_JOB: Final = Task[CancelJobArgs, CancelResult]("e2bq.cancel_job")
"""Stops a cancelled job's work in its sandbox, from whichever worker takes it."""
MAP_LANES: Final = Task[MapLanesArgs, LanesResult]("e2bq.map_lanes")
"""Runs lanes of a batch map until its items are done; the job's store says when to stop."""


def is_job(args: Mapping[str, object]) -> bool:
    """Whether these arguments ask for a background job (see the module's docstring)."""
    return args.get("job") is True


def check_port(port: object) -> int:
    """``port`` if it is a TCP port number; else InvalidInputError saying so."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise InvalidInputError(f"port must be a whole number between 1 and 65535, not {port!r}")
    return port


# -- time bounds ---------------------------------------------------------------------------------

DEFAULT_CODE_TIMEOUT: Final = 300.0
DEFAULT_COMMAND_TIMEOUT: Final = 60.0
WORKER_MARGIN: Final = 5.0  # the worker stops work this long after its bound: the SDK's own deadline first
QUEUE_MARGIN: Final = 30.0  # a caller waits this long beyond the work: queueing, connecting, the way back
PORT_PROBE: Final = 30.0  # wait_for_port beyond wait_seconds: the last probe and the URL's lookup
SANDBOX_CALL: Final = 60.0  # connect and kill: one control-plane call each
URL_LOOKUP: Final = 30.0
FORK_SANDBOXES: Final = 300.0  # a fork of up to 100 copies, in batches
SNAPSHOT: Final = 300.0  # a snapshot copies the sandbox's files
MAKE_SANDBOX: Final = 120.0  # a create beyond its wait for the creation budget (Settings.create_wait)
TRANSFER_TIMEOUT: Final = 3600.0  # a file transfer, whole


@dataclass(frozen=True)
class Deadline:
    """How long one task may take, in seconds from its start.

    ``work`` is the bound its operation is given (the SDK's timeout); the worker stops the operation
    at ``stop``. ``wait`` is how long a synchronous caller waits for the result. None: no such bound
    (a background job runs until it ends or is killed, and nobody waits for it; tasks whose calls the
    SDK bounds itself get no ``work``).
    """

    work: float | None
    stop: float | None
    wait: float | None

    @classmethod
    def bounded(cls, work: float) -> Deadline:
        return cls(work=work, stop=work + WORKER_MARGIN, wait=work + QUEUE_MARGIN)

    @classmethod
    def waited(cls, expected: float) -> Deadline:
        return cls(work=None, stop=None, wait=expected + QUEUE_MARGIN)


NO_DEADLINE: Final = Deadline(work=None, stop=None, wait=None)


def deadline(task: str, args: Mapping[str, object], settings: Settings) -> Deadline:
    """The time bounds of ``task`` called with ``args``, for the worker and the caller alike."""
    if is_job(args) or task in (CANCEL_JOB, MAP_LANES):
        return NO_DEADLINE
    if task in (RUN_CODE, RUN_CODE_EACH):
        return Deadline.bounded(_seconds(args.get("timeout")) or DEFAULT_CODE_TIMEOUT)
    if task == RUN_COMMAND:
        return Deadline.bounded(_seconds(args.get("timeout")) or DEFAULT_COMMAND_TIMEOUT)
    if task == WAIT_FOR_PORT:
        return Deadline.bounded((_seconds(args.get("wait_seconds")) or 0.0) + PORT_PROBE)
    if task == CREATE_SANDBOX:
        return Deadline.waited(settings.create_wait + MAKE_SANDBOX)
    if task in (CONNECT_SANDBOX, KILL_SANDBOX, LIST_SANDBOXES, SET_SANDBOX_TIMEOUT):
        return Deadline.waited(SANDBOX_CALL)
    if task in (PAUSE_SANDBOX, RESUME_SANDBOX, LIST_SNAPSHOTS, DELETE_SNAPSHOT):
        return Deadline.waited(SANDBOX_CALL)
    if task == FORK_SANDBOX:
        return Deadline.waited(FORK_SANDBOXES)
    if task == CREATE_SNAPSHOT:
        return Deadline.waited(SNAPSHOT)
    if task == PUBLIC_URL:
        return Deadline.waited(URL_LOOKUP)
    if task in (UPLOAD_FILE, DOWNLOAD_FILE):
        return Deadline(work=None, stop=None, wait=TRANSFER_TIMEOUT)
    raise ValueError(f"unknown task {task!r}")


def _seconds(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
