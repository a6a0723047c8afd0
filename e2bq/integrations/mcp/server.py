"""The toolkit as an MCP server: its tools, and its background jobs as resources.

Built on the SDK's low-level ``Server``: the toolkit already carries each tool's JSON schema
(``toolkit.tools``), which the low-level server takes as it is. Every toolkit call blocks (it
waits on Redis and on workers), so each runs in a worker thread, never on the event loop.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError
from mcp_types.jsonrpc import INVALID_PARAMS
from starlette.requests import Request

from ... import E2BToolkit
from .jobs import JOB_URI_TEMPLATE, JobWatch, job_id_of, job_uri

log = logging.getLogger(__name__)

NAME = "e2bq"
FAILED = frozenset({"error", "not_found"})  # statuses that make a tool result an MCP tool error
INSTRUCTIONS = (
    "Code sandboxes: run Python and shell commands, move files, run servers. Background tools "
    "return a job_id and a resource URI e2bq://jobs/{job_id}: subscribe to it to hear when the "
    "job ends, then read it for the job's status."
)

Context = ServerRequestContext[dict[str, Any]]


def build_server(toolkit: E2BToolkit, watch: JobWatch) -> Server[dict[str, Any]]:
    """An MCP server offering ``toolkit``'s tools; ``watch`` follows the jobs' ends while it runs."""
    handlers = Handlers(toolkit, watch)
    return Server(
        NAME,
        instructions=INSTRUCTIONS,
        lifespan=handlers.lifespan,
        on_list_tools=handlers.list_tools,
        on_call_tool=handlers.call_tool,
        on_list_resources=handlers.list_resources,
        on_list_resource_templates=handlers.list_resource_templates,
        on_read_resource=handlers.read_resource,
        on_subscribe_resource=handlers.subscribe,
        on_unsubscribe_resource=handlers.unsubscribe,
        on_subscriptions_listen=watch.listen,
    )


class Handlers:
    """The server's request handlers: the toolkit's tools, and its jobs as resources."""

    def __init__(self, toolkit: E2BToolkit, watch: JobWatch) -> None:
        self.toolkit = toolkit
        self.watch = watch

    @asynccontextmanager
    async def lifespan(self, _: Server[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
        """Follows the jobs' ends while the server runs (once per process, whatever the transport)."""
        async with anyio.create_task_group() as group:
            group.start_soon(self.watch.follow)
            yield {}
            group.cancel_scope.cancel()

    async def list_tools(
        self, ctx: Context, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        tools = [
            types.Tool(name=spec["name"], description=spec["description"], input_schema=spec["parameters"])
            for spec in self.toolkit.tools
        ]
        return types.ListToolsResult(tools=tools)

    async def call_tool(self, ctx: Context, params: types.CallToolRequestParams) -> types.CallToolResult:
        arguments = params.arguments if params.arguments is not None else {}
        # Abandoned on cancel: a client that gives up gets its answer at once; the call itself
        # runs to its own end (its work is bounded by the toolkit's timeouts, or is a job).
        result = await anyio.to_thread.run_sync(
            self.toolkit.call, params.name, arguments, abandon_on_cancel=True
        )
        return tool_result(result)

    async def list_resources(
        self, ctx: Context, params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=[])  # jobs are reached through the template

    async def list_resource_templates(
        self, ctx: Context, params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        template = types.ResourceTemplate(
            name="job",
            uri_template=JOB_URI_TEMPLATE,
            description="A background job's status (as get_job_status returns it); subscribe to "
            "hear when the job ends.",
            mime_type="application/json",
        )
        return types.ListResourceTemplatesResult(resource_templates=[template])

    async def read_resource(
        self, ctx: Context, params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        job_id = _job_id(params.uri)
        status = await self.watch.status(job_id)
        if status.get("status") == "not_found":
            raise MCPError(INVALID_PARAMS, f"no job {job_id!r}", {"uri": params.uri})
        text = types.TextResourceContents(
            uri=params.uri, mime_type="application/json", text=json.dumps(status)
        )
        return types.ReadResourceResult(contents=[text])

    async def subscribe(self, ctx: Context, params: types.SubscribeRequestParams) -> types.EmptyResult:
        job_id = _job_id(params.uri)
        status = await self.watch.subscribe(job_id, _connection(ctx), ctx.session)
        if status.get("status") == "not_found":
            raise MCPError(INVALID_PARAMS, f"no job {job_id!r}", {"uri": params.uri})
        return types.EmptyResult()

    async def unsubscribe(self, ctx: Context, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
        self.watch.unsubscribe(_job_id(params.uri), _connection(ctx))
        return types.EmptyResult()


def tool_result(result: Any) -> types.CallToolResult:
    """A toolkit result as an MCP tool result: the dict as JSON text and as structured content;
    ``error`` and ``not_found`` make it a tool error (the model sees the message and can retry).
    An accepted background job also names its resource, to read or subscribe to."""
    fields: dict[str, Any] = (
        dict(result) if isinstance(result, dict) else {"status": "success", "result": result}
    )
    content: list[types.ContentBlock] = []
    job_id = fields.get("job_id")
    if fields.get("status") == "accepted" and isinstance(job_id, str):
        fields["resource_uri"] = job_uri(job_id)
        content.append(
            types.ResourceLink(
                name=f"job {job_id}",
                uri=fields["resource_uri"],
                description="The job's status; subscribe to hear when it ends.",
                mime_type="application/json",
            )
        )
    content.insert(0, types.TextContent(text=json.dumps(fields)))
    return types.CallToolResult(
        content=content, structured_content=fields, is_error=fields.get("status") in FAILED
    )


def _job_id(uri: str) -> str:
    job_id = job_id_of(str(uri))
    if job_id is None:
        raise MCPError(INVALID_PARAMS, f"unknown resource {uri!r}; jobs are {JOB_URI_TEMPLATE}", {"uri": uri})
    return job_id


def _connection(ctx: Context) -> str:
    """The key of the request's connection: its streamable HTTP session id; '' on stdio, which
    carries a single connection (a session object is made per request, so it cannot be the key)."""
    if isinstance(ctx.request, Request):
        return ctx.request.headers.get("mcp-session-id", "")
    return ""
