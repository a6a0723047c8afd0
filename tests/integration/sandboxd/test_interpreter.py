"""The code interpreter (port 49999): stateful Python, logs, rich results, charts, contexts, timeouts."""

from __future__ import annotations

import base64

import pytest
from e2b import TimeoutException
from e2b_code_interpreter import Sandbox
from e2b_code_interpreter.charts import ChartType

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_state_is_kept_across_calls(sandbox: Sandbox) -> None:
    sandbox.run_code("counter = 40")
    sandbox.run_code("counter += 2")
    execution = sandbox.run_code("counter")
    assert execution.error is None
    assert execution.text == "42"


def test_stdout_and_stderr_are_in_the_logs(sandbox: Sandbox) -> None:
    execution = sandbox.run_code(
        "import sys\nprint('to stdout')\nprint('to stderr', file=sys.stderr)\nprint('again')"
    )
    assert execution.error is None
    assert "".join(execution.logs.stdout) == "to stdout\nagain\n"
    assert "".join(execution.logs.stderr) == "to stderr\n"
    assert execution.results == []


def test_the_last_expression_is_the_main_result(sandbox: Sandbox) -> None:
    execution = sandbox.run_code("x = 6\nx * 7")
    assert execution.text == "42"
    main = [r for r in execution.results if r.is_main_result]
    assert len(main) == 1
    assert main[0].text == "42"
    assert execution.execution_count is not None and execution.execution_count >= 1


def test_an_error_has_its_name_value_and_traceback(sandbox: Sandbox) -> None:
    execution = sandbox.run_code("def explode():\n    raise ValueError('bad value 17')\nexplode()")
    assert execution.error is not None
    assert execution.error.name == "ValueError"
    assert execution.error.value == "bad value 17"
    assert "explode" in execution.error.traceback
    assert "bad value 17" in execution.error.traceback
    # the kernel is still usable after an error
    assert sandbox.run_code("1 + 1").text == "2"


def test_a_matplotlib_line_plot_gives_a_png_and_its_chart(sandbox: Sandbox) -> None:
    code = """
import matplotlib.pyplot as plt
xs = [1, 2, 3, 4]
ys = [1, 4, 9, 16]
fig, ax = plt.subplots()
ax.plot(xs, ys, label="squares")
ax.set_title("Squares")
ax.set_xlabel("n")
ax.set_ylabel("n squared")
plt.show()
"""
    execution = sandbox.run_code(code)
    assert execution.error is None
    plots = [r for r in execution.results if r.png]
    assert len(plots) == 1
    plot = plots[0]
    assert base64.b64decode(plot.png).startswith(PNG_MAGIC)
    chart = plot.chart
    assert chart is not None
    assert chart.type == ChartType.LINE
    assert chart.title == "Squares"
    assert chart.x_label == "n"
    assert chart.y_label == "n squared"
    assert [e.label for e in chart.elements] == ["squares"]
    points = [(float(x), float(y)) for x, y in chart.elements[0].points]
    assert points == [(1.0, 1.0), (2.0, 4.0), (3.0, 9.0), (4.0, 16.0)]


def test_a_bar_chart_carries_its_values(sandbox: Sandbox) -> None:
    code = """
import matplotlib.pyplot as plt
fig, ax = plt.subplots()
ax.bar(["apples", "pears", "plums"], [3, 5, 7], label="fruit")
ax.set_title("Basket")
plt.show()
"""
    execution = sandbox.run_code(code)
    assert execution.error is None
    charts = [r.chart for r in execution.results if r.chart is not None]
    assert len(charts) == 1
    chart = charts[0]
    assert chart.type == ChartType.BAR
    assert chart.title == "Basket"
    bars = {e.label: float(e.value) for e in chart.elements}
    assert bars == {"apples": 3.0, "pears": 5.0, "plums": 7.0}


def test_a_dataframe_is_rendered_as_html(sandbox: Sandbox) -> None:
    execution = sandbox.run_code(
        "import pandas as pd\npd.DataFrame({'name': ['ada', 'bob'], 'score': [91, 78]})"
    )
    assert execution.error is None
    main = [r for r in execution.results if r.is_main_result]
    assert len(main) == 1
    assert main[0].html is not None
    assert "<table" in main[0].html
    assert "ada" in main[0].html and "78" in main[0].html


def test_a_code_context_has_its_own_state(sandbox: Sandbox) -> None:
    sandbox.run_code("where = 'default'")
    context = sandbox.create_code_context()
    assert context.language == "python"
    assert context.id

    assert sandbox.run_code("where = 'context'", context=context).error is None
    assert sandbox.run_code("where", context=context).text == "context"
    assert sandbox.run_code("where").text == "default"
    only_default = sandbox.run_code("only_here = 1\nonly_here")
    assert only_default.text == "1"
    missing = sandbox.run_code("only_here", context=context)
    assert missing.error is not None and missing.error.name == "NameError"


def test_a_code_context_starts_in_its_working_directory(sandbox: Sandbox) -> None:
    sandbox.files.make_dir("/home/user/project")
    context = sandbox.create_code_context(cwd="/home/user/project")
    assert context.cwd == "/home/user/project"
    assert sandbox.run_code("import os\nos.getcwd()", context=context).text == "/home/user/project"


def test_code_contexts_are_listed_and_removed(sandbox: Sandbox) -> None:
    context = sandbox.create_code_context()
    assert context.id in [c.id for c in sandbox.list_code_contexts()]
    sandbox.remove_code_context(context)
    assert context.id not in [c.id for c in sandbox.list_code_contexts()]
    # the default context is unaffected
    assert sandbox.run_code("2 * 21").text == "42"


def test_per_call_environment_variables(sandbox: Sandbox) -> None:
    code = "import os\nprint(os.environ.get('E2BQ_CELL_VAR'))"
    assert sandbox.run_code(code, envs={"E2BQ_CELL_VAR": "on"}).logs.stdout == ["on\n"]
    # the variable was set for that call only
    assert sandbox.run_code(code).logs.stdout == ["None\n"]


def test_a_timeout_interrupts_a_running_cell(sandbox: Sandbox) -> None:
    with pytest.raises(TimeoutException):
        sandbox.run_code("import time\ntime.sleep(30)\nfinished = True", timeout=2)
    # the kernel answers at once (within the bound below, far below the 30 s the cell wanted),
    # and the interrupted cell never reached its last line
    check = sandbox.run_code("'finished' in globals()", timeout=10)
    assert check.error is None
    assert check.text == "False"
