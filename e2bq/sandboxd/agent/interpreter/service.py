"""The code interpreter E2B's SDK talks to on port 49999: ``/execute`` and ``/contexts``.

``POST /execute`` answers 200 with newline-delimited JSON lines (see ``mime``) streamed as the code
runs; 400 for a bad request (both ``context_id`` and ``language``, an unsupported language), 404 for
an unknown context. A default Python context (cwd: the user's home) serves requests that name no
context; it starts in the background when the agent starts, and ``/execute`` waits for it. A request
that names another language (see ``languages``) runs in that language's default context, started by
the first such request.

Errors are JSON ``{"code": <HTTP status>, "message": ...}``; the SDK shows the body as the message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import zmq.asyncio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..config import AgentConfig
from ..errors import ConnectError, HTTPError, KernelError
from ..paths import resolve
from ..privatedir import private_folder
from .adoption import Adoptable, wait_for_kernel
from .contexts import LANGUAGES, Context, normalize_language
from .detached import DetachedExecutions
from .execution import Execution, ExecutionResponse
from .kernels import Kernel, kernel_env
from .languages import LANGUAGES as KERNELS
from .languages import bad_env_names, runtime_of

log = logging.getLogger(__name__)


class InterpreterService:
    """Code contexts (one IPython kernel each) and the routes that use them."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self._contexts: dict[str, Context] = {}
        self._default: asyncio.Task[Context] | None = None
        self._language_defaults: dict[str, asyncio.Task[Context]] = {}  # other languages than python
        self._runtime_dir: Path | None = None
        self._zmq: zmq.asyncio.Context | None = None
        self._adoptable = True
        self.detached = DetachedExecutions(self._resolve, max_output_bytes=config.max_output_bytes)

    def routes(self) -> list[BaseRoute]:
        return [
            *self.detached.routes(),
            Route("/execute", self._execute, methods=["POST"]),
            Route("/contexts", self._create_context, methods=["POST"]),
            Route("/contexts", self._list_contexts, methods=["GET"]),
            Route("/contexts/{context_id}", self._delete_context, methods=["DELETE"]),
            Route("/contexts/{context_id}/restart", self._restart_context, methods=["POST"]),
        ]

    async def start(self) -> None:
        """Prepare the kernels' private folder; start the default context in the background."""
        if self.config.kernel_dir is not None:  # shared with the kernel sandboxd forks in
            self._runtime_dir = private_folder(Path(self.config.kernel_dir))
        else:
            self._runtime_dir = Path(tempfile.mkdtemp(prefix="e2bq-kernels-"))
        self._zmq = zmq.asyncio.Context()
        if self.config.start_kernel:
            self._default_context_task()

    async def close(self) -> None:
        """Stop every kernel (and what it started) and remove the private folder."""
        starting = [task for task in (self._default, *self._language_defaults.values()) if task is not None]
        for task in starting:
            task.cancel()
        await asyncio.gather(*starting, return_exceptions=True)
        contexts, self._contexts = list(self._contexts.values()), {}
        await asyncio.gather(*(context.close() for context in contexts), return_exceptions=True)
        if self._zmq is not None:
            self._zmq.destroy(linger=0)
        if self._runtime_dir is not None:
            shutil.rmtree(self._runtime_dir, ignore_errors=True)

    async def create_context(
        self, language: str | None, cwd: str | None, adopt: Adoptable | None = None
    ) -> Context:
        """A new context with its own kernel, once that kernel answers. Raises HTTPError."""
        language = _supported(language)
        spec = KERNELS[language]
        if missing := spec.missing(runtime_of(self.config.python)):
            raise HTTPError(
                400,
                f"language {language!r} is not installed in this sandbox (no {missing[0]}): {spec.install}",
            )
        try:
            path = resolve(cwd, self.config.home) if cwd else self.config.home
        except ConnectError as exc:
            raise HTTPError(400, f"invalid cwd: {exc.message}") from exc
        if not path.is_dir():
            raise HTTPError(400, f"cwd {str(path)!r} is not a directory")
        if self._runtime_dir is None or self._zmq is None:
            raise HTTPError(503, "the code interpreter is not started")
        kernel = Kernel(
            self.config.python,
            env=kernel_env(self.config.envs, self._runtime_dir),
            cwd=path,
            runtime_dir=self._runtime_dir,
            zmq_context=self._zmq,
            language=spec,
        )
        context = Context(kernel, language=language, cwd=path)
        try:
            await context.start(adopt)
        except KernelError as exc:
            raise HTTPError(500, f"failed to start a {language} kernel: {exc}") from exc
        self._contexts[context.id] = context
        return context

    async def default_context(self) -> Context:
        """The default Python context, started now if it is not (or failed to)."""
        task = self._default
        if task is None or (task.done() and _result(task) is None):
            task = self._default_context_task()
        return await asyncio.shield(task)

    def _default_context_task(self) -> asyncio.Task[Context]:
        self._default = asyncio.create_task(self._create_default())
        self._default.add_done_callback(_log_default_failure)
        return self._default

    async def _create_default(self) -> Context:
        """The default context, on the kernel sandboxd forks in when there is one coming."""
        adopt = None
        if self.config.kernel_dir is not None and self._runtime_dir is not None and self._adoptable:
            self._adoptable = False  # only the first default context: a forked kernel comes once
            fallback = Path(self.config.kernel_fallback) if self.config.kernel_fallback else None
            adopt = await wait_for_kernel(self._runtime_dir, fallback)
        return await self.create_context("python", None, adopt)

    def _context(self, context_id: str) -> Context:
        context = self._contexts.get(context_id)
        if context is None:
            raise HTTPError(404, f"Context {context_id} not found")
        return context

    async def _resolve(self, body: dict[str, Any]) -> tuple[str, Context, dict[str, str] | None]:
        """The code, context and env_vars an execute request's body names. Raises HTTPError."""
        code, context_id, language, env_vars = _execute_arguments(body)
        if context_id is not None:
            context = self._context(context_id)
            _check_env_names(context.language, env_vars)
            return code, context, env_vars
        language = _supported(language)
        _check_env_names(language, env_vars)
        if language != "python":
            return code, await self._language_default(language), env_vars
        return code, await self.default_context(), env_vars

    async def _language_default(self, language: str) -> Context:
        """The default context of ``language`` (not python), started now if it is not (or failed to)."""
        task = self._language_defaults.get(language)
        if task is None or (task.done() and _result(task) is None):
            task = asyncio.create_task(self.create_context(language, None))
            self._language_defaults[language] = task
        return await asyncio.shield(task)

    async def _execute(self, request: Request) -> Response:
        try:
            code, context, env_vars = await self._resolve(await _json_object(request))
        except HTTPError as exc:
            return exc.response()
        execution = Execution(context, code, env_vars=env_vars, max_output_bytes=self.config.max_output_bytes)
        execution.start()
        return ExecutionResponse(execution)

    async def _create_context(self, request: Request) -> Response:
        try:
            body = await _json_object(request)
            language, cwd = body.get("language"), body.get("cwd")
            if not isinstance(language, str | None) or not isinstance(cwd, str | None):
                raise HTTPError(400, "language and cwd must be strings")
            context = await self.create_context(language, cwd)
        except HTTPError as exc:
            return exc.response()
        return JSONResponse(context.info())

    async def _list_contexts(self, _: Request) -> Response:
        """Every context, the default one included once it is up, as E2B's server lists them."""
        starting = self._default
        if starting is not None and not starting.done():
            with contextlib.suppress(Exception):  # a default that failed is listed as absent
                await asyncio.shield(starting)
        return JSONResponse([context.info() for context in self._contexts.values()])

    async def _delete_context(self, request: Request) -> Response:
        try:
            context = self._context(request.path_params["context_id"])
        except HTTPError as exc:
            return exc.response()
        del self._contexts[context.id]
        if _result(self._default) is context:
            self._default = None  # the next request without a context starts a new one
        for language, task in list(self._language_defaults.items()):
            if _result(task) is context:
                del self._language_defaults[language]
        await context.close()
        return Response(status_code=204)

    async def _restart_context(self, request: Request) -> Response:
        try:
            context = self._context(request.path_params["context_id"])
            try:
                await context.restart()
            except KernelError as exc:
                raise HTTPError(500, f"failed to restart context {context.id}: {exc}") from exc
        except HTTPError as exc:
            return exc.response()
        return Response(status_code=204)


def _supported(language: str | None) -> str:
    """The normalized ``language``; HTTPError(400) if no context can run it."""
    normalized = normalize_language(language)
    if normalized not in LANGUAGES:
        supported = ", ".join(LANGUAGES)
        raise HTTPError(400, f"language {language!r} is not supported in this sandbox: use {supported}")
    return normalized


def _check_env_names(language: str, env_vars: dict[str, str] | None) -> None:
    """HTTPError(400) when a variable's name cannot be set in ``language``'s kernel."""
    if language == "python" or not env_vars:
        return
    if bad := bad_env_names(list(env_vars)):
        raise HTTPError(400, f"env_vars names must be letters, digits and _ for {language}: {bad[0]!r}")


async def _json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise HTTPError(400, f"the body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise HTTPError(400, "the body must be a JSON object")
    return body


def _execute_arguments(
    body: dict[str, Any],
) -> tuple[str, str | None, str | None, dict[str, str] | None]:
    code, context_id = body.get("code"), body.get("context_id")
    language, env_vars = body.get("language"), body.get("env_vars")
    if not isinstance(code, str):
        raise HTTPError(400, "code must be a string")
    if context_id and language:
        raise HTTPError(400, "Only one of context_id or language can be provided")
    if not isinstance(context_id, str | None) or not isinstance(language, str | None):
        raise HTTPError(400, "context_id and language must be strings or null")
    if env_vars is not None and not (
        isinstance(env_vars, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in env_vars.items())
    ):
        raise HTTPError(400, "env_vars must map names to string values")
    return code, context_id or None, language or None, env_vars


def _result(task: asyncio.Task[Context] | None) -> Context | None:
    """The context a finished task made; None if it is running, failed or was cancelled."""
    if task is None or not task.done() or task.cancelled() or task.exception() is not None:
        return None
    return task.result()


def _log_default_failure(task: asyncio.Task[Context]) -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.warning("the default python context did not start: %s", exc)
