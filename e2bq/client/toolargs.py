"""A tool's arguments as a model sends them: parsed from JSON, checked against the tool's signature.

One pydantic model per tool, made from the method's signature (the same one its JSON schema comes
from), forbids arguments the tool does not take; what is wrong becomes a message that names the
argument and says what to send instead, for the model to correct its next call.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

MAX_SHOWN = 80  # characters of a bad value quoted back in a message


def argument_model(method: Callable[..., Any], *, hidden: frozenset[str] = frozenset()) -> type[BaseModel]:
    """The model of ``method``'s arguments that a caller may pass (``hidden`` ones left out)."""
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
    return create_model(f"{method.__name__}_args", __config__=ConfigDict(extra="forbid"), **fields)


def parse(tool: str, arguments: object) -> dict[str, Any] | str:
    """``arguments`` as a dict: given as one, as a JSON string of an object, or as None or ""
    (no arguments); else the message saying what is wrong with them."""
    if arguments is None:
        return {}
    if isinstance(arguments, str):
        if not arguments.strip():
            return {}
        try:
            arguments = json.loads(arguments, parse_constant=_no_constant)
        except ValueError as exc:  # JSONDecodeError says where: "line 1 column 9 (char 8)"
            return f"the arguments of {tool} are not valid JSON: {exc}"
        if not isinstance(arguments, dict):
            return f"the arguments of {tool} must be a JSON object, not a JSON {_json_kind(arguments)}"
    if not isinstance(arguments, Mapping):
        kind = type(arguments).__name__
        return f"the arguments of {tool} must be a dict (a JSON object) or its JSON string, not {kind}"
    if not all(isinstance(key, str) for key in arguments):
        return f"the arguments of {tool} must be named by strings"
    return dict(arguments)


def validate(
    tool: str, model: type[BaseModel], arguments: dict[str, Any]
) -> dict[str, Any] | str:
    """The arguments validated (and converted, as "5" for an integer) by ``model``, only those
    given, so that the method's own defaults stand; else the message naming each bad one."""
    try:
        checked = model.model_validate(arguments)
    except ValidationError as exc:
        problems: dict[str, str] = {}  # one per argument: a union reports each member's failure
        for error in exc.errors(include_url=False):
            name = str(error["loc"][0]) if error["loc"] else "?"
            problems.setdefault(name, _problem(model, arguments, name, error))
        return f"bad arguments for {tool}: " + "; ".join(problems.values())
    return {name: getattr(checked, name) for name in checked.model_fields_set}


def _problem(model: type[BaseModel], arguments: dict[str, Any], name: str, error: Any) -> str:
    if error["type"] == "missing":
        return f"missing required argument {name!r}"
    if error["type"] == "extra_forbidden":
        accepted = ", ".join(model.model_fields) or "none"
        return f"unknown argument {name!r:.{MAX_SHOWN}} (accepted: {accepted})"
    properties = model.model_json_schema().get("properties", {})
    expected = describe(properties.get(name, {}))
    shown = repr(arguments.get(name))[:MAX_SHOWN]
    return f"argument {name!r} must be {expected}, not {shown} ({error['msg']})"


def describe(schema: Mapping[str, Any]) -> str:
    """A JSON schema's type in words: "integer or null", "array of string"."""
    if "enum" in schema:
        return "one of " + ", ".join(json.dumps(value) for value in schema["enum"])
    if "const" in schema:
        return json.dumps(schema["const"])
    if "anyOf" in schema:
        return " or ".join(describe(each) for each in schema["anyOf"])
    kind = schema.get("type")
    if kind == "array" and isinstance(schema.get("items"), Mapping):
        return f"array of {describe(schema['items'])}"
    if isinstance(kind, str):
        return kind
    return "any JSON value"


def _json_kind(value: object) -> str:
    names = {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")
