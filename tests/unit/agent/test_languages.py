"""The language table's generated code, run by the real bash, node and R of this host: one
execution's variables are set, then each variable gets back its own value (or is unset again)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from e2bq.sandboxd.agent.interpreter import mime
from e2bq.sandboxd.agent.interpreter.contexts import normalize_language
from e2bq.sandboxd.agent.interpreter.languages import LANGUAGES, bad_env_names, error_from_stderr

TRICKY = {"E2BQ_KEPT": 'it\'s "quoted" \\ $HOME `x` ü\nline2', "E2BQ_NEW": "new"}


def _run(argv: list[str], code: str) -> str:
    return subprocess.run([*argv, code], capture_output=True, text=True, check=True, timeout=60).stdout


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_sets_and_restores() -> None:
    spec = LANGUAGES["bash"]
    assert spec.set_env is not None
    code = "\n".join(
        [
            "export E2BQ_KEPT=before",
            spec.set_env(TRICKY),
            'printf "%s|%s\\n" "$E2BQ_KEPT" "$E2BQ_NEW"',
            spec.restore_env,
            'printf "%s|%s\\n" "$E2BQ_KEPT" "${E2BQ_NEW-unset}"',
        ]
    )
    out = _run(["bash", "-c"], code)
    assert out == f"{TRICKY['E2BQ_KEPT']}|new\nbefore|unset\n"


@pytest.mark.skipif(shutil.which("node") is None, reason="no node")
def test_javascript_sets_and_restores() -> None:
    spec = LANGUAGES["javascript"]
    assert spec.set_env is not None
    code = ";\n".join(
        [
            'process.env.E2BQ_KEPT = "before"',
            spec.set_env(TRICKY),
            "console.log(JSON.stringify([process.env.E2BQ_KEPT, process.env.E2BQ_NEW]))",
            spec.restore_env,
            'console.log(JSON.stringify([process.env.E2BQ_KEPT, "E2BQ_NEW" in process.env]))',
        ]
    )
    out = _run(["node", "-e"], code).splitlines()
    assert out == [
        json.dumps([TRICKY["E2BQ_KEPT"], "new"], ensure_ascii=False, separators=(",", ":")),
        '["before",false]',
    ]


@pytest.mark.skipif(shutil.which("Rscript") is None, reason="no R")
def test_r_sets_and_restores() -> None:
    spec = LANGUAGES["r"]
    assert spec.set_env is not None
    code = "\n".join(
        [
            'Sys.setenv(E2BQ_KEPT = "before")',
            spec.set_env(TRICKY),
            f'cat(Sys.getenv("E2BQ_KEPT") == {json.dumps(TRICKY["E2BQ_KEPT"], ensure_ascii=False)}, '
            'Sys.getenv("E2BQ_NEW"), "\\n")',
            spec.restore_env,
            'cat(Sys.getenv("E2BQ_KEPT"), Sys.getenv("E2BQ_NEW", "unset"), "\\n")',
        ]
    )
    assert _run(["Rscript", "-e"], code).splitlines() == ["TRUE new ", "before unset "]


def test_names_errors_and_aliases() -> None:
    assert bad_env_names(["OK_1", "1BAD", "A-B", ""]) == ["1BAD", "A-B", ""]
    assert error_from_stderr("x.js:2\nthrow e\n\nTypeError: nope\n  at y") == (
        "TypeError",
        "nope",
        "x.js:2\nthrow e\n\nTypeError: nope\n  at y",
    )
    assert error_from_stderr("1:1 - Cannot find name 'foo'.")[:2] == (
        "Error",
        "1:1 - Cannot find name 'foo'.",
    )
    assert [normalize_language(name) for name in ("JS", "ts", "sh", None, " R ")] == [
        "javascript",
        "typescript",
        "bash",
        "python",
        "r",
    ]


def test_a_display_marked_as_the_cells_value_is_the_main_result() -> None:
    """tslab's last value arrives as a display carrying mime's mark (languages' tslab startup)."""
    marked = {"data": {"text/plain": "2"}, "metadata": {mime.MAIN_RESULT_MARK: True}, "transient": {}}
    plain = {"data": {"text/html": "<b>hi</b>"}, "metadata": {}, "transient": {}}

    def line(content: dict[str, object]) -> mime.Output | None:
        return mime.from_message({"msg_type": "display_data", "content": content, "header": {}})

    assert line(marked) == mime.result({"text/plain": "2"}, is_main_result=True)
    assert line(plain) == mime.result({"text/html": "<b>hi</b>"}, is_main_result=False)
    for language in ("javascript", "typescript"):
        startup = LANGUAGES[language].startup
        assert startup is not None and mime.MAIN_RESULT_MARK in startup({})
