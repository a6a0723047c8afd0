"""The toolkit's tools in the shapes model APIs take, and the tool calls those APIs send back.

OpenAI's Chat Completions (``ChatCompletionFunctionToolParam``), OpenAI's Responses API
(``FunctionToolParam``) and Anthropic's Messages API (``ToolParam``) each wrap the same name,
description and JSON schema differently. A tool call comes back as an object or its dict form —
a Chat Completions tool call (``function.name``, ``function.arguments`` as a JSON string), a
Responses function call (``name``, ``arguments``) or an Anthropic tool-use block (``name``,
``input`` as a dict) — and is read by duck typing, so no provider's package is needed here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from ..types import AnthropicTool, OpenAIChatTool, OpenAIFunction, OpenAIResponsesTool, ToolSpec

OpenAIApi = Literal["chat", "responses"]


def openai_chat_tool(spec: ToolSpec) -> OpenAIChatTool:
    function: OpenAIFunction = {
        "name": spec["name"], "description": spec["description"], "parameters": spec["parameters"]
    }
    if strict_compatible(spec["parameters"]):
        function["strict"] = True
    return {"type": "function", "function": function}


def openai_responses_tool(spec: ToolSpec) -> OpenAIResponsesTool:
    return {
        "type": "function",
        "name": spec["name"],
        "description": spec["description"],
        "parameters": spec["parameters"],
        "strict": strict_compatible(spec["parameters"]),
    }


def anthropic_tool(spec: ToolSpec) -> AnthropicTool:
    return {"name": spec["name"], "description": spec["description"], "input_schema": spec["parameters"]}


def strict_compatible(schema: Mapping[str, Any]) -> bool:
    """Whether OpenAI's strict mode takes ``schema`` as it is: every object closed
    (``additionalProperties: false``) with every property required. A tool with an optional
    argument is not: strict mode would make the model send all of them."""
    if not isinstance(schema, Mapping):
        return True
    if schema.get("type") == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        if schema.get("additionalProperties") is not False:
            return False
        if set(schema.get("required", [])) != set(properties):
            return False
    for key, value in schema.items():
        children = value.values() if key in ("properties", "$defs") else [value]
        for child in children:
            if isinstance(child, list) and not all(strict_compatible(item) for item in child):
                return False
            if isinstance(child, Mapping) and not strict_compatible(child):
                return False
    return True


def read_tool_call(tool_call: object) -> tuple[str, object] | None:
    """A tool call's name and arguments (a JSON string or a dict), whichever provider's object or
    dict it is; None when it is none of them."""
    function = _field(tool_call, "function")
    source = function if function is not None else tool_call
    name = _field(source, "name")
    if not isinstance(name, str):
        return None
    arguments = _field(source, "arguments")
    if arguments is None:
        arguments = _field(source, "input")
    return name, arguments


def _field(value: object, key: str) -> object:
    if isinstance(value, Mapping):
        return value.get(key)
    try:
        return getattr(value, key, None)
    except Exception:  # a property that raises: the object is not a tool call
        return None
