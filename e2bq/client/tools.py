"""Toolkit: methods offered as tools for LLM function calling (name, description, JSON schema).

The schemas are made from the methods' signatures and docstrings with pydantic, so they cannot drift
from the code; the same model checks the arguments of a call. Parameters named in ``hidden``
(objects no model can pass, such as an agent) are left out of the schemas and cannot be passed by a
call; the framework that runs the tool may supply them (``call(..., injected=)``).
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any, Literal, overload

from pydantic import BaseModel

from ..types import AnthropicTool, OpenAIChatTool, OpenAIResponsesTool, ToolSpec
from . import toolargs
from .toolformats import (
    OpenAIApi,
    anthropic_tool,
    openai_chat_tool,
    openai_responses_tool,
    read_tool_call,
)

log = logging.getLogger("e2bq")


def tool_spec(method: Callable[..., Any], *, hidden: frozenset[str] = frozenset()) -> ToolSpec:
    return spec_of(method, toolargs.argument_model(method, hidden=hidden))


def spec_of(method: Callable[..., Any], model: type[BaseModel]) -> ToolSpec:
    """``method``'s tool spec: an object schema with ``properties`` (empty for a tool with no
    arguments) and no pydantic titles, which models would read as arguments' descriptions."""
    schema = _untitled(model.model_json_schema())
    schema.setdefault("properties", {})
    doc = inspect.getdoc(method) or method.__name__
    return {"name": method.__name__, "description": doc.split("\n\n")[0], "parameters": schema}


class Toolkit:
    """A named set of tools. ``tools`` lists their specs; ``functions`` maps names to callables."""

    hidden_parameters: frozenset[str] = frozenset()

    def __init__(self, name: str, tools: list[Callable[..., Any]], **_: Any) -> None:
        self.name = name
        self.functions: dict[str, Callable[..., Any]] = {tool.__name__: tool for tool in tools}
        self._argument_models: dict[str, type[BaseModel]] = {}
        self._specs: dict[str, str] = {}  # JSON text: every reader gets its own copy

    def _arguments_of(self, name: str) -> type[BaseModel]:
        """The tool's argument model, made once per toolkit."""
        model = self._argument_models.get(name)
        if model is None:
            model = toolargs.argument_model(self.functions[name], hidden=self.hidden_parameters)
            self._argument_models[name] = model
        return model

    @property
    def tools(self) -> list[ToolSpec]:
        """The tools' specs, made once per toolkit (pydantic's schemas cost about 1 ms a tool)."""
        return [self._spec(name) for name in self.functions]

    def _spec(self, name: str) -> ToolSpec:
        text = self._specs.get(name)
        if text is None:
            text = json.dumps(spec_of(self.functions[name], self._arguments_of(name)))
            self._specs[name] = text
        spec: ToolSpec = json.loads(text)
        return spec

    @overload
    def openai_tools(self, api: Literal["chat"] = ...) -> list[OpenAIChatTool]: ...
    @overload
    def openai_tools(self, api: Literal["responses"]) -> list[OpenAIResponsesTool]: ...

    def openai_tools(self, api: OpenAIApi = "chat") -> list[OpenAIChatTool] | list[OpenAIResponsesTool]:
        """The tools for OpenAI: ``tools=`` of Chat Completions (``api="chat"``) or of the
        Responses API (``api="responses"``). ``strict`` is set only where the schema allows it
        (every argument required), since strict mode would make the model send every argument.

        Raises ValueError for another ``api``: a programming error, not a model's input.
        """
        if api == "chat":
            return [openai_chat_tool(spec) for spec in self.tools]
        if api == "responses":
            return [openai_responses_tool(spec) for spec in self.tools]
        raise ValueError(f"api must be 'chat' or 'responses', not {api!r:.80}")

    def anthropic_tools(self) -> list[AnthropicTool]:
        """The tools for Anthropic's Messages API (``tools=``)."""
        return [anthropic_tool(spec) for spec in self.tools]

    def call(
        self, name: str, arguments: object = None, *, injected: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Call a tool by name, as an LLM's function call asks; never raises.

        ``arguments``: a dict, or its JSON string (what OpenAI's ``tool_call.function.arguments``
        is), or None or "" for none. They are checked against the tool's signature first: an
        unknown tool or argument, a missing or mistyped one, or malformed JSON gives
        ``{"status": "error", "message"}`` saying what to change. ``injected``: values for hidden
        parameters (such as ``agent``) that the framework running the tool supplies; a tool that
        does not take one does not get it.
        """
        if not isinstance(name, str) or name not in self.functions:
            known = sorted(self.functions)
            return _error(f"unknown tool {name!r:.80}; tools: {', '.join(known)}")
        parsed = toolargs.parse(name, arguments)
        if isinstance(parsed, str):
            return _error(parsed)
        checked = toolargs.validate(name, self._arguments_of(name), parsed)
        if isinstance(checked, str):
            return _error(checked)
        method = self.functions[name]
        if injected:
            takes = inspect.signature(method).parameters
            supplied = {key: value for key, value in injected.items() if key in self.hidden_parameters}
            checked.update((key, value) for key, value in supplied.items() if key in takes)
        return _json_safe(name, method, checked)

    def call_tool_call(
        self, tool_call: object, *, injected: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Run a tool call as a model API returned it, and return what ``call`` does: an OpenAI
        ``ChatCompletionMessageToolCall`` (``function.name``, ``function.arguments``), a Responses
        API function call (``name``, ``arguments``), an Anthropic ``ToolUseBlock`` (``name``,
        ``input``), or the dict form of any of them."""
        read = read_tool_call(tool_call)
        if read is None:
            kind = type(tool_call).__name__
            return _error(
                f"not a tool call ({kind}, with no name): pass an OpenAI tool call (function.name, "
                "function.arguments), a Responses function call (name, arguments) or an Anthropic "
                "tool_use block (name, input), or its dict"
            )
        return self.call(read[0], read[1], injected=injected)


def _json_safe(name: str, method: Callable[..., Any], arguments: dict[str, Any]) -> dict[str, Any]:
    """The method's result, if it is the JSON-safe dict with a status every tool returns; a bug
    in a tool (it raised, or returned something else) is logged and said in an error result."""
    try:
        result = method(**arguments)
        json.dumps(result)
    except Exception as exc:
        log.exception("the tool %s failed", name)
        return _error(f"internal error in e2bq's tool {name}: {type(exc).__name__}: {exc}")
    if not isinstance(result, dict) or "status" not in result:
        log.error("the tool %s returned %s, not a result dict", name, type(result).__name__)
        return _error(f"internal error in e2bq's tool {name}: it returned no result dict")
    return result


def _error(message: str) -> dict[str, Any]:
    return {"status": "error", "message": message}


def _untitled(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` without pydantic's ``title`` keys, at any depth (an argument named "title"
    stays: in ``properties`` the keys are names, not keywords)."""

    def strip(node: Any) -> Any:
        if isinstance(node, list):
            return [strip(item) for item in node]
        if not isinstance(node, dict):
            return node
        return {key: _strip_under(key, value, strip) for key, value in node.items() if key != "title"}

    stripped: dict[str, Any] = strip(schema)
    return stripped


def _strip_under(key: str, value: Any, strip: Callable[[Any], Any]) -> Any:
    if key in ("default", "enum", "const", "examples"):  # values, not schemas
        return value
    if key in ("properties", "$defs", "patternProperties") and isinstance(value, dict):
        return {name: strip(sub) for name, sub in value.items()}  # keyed by names
    return strip(value)
