"""Toolkit: methods offered as tools for LLM function calling (name, description, JSON schema).

The schemas are made from the methods' signatures and docstrings with pydantic, so they cannot drift
from the code. Parameters named in ``hidden`` (objects no model can pass, such as an agent) are left
out of the schemas.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, get_type_hints

from pydantic import create_model

from ..types import ToolSpec


def tool_spec(method: Callable[..., Any], *, hidden: frozenset[str] = frozenset()) -> ToolSpec:
    signature = inspect.signature(method)
    hints = get_type_hints(method)
    fields: dict[str, Any] = {}
    for name, parameter in signature.parameters.items():
        if (
            name in hidden
            or name == "self"
            or parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL)
        ):
            continue
        default = ... if parameter.default is parameter.empty else parameter.default
        fields[name] = (hints.get(name, Any), default)
    schema = create_model(f"{method.__name__}_args", **fields).model_json_schema()
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
    doc = inspect.getdoc(method) or method.__name__
    return {"name": method.__name__, "description": doc.split("\n\n")[0], "parameters": schema}


class Toolkit:
    """A named set of tools. ``tools`` lists their specs; ``functions`` maps names to callables."""

    hidden_parameters: frozenset[str] = frozenset()

    def __init__(self, name: str, tools: list[Callable[..., Any]], **_: Any) -> None:
        self.name = name
        self.functions: dict[str, Callable[..., Any]] = {tool.__name__: tool for tool in tools}

    @property
    def tools(self) -> list[ToolSpec]:
        return [tool_spec(f, hidden=self.hidden_parameters) for f in self.functions.values()]

    def call(self, name: str, arguments: dict[str, Any]) -> Any:
        """Call a tool by name, as an LLM's function call asks."""
        if not isinstance(name, str) or name not in self.functions:
            known = sorted(self.functions)
            return {"status": "error", "message": f"unknown tool {name!r:.80}; tools: {known}"}
        if not isinstance(arguments, dict):
            kind = type(arguments).__name__
            return {"status": "error", "message": f"arguments of {name} must be a dict, not {kind}"}
        try:
            return self.functions[name](**arguments)
        except TypeError as exc:
            return {"status": "error", "message": f"bad arguments for {name}: {exc}"}
