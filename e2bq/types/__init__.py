"""Every dict that crosses a boundary: toolkit results, task results, job records, registry entries.

Each toolkit method returns its own result type or an :class:`ErrorResult` (``CodeResult |
ErrorResult`` for ``run_python_code``); ``ToolResult`` is the union of them all. Workers return the
task results named beside each task in :mod:`e2bq.protocol`. Every result has ``status`` and may
carry a ``message`` (an error's reason, or a note such as "the default sandbox was replaced").

Values are JSON-native (str, int, float, bool, None, list, dict); JSON encoding happens once, at
the edge (Celery's JSON serializer, the Redis stores).
"""

from .base import (
    OUTPUT_STREAMS as OUTPUT_STREAMS,
)
from .base import (
    TERMINAL_STATES as TERMINAL_STATES,
)
from .base import (
    AnthropicTool as AnthropicTool,
)
from .base import (
    CodeResult as CodeResult,
)
from .base import (
    CommandOutput as CommandOutput,
)
from .base import (
    CommandResult as CommandResult,
)
from .base import (
    ErrorInfo as ErrorInfo,
)
from .base import (
    ErrorResult as ErrorResult,
)
from .base import (
    ExecutionResult as ExecutionResult,
)
from .base import (
    JobKind as JobKind,
)
from .base import (
    JobRecordStatus as JobRecordStatus,
)
from .base import (
    JobState as JobState,
)
from .base import (
    JobStatus as JobStatus,
)
from .base import (
    Logs as Logs,
)
from .base import (
    NodeState as NodeState,
)
from .base import (
    OpenAIChatTool as OpenAIChatTool,
)
from .base import (
    OpenAIFunction as OpenAIFunction,
)
from .base import (
    OpenAIResponsesTool as OpenAIResponsesTool,
)
from .base import (
    OutputStream as OutputStream,
)
from .base import (
    Provider as Provider,
)
from .base import (
    SandboxState as SandboxState,
)
from .base import (
    Status as Status,
)
from .base import (
    ToolSpec as ToolSpec,
)
from .lifecycle import (
    ForkOutcome as ForkOutcome,
)
from .lifecycle import (
    ForkResult as ForkResult,
)
from .lifecycle import (
    PauseResult as PauseResult,
)
from .lifecycle import (
    ResumeResult as ResumeResult,
)
from .lifecycle import (
    SnapshotDeleteResult as SnapshotDeleteResult,
)
from .lifecycle import (
    SnapshotInfo as SnapshotInfo,
)
from .lifecycle import (
    SnapshotListResult as SnapshotListResult,
)
from .lifecycle import (
    SnapshotResult as SnapshotResult,
)
from .records import (
    AccountSandbox as AccountSandbox,
)
from .records import (
    ChartImage as ChartImage,
)
from .records import (
    ForcedShutdown as ForcedShutdown,
)
from .records import (
    JobEvent as JobEvent,
)
from .records import (
    JobEventName as JobEventName,
)
from .records import (
    JobFilter as JobFilter,
)
from .records import (
    JobRecord as JobRecord,
)
from .records import (
    JobSummary as JobSummary,
)
from .records import (
    ManagedSandbox as ManagedSandbox,
)
from .records import (
    MapItemResult as MapItemResult,
)
from .records import (
    MapProgress as MapProgress,
)
from .records import (
    NodeInfo as NodeInfo,
)
from .records import (
    NodeRecord as NodeRecord,
)
from .records import (
    PendingItem as PendingItem,
)
from .records import (
    SandboxEntry as SandboxEntry,
)
from .records import (
    SlotInfo as SlotInfo,
)
from .results import (
    AcceptedResult as AcceptedResult,
)
from .results import (
    AccountListResult as AccountListResult,
)
from .results import (
    CancelResult as CancelResult,
)
from .results import (
    ChartResult as ChartResult,
)
from .results import (
    DefaultResult as DefaultResult,
)
from .results import (
    EachResult as EachResult,
)
from .results import (
    FanOutResult as FanOutResult,
)
from .results import (
    FileResult as FileResult,
)
from .results import (
    ForceShutdownAllResult as ForceShutdownAllResult,
)
from .results import (
    JobListResult as JobListResult,
)
from .results import (
    JobNotFoundResult as JobNotFoundResult,
)
from .results import (
    JobOutputPage as JobOutputPage,
)
from .results import (
    KillResult as KillResult,
)
from .results import (
    LanesResult as LanesResult,
)
from .results import (
    MapAcceptedResult as MapAcceptedResult,
)
from .results import (
    MapResults as MapResults,
)
from .results import (
    PngResult as PngResult,
)
from .results import (
    PortResult as PortResult,
)
from .results import (
    SandboxEntryResult as SandboxEntryResult,
)
from .results import (
    SandboxListResult as SandboxListResult,
)
from .results import (
    SandboxResult as SandboxResult,
)
from .results import (
    SandboxShutdownResult as SandboxShutdownResult,
)
from .results import (
    SandboxStatusResult as SandboxStatusResult,
)
from .results import (
    ServerResult as ServerResult,
)
from .results import (
    ShutdownAllResult as ShutdownAllResult,
)
from .results import (
    ShutdownResult as ShutdownResult,
)
from .results import (
    TaskResult as TaskResult,
)
from .results import (
    TimeoutResult as TimeoutResult,
)
from .results import (
    ToolResult as ToolResult,
)
from .results import (
    TransferResult as TransferResult,
)
from .results import (
    UrlResult as UrlResult,
)
