"""Tool calling as model APIs do it: the toolkit's tools in OpenAI's and Anthropic's shapes, checked
against their own request types, and tool calls — as those APIs send them back — run with ``call``
and ``call_tool_call``, which answer every malformed call with an error dict and never raise."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from anthropic.types import ToolParam, ToolUseBlock
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletionFunctionToolParam, ChatCompletionMessageToolCall
from openai.types.responses import FunctionToolParam, ResponseFunctionToolCall
from pydantic import TypeAdapter

from e2bq import E2BToolkit

STATUSES = {"success", "error", "accepted", "running", "done", "cancelled", "not_found"}

# (tool, arguments) a model might send, and words the error must hold to tell it what to change
MALFORMED: dict[str, tuple[Any, Any, list[str]]] = {
    "unknown tool": ("run_pyhton_code", {"code": "1"}, ["unknown tool", "run_python_code"]),
    "tool name not a string": (["run_python_code"], {}, ["unknown tool"]),
    "malformed JSON": ("run_python_code", '{"code": "1"', ["not valid JSON", "char 12"]),
    "JSON with NaN": ("run_command", '{"command": NaN}', ["not valid JSON", "NaN"]),
    "JSON array": ("run_python_code", '["1"]', ["must be a JSON object", "array"]),
    "JSON string": ("run_python_code", '"1"', ["must be a JSON object", "string"]),
    "arguments a list": ("kill_job", ["x"], ["must be a dict", "list"]),
    "arguments a number": ("kill_job", 7, ["must be a dict", "int"]),
    "missing required": ("run_python_code", {}, ["missing required argument 'code'"]),
    "missing required (JSON)": ("run_command", "{}", ["missing required argument 'command'"]),
    "unknown argument": (
        "run_python_code",
        {"cod": "1"},
        ["unknown argument 'cod'", "accepted: code, sandbox_id, timeout"],
    ),
    "the hidden agent": ("download_png_result", {"agent": "me"}, ["unknown argument 'agent'"]),
    "wrong type": ("run_python_code", {"code": 42}, ["argument 'code' must be string", "not 42"]),
    "wrong type (JSON)": (
        "run_python_code",
        '{"code": "1", "timeout": "soon"}',
        ["argument 'timeout' must be integer or null", "'soon'"],
    ),
    "wrong item type": ("map_python_code", {"codes": ["1", 2]}, ["'codes' must be array of string"]),
    "not one of": ("get_job_output", {"job_id": "j", "stream": "stdin"}, ['one of "stdout", "stderr"']),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_call_is_an_error_that_says_what_to_change(bare_toolkit: E2BToolkit, case: str) -> None:
    name, arguments, words = MALFORMED[case]

    result = bare_toolkit.call(name, arguments)

    assert result["status"] == "error", result
    for word in words:
        assert word in result["message"], result["message"]
    json.dumps(result)


def test_arguments_as_a_json_string_run_the_tool(toolkit: E2BToolkit) -> None:
    code = toolkit.call("run_python_code", '{"code": "6 * 7"}')
    command = toolkit.call("run_command", json.dumps({"command": "echo hi"}))
    listed = toolkit.call("list_managed_sandboxes", "")
    none = toolkit.call("list_managed_sandboxes", None)
    converted = toolkit.call("run_python_code", '{"code": "1 + 1", "timeout": "30"}')  # as models do

    assert code["status"] == "success" and code["results"][0]["text"] == "42"
    assert command["status"] == "success" and command["stdout"] == "hi\n"
    assert listed["status"] == none["status"] == "success"
    assert converted["status"] == "success" and converted["results"][0]["text"] == "2"


def _walk(schema: Any) -> list[dict[str, Any]]:
    """Every schema inside ``schema`` (itself included) that is not a name-keyed map."""
    if isinstance(schema, list):
        return [node for item in schema for node in _walk(item)]
    if not isinstance(schema, dict):
        return []
    found = [schema]
    for key, value in schema.items():
        children = list(value.values()) if key in ("properties", "$defs") else [value]
        found += [node for child in children for node in _walk(child)]
    return found


def _check_parameters(parameters: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator.check_schema(parameters)
    assert parameters["type"] == "object"
    assert isinstance(parameters["properties"], dict)
    assert "agent" not in parameters["properties"]
    assert not [node for node in _walk(parameters) if "title" in node], "pydantic titles left in"


def test_openai_chat_tools_are_chat_completions_tool_params(bare_toolkit: E2BToolkit) -> None:
    tools = bare_toolkit.openai_tools()
    adapter = TypeAdapter(ChatCompletionFunctionToolParam)

    names = [tool["function"]["name"] for tool in tools]
    assert names == list(bare_toolkit.functions)
    for tool in tools:
        assert adapter.validate_python(tool) == tool
        _check_parameters(tool["function"]["parameters"])
        assert tool["function"]["description"]
    by_name = {tool["function"]["name"]: tool["function"] for tool in tools}
    assert by_name["run_python_code"]["parameters"]["required"] == ["code"]
    assert "strict" not in by_name["run_python_code"]  # optional arguments: not strict-compatible
    assert by_name["list_managed_sandboxes"]["parameters"]["properties"] == {}
    assert by_name["list_managed_sandboxes"]["strict"] is True  # no argument: strict as it is
    json.dumps(tools)


def test_openai_responses_tools_are_function_tool_params(bare_toolkit: E2BToolkit) -> None:
    tools = bare_toolkit.openai_tools(api="responses")
    adapter = TypeAdapter(FunctionToolParam)

    assert [tool["name"] for tool in tools] == list(bare_toolkit.functions)
    for tool in tools:
        assert adapter.validate_python(tool) == tool
        _check_parameters(tool["parameters"])
    by_name = {tool["name"]: tool for tool in tools}
    assert by_name["run_command"]["strict"] is False  # the API's default is true: say it
    with pytest.raises(ValueError, match="'chat' or 'responses'"):
        bare_toolkit.openai_tools(api="assistants")  # type: ignore[call-overload]


def test_anthropic_tools_are_tool_params(bare_toolkit: E2BToolkit) -> None:
    tools = bare_toolkit.anthropic_tools()
    adapter = TypeAdapter(ToolParam)

    assert [tool["name"] for tool in tools] == list(bare_toolkit.functions)
    for tool in tools:
        assert adapter.validate_python(tool) == tool
        _check_parameters(tool["input_schema"])


def test_openai_tool_calls_are_dispatched(toolkit: E2BToolkit) -> None:
    chat = ChatCompletionMessageToolCall.model_validate({
        "id": "call_1",
        "type": "function",
        "function": {"name": "run_python_code", "arguments": '{"code": "6 * 7"}'},
    })
    responses = ResponseFunctionToolCall.model_validate({
        "type": "function_call",
        "call_id": "call_2",
        "name": "run_command",
        "arguments": '{"command": "echo hi"}',
    })

    by_fields = toolkit.call(chat.function.name, chat.function.arguments)
    assert by_fields["status"] == "success" and by_fields["results"][0]["text"] == "42"
    assert toolkit.call_tool_call(chat)["results"][0]["text"] == "42"
    assert toolkit.call_tool_call(chat.model_dump())["results"][0]["text"] == "42"
    assert toolkit.call_tool_call(responses)["stdout"] == "hi\n"
    assert toolkit.call_tool_call(responses.model_dump())["stdout"] == "hi\n"


def test_anthropic_tool_use_blocks_are_dispatched(toolkit: E2BToolkit) -> None:
    block = ToolUseBlock.model_validate(
        {"id": "toolu_1", "type": "tool_use", "name": "run_python_code", "input": {"code": "6 * 7"}}
    )

    assert toolkit.call_tool_call(block)["results"][0]["text"] == "42"
    assert toolkit.call_tool_call(block.model_dump())["results"][0]["text"] == "42"


@pytest.mark.parametrize("tool_call", [None, 3, "run_python_code", {"function": {}}, {"input": {}}])
def test_what_is_no_tool_call_is_an_error(bare_toolkit: E2BToolkit, tool_call: Any) -> None:
    result = bare_toolkit.call_tool_call(tool_call)

    assert result["status"] == "error"
    assert "not a tool call" in result["message"]


# -- never raises: random calls, mostly refused before they reach a sandbox -----------------------

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
parameter_names = st.sampled_from(["code", "command", "job_id", "sandbox_id", "timeout", "stream", "agent"])
argument_dicts = st.dictionaries(st.one_of(parameter_names, st.text(max_size=8)), json_values, max_size=4)
arguments = st.one_of(
    st.none(),
    argument_dicts,
    argument_dicts.map(json.dumps),
    argument_dicts.map(lambda value: json.dumps(value)[:-1]),  # cut short
    st.text(max_size=30),
    json_values,
)
# tools that make nothing (a bare toolkit has no default sandbox), and names of no tool
tool_names = st.one_of(
    st.sampled_from(["run_python_code", "run_command", "get_job_status", "kill_job", "get_job_output"]),
    st.text(max_size=12),
)


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(name=tool_names, arguments=arguments)
def test_call_never_raises(bare_toolkit: E2BToolkit, name: Any, arguments: Any) -> None:
    result = bare_toolkit.call(name, arguments)

    assert isinstance(result, dict)
    assert result["status"] in STATUSES, result
    if result["status"] == "error":
        assert isinstance(result["message"], str) and result["message"]
        assert "internal error" not in result["message"], result["message"]
    json.dumps(result)
