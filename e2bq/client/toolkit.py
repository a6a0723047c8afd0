"""E2BToolkit: the documented high-level API, every operation carried out by the workers.

Every public method returns a JSON-safe dict with ``status`` — its own result type, or an
ErrorResult — and none raises for bad input. The tools are grouped by subject: code
(:mod:`.codetools`), commands and servers (:mod:`.commandtools`), files (:mod:`.filetools`), jobs
(:mod:`.jobtools`), sandboxes (:mod:`.sandboxtools`) and their pauses, forks and snapshots
(:mod:`.lifecycletools`), all on :class:`~.core.ToolkitCore`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .codetools import CodeTools
from .commandtools import CommandTools
from .filetools import FileTools
from .jobtools import JobTools
from .lifecycletools import LifecycleTools
from .sandboxtools import SandboxTools

TOOL_NAMES = (
    "run_python_code",
    "run_python_code_background",
    "run_in_all_sandboxes",
    "map_python_code",
    "run_command",
    "run_command_background",
    "upload_file",
    "download_file_from_sandbox",
    "download_png_result",
    "download_chart_data",
    "get_public_url",
    "run_server",
    "get_job_status",
    "list_jobs",
    "get_job_results",
    "get_job_output",
    "kill_job",
    "wait_job",
    "create_sandbox",
    "connect_to_sandbox",
    "list_managed_sandboxes",
    "list_account_sandboxes",
    "set_default_sandbox",
    "get_sandbox_status",
    "set_sandbox_timeout",
    "shutdown_sandbox",
    "shutdown_all_sandboxes",
    "force_shutdown",
    "force_shutdown_all",
    "pause_sandbox",
    "resume_sandbox",
    "fork_sandbox",
    "create_snapshot",
    "list_snapshots",
    "delete_snapshot",
)
"""The methods offered as tools, in the order tool listings show them."""


class E2BToolkit(CodeTools, CommandTools, FileTools, JobTools, SandboxTools, LifecycleTools):
    """High-level toolkit for sandbox operations, as tools for an agent or plain methods.

    ``global_workers`` bounds how many calls this client has in flight at once where one tool
    makes many (shutdown_all_sandboxes, force_shutdown_all); the work itself runs on however many
    workers serve the queue.
    """

    def _tool_methods(self) -> list[Callable[..., Any]]:
        return [getattr(self, name) for name in TOOL_NAMES]
