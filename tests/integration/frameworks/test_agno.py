"""E2BTools in agno: an Agent lists e2bq's tools, agno runs them with the model's arguments and
injects the agent where a tool asks, and a PNG comes back as the run's image.

The model is scripted (tests/integration/frameworks/scripted.py): it calls tools as a Chat
Completions response would, so everything after it — agno's tool resolution, its FunctionCall,
e2bq's toolkit, the worker, the sandbox — is real.
"""

from __future__ import annotations

import copy
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from agno.agent import Agent
from agno.tools.function import FunctionCall, ToolResult
from agno.tools.toolkit import Toolkit

from e2bq import E2BToolkit
from e2bq.integrations.agno import E2BTools

from .scripted import ScriptedModel, calls, says

PLOT = "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [4, 5, 6])\nplt.title('a line')\nplt.show()\n"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def agent_with(tools: E2BTools, *turns: Any) -> tuple[Agent, ScriptedModel]:
    model = ScriptedModel(script=list(turns))
    return Agent(model=model, tools=[tools], telemetry=False), model


def results_of(run: Any) -> dict[str, dict[str, Any]]:
    """Each tool's result, as the model read it (JSON), by tool name."""
    return {tool.tool_name: json.loads(tool.result) for tool in run.tools or []}


def test_the_agent_offers_every_tool_with_no_agent_parameter(toolkit: E2BToolkit) -> None:
    agent, model = agent_with(E2BTools(toolkit=toolkit), says("nothing to do"))

    agent.run("list your tools")

    offered = {tool["function"]["name"]: tool["function"] for tool in model.offered[0]}
    assert set(offered) == set(toolkit.functions)
    for function in offered.values():
        assert function["description"]
        assert function["parameters"]["type"] == "object"
        assert "agent" not in function["parameters"]["properties"]
        assert "agent" not in function["parameters"].get("required", [])
    assert offered["run_python_code"]["parameters"]["required"] == ["code"]
    assert set(offered["download_png_result"]["parameters"]["properties"]) >= {"result_index", "output_path"}


def test_function_calls_run_the_tools_and_return_json(toolkit: E2BToolkit) -> None:
    tools = E2BTools(toolkit=toolkit)
    results = {}
    for name, arguments in [("run_python_code", {"code": "6 * 7"}), ("run_command", {"command": "echo hi"})]:
        function = tools.functions[name]._per_run_copy()
        function.process_entrypoint()
        outcome = FunctionCall(function=function, arguments=arguments).execute()
        assert outcome.status == "success", outcome.error
        assert isinstance(outcome.result, str)
        results[name] = json.loads(outcome.result)

    assert results["run_python_code"]["status"] == "success"
    assert results["run_python_code"]["results"][0]["text"] == "42"
    assert results["run_command"]["stdout"] == "hi\n"


def test_an_agent_runs_code_and_commands(toolkit: E2BToolkit) -> None:
    agent, _ = agent_with(
        E2BTools(toolkit=toolkit),
        calls(("run_python_code", {"code": "6 * 7"}), ("run_command", {"command": "echo hi"})),
        says("42, and hi"),
    )

    run = agent.run("compute")

    results = results_of(run)
    assert results["run_python_code"]["results"][0]["text"] == "42"
    assert results["run_command"]["status"] == "success"
    assert results["run_command"]["stdout"] == "hi\n"
    assert run.content == "42, and hi"


def test_a_bad_call_from_the_model_is_an_error_it_can_read(toolkit: E2BToolkit) -> None:
    agent, _ = agent_with(E2BTools(toolkit=toolkit), calls(("kill_job", {"job": "x"})), says("oops"))

    run = agent.run("kill it")

    (tool,) = run.tools or []
    assert "job_id" in str(tool.result)  # agno's own check or e2bq's, it names what is missing


def test_a_png_and_a_chart_become_the_runs_images(toolkit: E2BToolkit, tmp_path: Path) -> None:
    saved, chart = tmp_path / "plot.png", tmp_path / "chart.json"
    agent, _ = agent_with(
        E2BTools(toolkit=toolkit),
        calls(("run_python_code", {"code": PLOT})),
        calls(("download_png_result", {"output_path": str(saved)})),
        calls(("download_chart_data", {"output_path": str(chart)})),
        says("here is the plot"),
    )

    run = agent.run("plot it")

    results = results_of(run)
    assert results["download_png_result"]["status"] == "success", results
    assert results["download_png_result"]["result"] is True  # the agent got the image
    assert results["download_chart_data"]["result"]["title"] == "a line"
    assert saved.read_bytes().startswith(PNG_MAGIC)
    png, chart_png = run.images or []
    assert png.content == saved.read_bytes()
    assert chart_png.content == chart.with_suffix(".png").read_bytes()


def test_agno_injects_the_agent_into_the_download_tools(toolkit: E2BToolkit) -> None:
    tools = E2BTools(toolkit=toolkit)
    toolkit.run_python_code(PLOT)
    agent = Agent(model=ScriptedModel(), tools=[tools], telemetry=False)
    function = tools.functions["download_png_result"]._per_run_copy()
    function._agent = agent  # as the agent's tool resolution sets it (agno/agent/_tools.py)
    function.process_entrypoint()
    call = FunctionCall(function=function, arguments={})

    assert "agent" in inspect.signature(function.entrypoint).parameters
    assert "agent" not in function.parameters["properties"]
    outcome = call.execute()

    assert outcome.status == "success", outcome.error
    assert isinstance(outcome.result, ToolResult)
    assert json.loads(outcome.result.content)["status"] == "success"
    (image,) = outcome.result.images or []
    assert image.content is not None and image.content.startswith(PNG_MAGIC)
    Path(json.loads(outcome.result.content)["path"]).unlink()


def test_it_is_an_agno_toolkit_that_passes_the_rest_to_the_e2b_toolkit(toolkit: E2BToolkit) -> None:
    tools = E2BTools(toolkit=toolkit, include_tools=["run_python_code", "kill_job"])

    assert isinstance(tools, Toolkit)
    assert set(tools.functions) == {"run_python_code", "kill_job"}
    assert tools.name == "e2b_tools"
    assert tools.manager is toolkit.manager
    assert tools.toolkit is toolkit
    assert tools.list_managed_sandboxes()["status"] == "success"
    assert tools.call("run_python_code", '{"code": "1 + 1"}')["results"][0]["text"] == "2"
    assert copy.deepcopy(tools) is tools  # agno copies an agent's tools; the toolkit is shared
    with pytest.raises(AttributeError):
        tools._last_results  # noqa: B018  the toolkit's internals stay its own
    excluded = E2BTools(toolkit=toolkit, exclude_tools=["shutdown_all_sandboxes"])
    assert set(excluded.functions) == set(toolkit.functions) - {"shutdown_all_sandboxes"}


def test_it_makes_its_own_toolkit(client_env: dict[str, str], queue_worker: Any) -> None:
    tools = E2BTools(auto_create_default=False, global_workers=2)

    assert tools.global_workers == 2
    assert tools.list_managed_sandboxes()["default_sandbox_id"] is None
    # the original E2BToolkit's arguments, by position
    from e2bq import SandboxManager

    assert E2BTools(SandboxManager(), False, 3).global_workers == 3


def test_without_agno_the_import_says_how_to_install_it() -> None:
    blocked = "import sys; sys.modules['agno'] = None; import e2bq.integrations.agno"
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(Path(__file__).parents[3])}

    done = subprocess.run(
        [sys.executable, "-c", blocked], capture_output=True, text=True, env=env, timeout=60
    )

    assert done.returncode != 0
    assert "ImportError" in done.stderr
    assert "pip install 'e2bq[agno]'" in done.stderr
