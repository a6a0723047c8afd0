"""What every result is made of: statuses, an execution's parts, the error result, and the
code and command results a job record also holds."""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict, final

Status = Literal["success", "error", "accepted"]


JobStatus = Literal["running", "done", "error", "cancelled", "not_found"]
"""What ``get_job_status`` reports: a job's record status, or ``not_found``."""


JobRecordStatus = Literal["running", "done", "error", "cancelled"]


JobState = Literal["queued", "started", "handed_over"]


JobKind = Literal["code", "command", "server", "map"]


Provider = Literal["e2b", "local"]


NodeState = Literal["live", "lost"]


SandboxState = Literal["running", "paused", "lost"]


OutputStream = Literal["stdout", "stderr"]


OUTPUT_STREAMS: tuple[OutputStream, ...] = ("stdout", "stderr")


TERMINAL_STATES: frozenset[str] = frozenset({"done", "error", "cancelled"})


class ErrorInfo(TypedDict):
    """Code that raised: E2B's ExecutionError."""

    name: str
    value: str
    traceback: str


class Logs(TypedDict):
    stdout: list[str]
    stderr: list[str]


class ExecutionResult(TypedDict, total=False):
    """One display or main result of a cell: E2B's Result, MIME fields by name."""

    text: str
    html: str
    markdown: str
    svg: str
    png: str
    jpeg: str
    pdf: str
    latex: str
    json: Any
    javascript: str
    data: Any
    chart: dict[str, Any]
    extra: dict[str, Any]
    is_main_result: bool


class ToolSpec(TypedDict):
    """A toolkit method as an LLM function-calling tool: its name, description and JSON schema."""

    name: str
    description: str
    parameters: dict[str, Any]


class OpenAIFunction(TypedDict):
    """The function of a Chat Completions tool (openai's ``FunctionDefinition``)."""

    name: str
    description: str
    parameters: dict[str, Any]
    strict: NotRequired[bool]


class OpenAIChatTool(TypedDict):
    """A Chat Completions tool (openai's ``ChatCompletionFunctionToolParam``)."""

    type: Literal["function"]
    function: OpenAIFunction


class OpenAIResponsesTool(TypedDict):
    """A Responses API function tool (openai's ``responses.FunctionToolParam``); ``strict`` is
    required there, and the API takes a missing one as true."""

    type: Literal["function"]
    name: str
    description: str
    parameters: dict[str, Any]
    strict: bool


class AnthropicTool(TypedDict):
    """A Messages API tool (anthropic's ``ToolParam``)."""

    name: str
    description: str
    input_schema: dict[str, Any]


class _Result(TypedDict):
    message: NotRequired[str]


@final
class ErrorResult(TypedDict):
    """Any call that failed: ``message`` says why and what to change."""

    status: Literal["error"]
    message: str
    error_type: NotRequired[str]  # the e2bq error's class, when a worker reports it
    sandbox_id: NotRequired[str]
    job_id: NotRequired[str]


class CodeResult(_Result):
    """run_python_code: ``error`` status when the code raised (``error`` says how)."""

    status: Literal["success", "error"]
    sandbox_id: str
    results: list[ExecutionResult]
    logs: Logs
    error: ErrorInfo | None
    execution_count: int | None
    job_id: NotRequired[str]


class CommandResult(_Result):
    """run_command: ``error`` status when the command exited non-zero."""

    status: Literal["success", "error"]
    sandbox_id: str
    stdout: str
    stderr: str
    exit_code: int
    output: NotRequired[CommandOutput]  # the toolkit's: stdout and stderr again, nested as in agno's E2BTools
    pid: NotRequired[int]  # a background command's process id
    job_id: NotRequired[str]


class CommandOutput(TypedDict):
    stdout: str
    stderr: str
