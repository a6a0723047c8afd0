"""The code interpreter as E2B's template serves it: the default context listed, contexts made with
options, the kernel back after it is killed inside the sandbox, box-and-whisker charts."""

from __future__ import annotations

import asyncio

import pytest
from e2b import SandboxException
from e2b_code_interpreter import AsyncSandbox, Sandbox
from e2b_code_interpreter.charts import BoxAndWhiskerChart, ChartType

from tests.procs import SandboxHostProcess


def test_the_default_context_is_listed_before_any_code_ran(sdk_env: SandboxHostProcess) -> None:
    sandbox = Sandbox.create(timeout=120)
    try:
        [default] = sandbox.list_code_contexts()
        assert (default.language, default.cwd) == ("python", "/home/user")
        made = sandbox.create_code_context(cwd="/tmp", language="python")
        assert (made.language, made.cwd) == ("python", "/tmp")
        assert [c.id for c in sandbox.list_code_contexts()] == [default.id, made.id]
        assert sandbox.run_code("import os; os.getcwd()", context=made).text == "/tmp"
    finally:
        sandbox.kill()


def test_a_context_in_a_language_the_sandbox_lacks_is_refused(sandbox: Sandbox) -> None:
    with pytest.raises(SandboxException, match=r"400.*not supported"):
        sandbox.create_code_context(language="cobol")


def test_the_kernel_comes_back_after_it_is_killed_inside_the_sandbox(sandbox: Sandbox) -> None:
    context = sandbox.create_code_context()
    assert sandbox.run_code("kept = 1", context=context).error is None
    pid = sandbox.run_code("import os; os.getpid()", context=context).text
    sandbox.commands.run(f"kill -9 {pid}")
    # a new kernel (fresh state, as after Jupyter restarts one) serves the same context
    after = sandbox.run_code("import os; (os.getpid(), 'kept' in globals())", context=context)
    assert after.error is None
    assert after.text is not None and after.text != f"({pid}, True)" and after.text.endswith("False)")
    assert sandbox.run_code("21 * 2").text == "42"  # the default context never noticed


BOX_PLOT = """
import matplotlib.pyplot as plt
data = {'Class A': [85, 90, 78, 92, 88], 'Class B': [95, 89, 76, 91, 84, 87], 'Class C': [75, 82, 88, 79, 86]}
fig, ax = plt.subplots(figsize=(10, 6))
ax.boxplot(data.values(), tick_labels=data.keys(), patch_artist=True, medianprops=dict(color="black"))
ax.set_title('Exam Scores Distribution')
ax.set_xlabel('Class')
ax.set_ylabel('Score')
plt.show()
"""


def test_a_box_and_whisker_plot_gives_its_chart(sandbox: Sandbox) -> None:
    execution = sandbox.run_code(BOX_PLOT)
    assert execution.error is None
    assert execution.logs.stderr == []
    [result] = execution.results
    chart = result.chart
    assert isinstance(chart, BoxAndWhiskerChart)
    assert chart.type == ChartType.BOX_AND_WHISKER
    assert (chart.title, chart.x_label, chart.y_label) == ("Exam Scores Distribution", "Class", "Score")
    by_label = {element.label: element for element in chart.elements}
    assert list(by_label) == ["Class A", "Class B", "Class C"]
    a = by_label["Class A"]
    assert (a.min, a.first_quartile, a.median, a.third_quartile, a.max) == (78, 85, 88, 90, 92)
    assert by_label["Class B"].outliers == [76]
    assert result.png  # the picture comes too


def test_async_sdk_lists_contexts_and_draws_box_plots(sdk_env: SandboxHostProcess) -> None:
    async def scenario() -> tuple[int, str]:
        sandbox = await AsyncSandbox.create(timeout=120)
        try:
            contexts = await sandbox.list_code_contexts()
            execution = await sandbox.run_code(BOX_PLOT)
            chart = execution.results[0].chart
            return len(contexts), chart.type if chart is not None else ""
        finally:
            await sandbox.kill()

    assert asyncio.run(scenario()) == (1, ChartType.BOX_AND_WHISKER)
