"""run_python_code: stateful Python in a sandbox, answered in E2B's result shape, never raising."""

from __future__ import annotations

import json

import pytest

from e2bq import E2BToolkit


def test_state_persists_between_calls(toolkit: E2BToolkit) -> None:
    assert toolkit.run_python_code("x = 41", timeout=30)["status"] == "success"

    result = toolkit.run_python_code("x + 1", timeout=30)

    assert result["status"] == "success"
    assert result["results"][0]["text"] == "42"
    assert result["error"] is None
    json.dumps(result)


def test_stdout_and_stderr_come_back_as_logs(toolkit: E2BToolkit) -> None:
    result = toolkit.run_python_code(
        "import sys\nprint('to out')\nprint('to err', file=sys.stderr)", timeout=30
    )

    assert result["status"] == "success"
    assert result["logs"] == {"stdout": ["to out\n"], "stderr": ["to err\n"]}
    assert result["results"] == []
    json.dumps(result)


def test_the_last_expression_is_the_main_result(toolkit: E2BToolkit) -> None:
    result = toolkit.run_python_code("'abc'.upper()", timeout=30)

    assert result["status"] == "success"
    [main] = result["results"]
    assert main["is_main_result"] is True
    assert main["text"] == "ABC"  # E2B shows a string result without its quotes
    assert isinstance(result["execution_count"], int)
    json.dumps(result)


def test_code_that_raises_is_an_error_with_the_exception(toolkit: E2BToolkit) -> None:
    result = toolkit.run_python_code("print('before')\n1 / 0", timeout=30)

    assert result["status"] == "error"
    assert result["error"] is not None
    assert result["error"]["name"] == "ZeroDivisionError"
    assert "division by zero" in result["error"]["value"]
    assert "ZeroDivisionError" in result["error"]["traceback"]
    assert "ZeroDivisionError" in result["message"]
    assert result["logs"]["stdout"] == ["before\n"]
    json.dumps(result)


def test_a_matplotlib_plot_comes_back_as_png_and_chart(toolkit: E2BToolkit) -> None:
    code = (
        "import matplotlib.pyplot as plt\n"
        "plt.plot([1, 2, 3], [4, 5, 6], label='line')\n"
        "plt.title('rising')\n"
        "plt.show()\n"
    )

    result = toolkit.run_python_code(code, timeout=60)

    assert result["status"] == "success", result
    [plot] = [r for r in result["results"] if "png" in r]
    assert plot["png"]  # base64 text
    assert plot["chart"]["type"] == "line"
    assert plot["chart"]["title"] == "rising"
    assert json.loads(json.dumps(result)) == result


def test_a_timeout_is_an_error_and_the_sandbox_stays_usable(toolkit: E2BToolkit) -> None:
    result = toolkit.run_python_code("import time\ntime.sleep(30)\nslept = True", timeout=1)

    assert result["status"] == "error"
    assert result["message"]
    json.dumps(result)
    after = toolkit.run_python_code("'slept' in globals()", timeout=30)
    assert after["status"] == "success", after
    assert after["results"][0]["text"] == "False"


def test_an_unknown_sandbox_is_an_error_dict(bare_toolkit: E2BToolkit) -> None:
    result = bare_toolkit.run_python_code("1", sandbox_id="no-such-sandbox", timeout=30)

    assert result["status"] == "error"
    assert "no-such-sandbox" in result["message"]
    json.dumps(result)


@pytest.mark.parametrize("timeout", [-1, 0, "ten", True])
def test_a_bad_timeout_is_an_error_dict(bare_toolkit: E2BToolkit, timeout: object) -> None:
    result = bare_toolkit.run_python_code("1", timeout=timeout)  # type: ignore[arg-type]

    assert result["status"] == "error"
    assert "timeout" in result["message"]


@pytest.mark.parametrize("code", [None, 42, b"print(1)", ["print(1)"]])
def test_code_that_is_not_a_string_is_an_error_dict(bare_toolkit: E2BToolkit, code: object) -> None:
    result = bare_toolkit.run_python_code(code)  # type: ignore[arg-type]

    assert result == {"status": "error", "message": "code must be a string"}


def test_writing_bytes_to_sys_stdout_buffer_is_a_clear_error(toolkit: E2BToolkit) -> None:
    # In a Jupyter kernel (E2B's too) sys.stdout is a text stream without a .buffer.
    result = toolkit.run_python_code('import sys\nsys.stdout.buffer.write(b"\\xff\\xfe ok\\n")')

    assert result["status"] == "error"
    assert result["error"] is not None
    assert result["error"]["name"] == "AttributeError"
    assert "buffer" in result["message"]
    json.dumps(result)


def test_output_that_is_not_utf8_arrives_with_replacement_characters(toolkit: E2BToolkit) -> None:
    result = toolkit.run_python_code('import os\nos.write(1, b"\\xff\\xfe ok\\n")')

    assert result["status"] == "success", result
    assert result["logs"]["stdout"] == ["\ufffd\ufffd ok\n"]
    json.dumps(result)
    assert toolkit.run_python_code("1 + 1")["results"][0]["text"] == "2"


def test_a_command_printing_invalid_utf8_is_answered(toolkit: E2BToolkit) -> None:
    result = toolkit.run_command("printf '\\xff\\xfe ok\\n'; printf 'err \\xc3\\n' >&2")

    assert result["status"] == "success", result
    assert result["exit_code"] == 0
    assert result["stdout"] == "\ufffd\ufffd ok\n"
    assert result["stderr"] == "err \ufffd\n"
    json.dumps(result)
