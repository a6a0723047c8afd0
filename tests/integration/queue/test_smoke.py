from __future__ import annotations

from e2bq import E2BToolkit


def test_run_python_code_returns_the_e2b_shape(toolkit: E2BToolkit) -> None:
    result = toolkit.run_python_code("print('hello')\n2 + 2", timeout=30)
    assert result["status"] == "success"
    assert result["logs"]["stdout"] == ["hello\n"]
    assert result["results"][0]["text"] == "4"
    assert result["results"][0]["is_main_result"] is True
