"""The agent's code interpreter: ``/execute`` and ``/contexts``, driven over its unix socket.

The agent runs as a real process (see ``conftest.start_agent``) with real IPython kernels; the lines
it streams are also fed to the e2b SDK's own parser, ``e2b_code_interpreter.models.parse_output``.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2b_code_interpreter.charts import BarChart, ChartType, LineChart
from e2b_code_interpreter.models import Execution, parse_output

from tests.procs import wait_for

from .conftest import AgentProcess, start_agent

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
Line = dict[str, Any]


def kernel_envs(home: Path) -> dict[str, str]:
    return {"HOME": str(home), "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    """One agent with a default context for the module (tests needing a clean kernel make one)."""
    tmp = tmp_path_factory.mktemp("interpreter")
    with start_agent(tmp, start_kernel=True, envs=kernel_envs(tmp / "home")) as running:
        yield running


@pytest.fixture
def client(agent: AgentProcess) -> Iterator[httpx.Client]:
    with agent.client(timeout=120) as http:
        yield http


@pytest.fixture
def context_id(client: httpx.Client) -> Iterator[str]:
    """A fresh context of its own for the test, deleted at the end."""
    response = client.post("/contexts", json={})
    assert response.status_code == 200, response.text
    created: str = response.json()["id"]
    yield created
    client.delete(f"/contexts/{created}")


def execute_raw(client: httpx.Client, code: str, **fields: Any) -> list[str]:
    body = {"code": code, "context_id": None, "language": None, "env_vars": None, **fields}
    with client.stream("POST", "/execute", json=body) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("application/x-ndjson")
        return [line for line in response.iter_lines() if line]


def execute(client: httpx.Client, code: str, **fields: Any) -> list[Line]:
    lines = [json.loads(line) for line in execute_raw(client, code, **fields)]
    assert lines[-1] == {"type": "end_of_execution"}
    assert [line["type"] for line in lines].count("end_of_execution") == 1
    return lines


def sdk_execution(client: httpx.Client, code: str, **fields: Any) -> Execution:
    """The SDK's own Execution, built by its parser from the lines the agent streams."""
    execution = Execution()
    for line in execute_raw(client, code, **fields):
        parse_output(execution, line)
    return execution


class Background:
    """An execution streamed in a thread of its own; ``started`` is set at its first stdout line."""

    def __init__(self, agent: AgentProcess, code: str, context_id: str) -> None:
        self.started = threading.Event()
        self.lines: list[Line] = []
        body = {"code": code, "context_id": context_id, "language": None, "env_vars": None}
        self._thread = threading.Thread(target=self._run, args=(agent, body), daemon=True)
        self._thread.start()

    def _run(self, agent: AgentProcess, body: dict[str, Any]) -> None:
        with agent.client(timeout=60) as client, client.stream("POST", "/execute", json=body) as response:
            for raw in response.iter_lines():
                self.lines.append(json.loads(raw))
                if self.lines[-1]["type"] == "stdout":
                    self.started.set()

    def wait_started(self) -> None:
        assert self.started.wait(timeout=30), "the background execution did not start"

    def join(self) -> list[Line]:
        self._thread.join(timeout=60)
        assert not self._thread.is_alive(), "the background execution did not finish"
        assert self.lines[-1] == {"type": "end_of_execution"}
        return self.lines


def of_type(lines: list[Line], kind: str) -> list[Line]:
    return [line for line in lines if line["type"] == kind]


def main_text(lines: list[Line]) -> str | None:
    mains = [line for line in of_type(lines, "result") if line["is_main_result"]]
    assert len(mains) <= 1
    return mains[0].get("text") if mains else None


# --- Executions ---------------------------------------------------------------------------------


def test_state_is_kept_across_executions(client: httpx.Client, context_id: str) -> None:
    first = execute(client, "counter = 40", context_id=context_id)
    assert of_type(first, "result") == []
    execute(client, "counter += 2", context_id=context_id)
    last = execute(client, "counter", context_id=context_id)
    assert main_text(last) == "42"
    counts = [line["execution_count"] for line in of_type(last, "number_of_executions")]
    assert counts == [3]


def test_stdout_and_stderr_stream_in_order_as_they_are_printed(client: httpx.Client) -> None:
    code = (
        "import sys, time\n"
        "print('first', flush=True)\n"
        "time.sleep(1)\n"
        "print('warning', file=sys.stderr, flush=True)\n"
        "time.sleep(0.3)\n"
        "print('second')\n"
    )
    arrivals: list[tuple[float, Line]] = []
    body = {"code": code, "context_id": None, "language": None, "env_vars": None}
    with client.stream("POST", "/execute", json=body) as response:
        for raw in response.iter_lines():
            arrivals.append((time.monotonic(), json.loads(raw)))
    logs = [(line["type"], line["text"]) for _, line in arrivals if line["type"] in ("stdout", "stderr")]
    assert logs == [("stdout", "first\n"), ("stderr", "warning\n"), ("stdout", "second\n")]
    first_at = next(at for at, line in arrivals if line.get("text") == "first\n")
    assert arrivals[-1][0] - first_at > 0.8, "stdout must be streamed, not sent at the end"
    assert all(isinstance(line["timestamp"], str) for _, line in arrivals if "timestamp" in line)


SLOW_PIPE_THREADS = """
import os, sys, time, types, ipykernel.iostream
_pipes = {sys.stdout._fid, sys.stderr._fid}
class _SlowOs(types.ModuleType):
    def __getattr__(self, name):
        return getattr(os, name)
    def read(self, fd, size):
        data = os.read(fd, size)
        if fd in _pipes:
            time.sleep(0.05)
        return data
ipykernel.iostream.os = _SlowOs("os")
"""


def test_low_level_output_is_all_there_when_the_execution_ends(
    client: httpx.Client, context_id: str
) -> None:
    """Output written to file descriptors 1 and 2 (os.write, a child process) reaches the kernel
    through pipes that threads read, here made slow: each execution still carries all of its own."""
    execute(client, SLOW_PIPE_THREADS, context_id=context_id)
    code = (
        "import os, subprocess\n"
        "os.write(1, b'\\xff raw %d\\n' * 300)\n"
        "os.write(2, b'raw err %d\\n')\n"
        "subprocess.run(['echo', 'child %d'])\n"
    )
    for n in range(3):
        lines = execute(client, code % (n, n, n), context_id=context_id)
        stdout = "".join(line["text"] for line in of_type(lines, "stdout"))
        assert stdout == f"\ufffd raw {n}\n" * 300 + f"child {n}\n"
        assert "".join(line["text"] for line in of_type(lines, "stderr")) == f"raw err {n}\n"


def test_low_level_output_sent_elsewhere_by_the_code_stays_there(
    client: httpx.Client, context_id: str, agent: AgentProcess
) -> None:
    code = (
        "import os, sys\n"
        "saved = os.dup(1)\n"
        "fd = os.open('redirected.txt', os.O_WRONLY | os.O_CREAT | os.O_TRUNC)\n"
        "os.dup2(fd, 1)\n"
        "os.write(1, b'to the file')\n"
    )
    lines = execute(client, code, context_id=context_id)
    assert of_type(lines, "error") == []
    assert (agent.home / "redirected.txt").read_bytes() == b"to the file"
    lines = execute(client, "os.dup2(saved, 1)\nos.write(1, b'back')", context_id=context_id)
    assert "".join(line["text"] for line in of_type(lines, "stdout")) == "back"
    assert (agent.home / "redirected.txt").read_bytes() == b"to the file"


def test_a_write_the_code_puts_on_sys_stdout_is_used(client: httpx.Client, context_id: str) -> None:
    code = (
        "import sys\n"
        "_write = sys.stdout.write\n"
        "sys.stdout.write = lambda text: _write(text.upper())\n"
        "print('shout')\n"
    )
    lines = execute(client, code, context_id=context_id)
    assert "".join(line["text"] for line in of_type(lines, "stdout")) == "SHOUT\n"


def test_the_last_expression_is_the_main_result_and_displays_are_not(client: httpx.Client) -> None:
    lines = execute(client, "display('shown')\n6 * 7")
    results = of_type(lines, "result")
    assert [(r["text"], r["is_main_result"]) for r in results] == [("shown", False), ("42", True)]
    assert main_text(execute(client, "'a string'")) == "a string"  # without quotes, as E2B
    assert main_text(execute(client, "None")) is None


def test_lists_and_dicts_also_come_as_json(client: httpx.Client) -> None:
    (result,) = of_type(execute(client, "{'a': [1, 2.5, None]}"), "result")
    assert result["json"] == {"a": [1, 2.5, None]}
    assert result["text"] == "{'a': [1, 2.5, None]}"


def test_an_error_has_its_name_value_and_a_plain_traceback(client: httpx.Client) -> None:
    lines = execute(client, "def explode():\n    raise ValueError('bad value 17')\nexplode()")
    (error,) = of_type(lines, "error")
    assert (error["name"], error["value"]) == ("ValueError", "bad value 17")
    assert isinstance(error["traceback"], str)
    assert "explode()" in error["traceback"]
    assert "ValueError: bad value 17" in error["traceback"]
    assert "\x1b[" not in error["traceback"]
    assert of_type(lines, "result") == []
    assert main_text(execute(client, "1 + 1")) == "2"


def test_the_sdk_parses_what_the_agent_streams(client: httpx.Client) -> None:
    execution = sdk_execution(client, "import sys\nprint('out')\nprint('err', file=sys.stderr)\n21 * 2")
    assert execution.text == "42"
    assert execution.logs.stdout == ["out\n"]
    assert execution.logs.stderr == ["err\n"]
    assert execution.error is None
    assert execution.execution_count is not None
    failed = sdk_execution(client, "1 / 0")
    assert failed.error is not None and failed.error.name == "ZeroDivisionError"


# --- Charts and data ----------------------------------------------------------------------------


def test_a_line_plot_gives_a_png_and_a_line_chart_with_its_points(client: httpx.Client) -> None:
    code = (
        "import matplotlib.pyplot as plt\n"
        "fig, ax = plt.subplots()\n"
        "ax.plot([1, 2, 3, 4], [1, 4, 9, 16], label='squares')\n"
        "ax.set_title('Squares')\n"
        "ax.set_xlabel('n')\n"
        "plt.show()\n"
    )
    lines = execute(client, code)
    assert of_type(lines, "error") == []
    (plot,) = of_type(lines, "result")
    assert plot["is_main_result"] is False
    assert base64.b64decode(plot["png"]).startswith(PNG_MAGIC)
    chart = plot["chart"]
    assert (chart["type"], chart["title"], chart["x_label"]) == ("line", "Squares", "n")
    assert chart["elements"] == [{"label": "squares", "points": [[1, 1], [2, 4], [3, 9], [4, 16]]}]
    parsed = Execution()
    parse_output(parsed, json.dumps(plot))
    assert isinstance(parsed.results[0].chart, LineChart)
    assert parsed.results[0].chart.type == ChartType.LINE


def test_a_bar_chart_gives_its_values(client: httpx.Client) -> None:
    code = (
        "import matplotlib.pyplot as plt\n"
        "plt.bar(['apples', 'pears', 'plums'], [3, 7, 5])\n"
        "plt.title('Fruit')\n"
        "plt.show()\n"
    )
    (plot,) = of_type(execute(client, code), "result")
    chart = plot["chart"]
    assert chart["type"] == "bar"
    values = {element["label"]: element["value"] for element in chart["elements"]}
    assert values == {"apples": 3, "pears": 7, "plums": 5}
    parsed = Execution()
    parse_output(parsed, json.dumps(plot))
    assert isinstance(parsed.results[0].chart, BarChart)


def test_a_dataframe_gives_html_text_and_data(client: httpx.Client) -> None:
    code = "import pandas as pd\npd.DataFrame({'name': ['a', 'b'], 'score': [1.5, float('nan')]})"
    (result,) = of_type(execute(client, code), "result")
    assert result["is_main_result"] is True
    assert "<table" in result["html"]
    assert "score" in result["text"]
    assert result["data"] == {"name": ["a", "b"], "score": [1.5, None]}


def test_a_pil_image_saved_to_a_file_is_also_displayed(client: httpx.Client, agent: AgentProcess) -> None:
    code = "from PIL import Image\nImage.new('RGB', (8, 8), 'red').save('red.png')"
    (shown,) = of_type(execute(client, code), "result")
    assert shown["is_main_result"] is False
    assert base64.b64decode(shown["png"]).startswith(PNG_MAGIC)
    assert (agent.home / "red.png").read_bytes().startswith(PNG_MAGIC)


# --- Per-call environment variables -------------------------------------------------------------


def test_env_vars_hold_for_one_execution_only(client: httpx.Client, context_id: str) -> None:
    execute(client, "import os, subprocess\nos.environ['KEEP'] = 'before'", context_id=context_id)
    code = (
        "print(os.environ['KEEP'], os.environ['ONLY_NOW'])\n"
        "print(subprocess.run(['sh', '-c', 'echo $ONLY_NOW'], capture_output=True, text=True).stdout)"
    )
    lines = execute(client, code, context_id=context_id, env_vars={"KEEP": "during", "ONLY_NOW": "yes"})
    assert "".join(line["text"] for line in of_type(lines, "stdout")) == "during yes\nyes\n\n"
    after = execute(client, "os.environ['KEEP'], os.environ.get('ONLY_NOW')", context_id=context_id)
    assert main_text(after) == "('before', None)"


def test_env_vars_are_restored_after_an_error(client: httpx.Client, context_id: str) -> None:
    lines = execute(client, "raise RuntimeError('x')", context_id=context_id, env_vars={"TEMP_VAR": "1"})
    assert of_type(lines, "error")[0]["name"] == "RuntimeError"
    after = execute(client, "import os\nos.environ.get('TEMP_VAR')", context_id=context_id)
    assert of_type(after, "result") == []  # None: no main result


# --- Disconnects, dead kernels ------------------------------------------------------------------


def test_a_client_that_goes_away_interrupts_the_execution(client: httpx.Client, context_id: str) -> None:
    code = "import time\nstarted = True\nfor _ in range(300):\n    time.sleep(0.1)\nfinished = True"
    body = {"code": code, "context_id": context_id, "language": None, "env_vars": None}
    # What the SDK's run_code(timeout=1) does: read until its deadline, then close the connection.
    with (
        pytest.raises(httpx.ReadTimeout),
        client.stream("POST", "/execute", json=body, timeout=httpx.Timeout(1.0)) as response,
    ):
        for _ in response.iter_lines():
            pass
    begun = time.monotonic()
    lines = execute(client, "started, 'finished' in globals()", context_id=context_id)
    assert time.monotonic() - begun < 5, "the next execution must not wait for the abandoned one"
    assert main_text(lines) == "(True, False)"


@pytest.mark.slow
def test_a_cell_that_ignores_interrupts_is_ended_by_a_new_kernel(
    client: httpx.Client, context_id: str
) -> None:
    code = (
        "import time\n"
        "while True:\n"
        "    try:\n"
        "        time.sleep(0.1)\n"
        "    except KeyboardInterrupt:\n"
        "        pass\n"
    )
    body = {"code": code, "context_id": context_id, "language": None, "env_vars": None}
    with (
        pytest.raises(httpx.ReadTimeout),
        client.stream("POST", "/execute", json=body, timeout=httpx.Timeout(1.0)) as response,
    ):
        for _ in response.iter_lines():
            pass
    begun = time.monotonic()
    lines = execute(client, "'time' in globals()", context_id=context_id)
    assert main_text(lines) == "False"  # a fresh kernel
    assert time.monotonic() - begun < 20


def test_executions_in_one_context_run_one_at_a_time(
    agent: AgentProcess, client: httpx.Client, context_id: str
) -> None:
    slow = Background(
        agent, "import time\nprint('go', flush=True)\ntime.sleep(1.5)\norder = ['slow']", context_id
    )
    slow.wait_started()
    lines = execute(client, "order.append('fast')\norder", context_id=context_id)
    assert main_text(lines) == "['slow', 'fast']"
    assert of_type(slow.join(), "error") == []


def test_an_execution_abandoned_while_queued_never_runs(
    agent: AgentProcess, client: httpx.Client, context_id: str
) -> None:
    slow = Background(agent, "import time\nprint('go', flush=True)\ntime.sleep(2)", context_id)
    slow.wait_started()
    body = {"code": "queued_ran = True", "context_id": context_id, "language": None, "env_vars": None}
    with pytest.raises(httpx.ReadTimeout):
        client.post("/execute", json=body, timeout=httpx.Timeout(0.5))
    assert of_type(slow.join(), "error") == []  # the running cell was not disturbed
    assert main_text(execute(client, "'queued_ran' in globals()", context_id=context_id)) == "False"


def test_restarting_a_context_ends_its_running_execution(
    agent: AgentProcess, client: httpx.Client, context_id: str
) -> None:
    running = Background(agent, "import time\nprint('go', flush=True)\ntime.sleep(30)", context_id)
    running.wait_started()
    begun = time.monotonic()
    assert client.post(f"/contexts/{context_id}/restart").is_success
    (error,) = of_type(running.join(), "error")
    assert error["name"] == "ContextRestarting"
    assert time.monotonic() - begun < 10
    assert main_text(execute(client, "'time' in globals()", context_id=context_id)) == "False"


def test_a_dead_kernel_is_reported_and_replaced(client: httpx.Client, context_id: str) -> None:
    execute(client, "lost = 1", context_id=context_id)
    lines = execute(client, "import os\nos._exit(3)", context_id=context_id)
    (error,) = of_type(lines, "error")
    assert error["name"] == "ContextRestarting"
    assert "exited with code 3" in error["value"]
    again = execute(client, "'lost' in globals()", context_id=context_id)
    assert main_text(again) == "False"


# --- Contexts -----------------------------------------------------------------------------------


def test_contexts_can_be_created_listed_restarted_and_deleted(
    client: httpx.Client, agent: AgentProcess
) -> None:
    workdir = agent.home / "project"
    workdir.mkdir()
    created = client.post("/contexts", json={"language": "python", "cwd": "project"})
    assert created.status_code == 200, created.text
    info = created.json()
    assert info == {"id": info["id"], "language": "python", "cwd": str(workdir)}
    context_id = info["id"]
    assert info in client.get("/contexts").json()

    lines = execute(client, "import os\nvalue = 5\nos.getcwd()", context_id=context_id)
    assert main_text(lines) == str(workdir)
    assert client.post(f"/contexts/{context_id}/restart").is_success
    (error,) = of_type(execute(client, "value", context_id=context_id), "error")
    assert error["name"] == "NameError"

    assert client.delete(f"/contexts/{context_id}").is_success
    assert all(c["id"] != context_id for c in client.get("/contexts").json())
    assert client.post("/execute", json={"code": "1", "context_id": context_id}).status_code == 404
    assert client.delete(f"/contexts/{context_id}").status_code == 404


def test_contexts_run_apart_from_each_other(client: httpx.Client, context_id: str) -> None:
    execute(client, "mine = 'separate'", context_id=context_id)
    assert of_type(execute(client, "mine"), "error")[0]["name"] == "NameError"


def test_bad_requests_are_refused_with_clear_errors(client: httpx.Client) -> None:
    unknown = client.post("/execute", json={"code": "1", "context_id": "no-such-context"})
    assert unknown.status_code == 404
    assert "no-such-context" in unknown.json()["message"]
    both = client.post("/execute", json={"code": "1", "context_id": "x", "language": "python"})
    assert both.status_code == 400
    ruby = client.post("/execute", json={"code": "1", "language": "ruby"})
    assert ruby.status_code == 400
    assert "python" in ruby.json()["message"]
    assert client.post("/contexts", json={"language": "cobol"}).status_code == 400
    assert client.post("/contexts", json={"cwd": "/no/such/dir"}).status_code == 400
    assert client.post("/execute", json={"code": 1}).status_code == 400
    assert client.post("/execute", json={"code": "1", "env_vars": {"A": 1}}).status_code == 400
    assert client.get("/contexts/x/restart").status_code == 405
    assert client.post("/contexts/no-such-context/restart").status_code == 404


def test_language_python_uses_the_default_context(client: httpx.Client) -> None:
    execute(client, "shared_default = 'yes'")
    assert main_text(execute(client, "shared_default", language="python")) == "yes"


def test_a_deleted_default_context_is_replaced_by_a_new_one(client: httpx.Client) -> None:
    execute(client, "old_default = True")
    contexts = [c["id"] for c in client.get("/contexts").json()]
    (default,) = [
        c
        for c in contexts
        if main_text(execute(client, "'old_default' in globals()", context_id=c)) == "True"
    ]
    assert client.delete(f"/contexts/{default}").is_success
    assert main_text(execute(client, "'old_default' in globals()")) == "False"
    assert default not in [c["id"] for c in client.get("/contexts").json()]


# --- Output cap and shutdown (an agent of their own) --------------------------------------------


def test_output_past_the_cap_is_dropped_and_said_so(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings: dict[str, Any] = {"start_kernel": True, "envs": kernel_envs(home), "max_output_bytes": 1000}
    with start_agent(tmp_path, **settings) as agent, agent.client(timeout=120) as client:
        lines = execute(client, "for i in range(100):\n    print('x' * 99)\n'done'")
    stdout = "".join(line["text"] for line in of_type(lines, "stdout"))
    assert len(stdout.encode()) == 1000
    assert "truncated" in of_type(lines, "stderr")[-1]["text"]
    assert main_text(lines) == "done"


def test_stopping_the_agent_leaves_no_kernel_behind(tmp_path: Path) -> None:
    home = tmp_path / "home"
    code = "import os, subprocess\nchild = subprocess.Popen(['sleep', '300'])\nprint(os.getpid(), child.pid)"
    pids: list[int] = []
    with start_agent(tmp_path, start_kernel=True, envs=kernel_envs(home)) as agent:
        with agent.client(timeout=120) as client:
            created = client.post("/contexts", json={})
            assert created.status_code == 200
            for context in (None, created.json()["id"]):
                lines = execute(client, code, context_id=context)
                pids += [int(pid) for pid in of_type(lines, "stdout")[0]["text"].split()]
        assert all(_alive(pid) for pid in pids)
    # the kernels and what they started are gone once the agent has stopped
    assert wait_for(lambda: not any(_alive(pid) for pid in pids), 10, f"processes {pids} to end")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status").read_text()
    return "State:\tZ" not in status
