"""The code interpreter's languages through the unmodified SDK: bash, JavaScript, TypeScript, R, Java.

For each: a value, stdout, an error with its traceback, a display result where the language has one,
state kept between cells, the context's cwd, and environment variables from the sandbox and for one
execution. A language whose kernel is not installed on this machine is skipped, not faked.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from e2b.exceptions import SandboxException, TimeoutException
from e2b_code_interpreter import AsyncSandbox, Execution, Sandbox

from e2bq.sandboxd.agent.interpreter.languages import LANGUAGES, runtime_of
from e2bq.sandboxd.settings import HostSettings
from tests.procs import SandboxHostProcess

pytestmark = pytest.mark.timeout(300)


@dataclass(frozen=True)
class Case:
    language: str
    value: str  # code whose value is 42
    value_text: str  # its result's text
    print_hello: str  # code that writes "hello\n" to stdout
    fail: str  # code that fails
    error_in: str  # a word the error's name, value or traceback holds
    set_x: str  # code that sets the state x to 7
    get_x: str  # code whose value (or stdout) shows x
    pwd: str  # code whose value (or stdout) shows the working folder
    getenv: str  # code whose value (or stdout) shows the variable E2BQ_LANG_VAR ("" or a default)
    spin: str  # code that runs until it is stopped
    display: str | None = None  # code that displays HTML


CASES = [
    Case(
        "bash",
        value="echo $((40 + 2))",
        value_text="42",
        print_hello="echo hello",
        fail="ls /no/such/folder",
        error_in="2",  # the exit status (bash_kernel reports it as the error's value)
        set_x="x=7",
        get_x="echo $x",
        pwd="pwd",
        getenv='echo "${E2BQ_LANG_VAR:-unset}"',
        spin="sleep 600",
    ),
    Case(
        "javascript",
        value="40 + 2",
        value_text="42",
        print_hello='console.log("hello")',
        fail='JSON.parse("{")',
        error_in="SyntaxError",
        set_x="let x = 7",
        get_x="x",
        pwd="process.cwd()",
        getenv='process.env.E2BQ_LANG_VAR ?? "unset"',
        spin="while (true) {}",
        display='const { display } = require("tslab"); display.html("<b>hi</b>")',
    ),
    Case(
        "typescript",
        value="const answer: number = 40 + 2; answer",
        value_text="42",
        print_hello='console.log("hello")',
        fail='throw new Error("boom")',
        error_in="boom",
        set_x="let x: number = 7",
        get_x="x",
        pwd="process.cwd()",
        getenv='process.env.E2BQ_LANG_VAR ?? "unset"',
        spin="while (true) {}",
    ),
    Case(
        "r",
        value="40 + 2",
        value_text="42",
        print_hello='cat("hello\\n")',
        fail='stop("boom")',
        error_in="boom",
        set_x="x <- 7",
        get_x="x",
        pwd="getwd()",
        getenv='Sys.getenv("E2BQ_LANG_VAR", "unset")',
        spin="while (TRUE) {}",
        display="data.frame(a = c(1, 2))",
    ),
    Case(
        "java",
        value="40 + 2",
        value_text="42",
        print_hello='System.out.println("hello")',
        fail='throw new RuntimeException("boom")',
        error_in="boom",
        set_x="int x = 7;",
        get_x="x",
        pwd='System.getProperty("user.dir")',
        getenv='System.getProperty("E2BQ_LANG_VAR", "unset")',
        spin="while (true) {}",
    ),
]


def _installed(language: str) -> bool:
    runtime = runtime_of(str(HostSettings.from_env().python))
    return not LANGUAGES[language].missing(runtime)


def _params() -> list[object]:
    return [
        pytest.param(case, id=case.language, marks=pytest.mark.skipif(
            not _installed(case.language), reason=f"{case.language}: {LANGUAGES[case.language].install}"
        ))
        for case in CASES
    ]


@pytest.fixture(scope="module")
def shared_sandbox(sandboxd: SandboxHostProcess) -> Iterator[Sandbox]:
    """One sandbox for the module (each language's kernel starts once), with a sandbox variable."""
    saved = dict(os.environ)
    os.environ.update(sandboxd.env)
    try:
        sbx = Sandbox.create(timeout=600, envs={"E2BQ_LANG_VAR": "from-sandbox"})
    finally:
        os.environ.clear()
        os.environ.update(saved)
    try:
        yield sbx
    finally:
        sbx.kill()


def _shown(execution: Execution) -> str:
    """What a cell showed: its first result's text (IRkernel's values are display data, as in
    E2B), else its stdout (bash has no values)."""
    results = [result.text for result in execution.results if result.text]
    if results:
        return str(results[0]).strip().removeprefix("[1] ").strip('"')
    return "".join(execution.logs.stdout).strip()


@pytest.mark.parametrize("case", _params())
def test_value_stdout_and_state(case: Case, shared_sandbox: Sandbox, sdk_env: SandboxHostProcess) -> None:
    assert _shown(shared_sandbox.run_code(case.value, language=case.language)) == case.value_text
    printed = shared_sandbox.run_code(case.print_hello, language=case.language)
    assert "".join(printed.logs.stdout) == "hello\n"
    assert printed.error is None
    context = shared_sandbox.create_code_context(language=case.language)
    try:  # contexts are removed after use: a sandbox's 1 GiB holds a few JVMs and node kernels only
        shared_sandbox.run_code(case.set_x, context=context)
        assert _shown(shared_sandbox.run_code(case.get_x, context=context)) == "7"
    finally:
        shared_sandbox.remove_code_context(context)


@pytest.mark.parametrize("case", _params())
def test_error_has_name_value_and_traceback(
    case: Case, shared_sandbox: Sandbox, sdk_env: SandboxHostProcess
) -> None:
    execution = shared_sandbox.run_code(case.fail, language=case.language)
    assert execution.error is not None
    error = execution.error
    assert case.error_in in f"{error.name} {error.value} {error.traceback}"
    # the kernel keeps working after an error
    assert _shown(shared_sandbox.run_code(case.value, language=case.language)) == case.value_text


@pytest.mark.parametrize("case", _params())
def test_cwd_per_context(case: Case, shared_sandbox: Sandbox, sdk_env: SandboxHostProcess) -> None:
    assert _shown(shared_sandbox.run_code(case.pwd, language=case.language)) == "/home/user"
    shared_sandbox.files.make_dir(f"/home/user/in-{case.language}")
    context = shared_sandbox.create_code_context(language=case.language, cwd=f"/home/user/in-{case.language}")
    try:
        assert context.language == case.language
        assert _shown(shared_sandbox.run_code(case.pwd, context=context)) == f"/home/user/in-{case.language}"
    finally:
        shared_sandbox.remove_code_context(context)


@pytest.mark.parametrize("case", _params())
def test_env_vars_from_sandbox_and_per_execution(
    case: Case, shared_sandbox: Sandbox, sdk_env: SandboxHostProcess
) -> None:
    run = shared_sandbox.run_code
    assert _shown(run(case.getenv, language=case.language)) == "from-sandbox"
    overridden = run(case.getenv, language=case.language, envs={"E2BQ_LANG_VAR": "it's \"one\" run"})
    assert _shown(overridden).replace('\\"', '"') == "it's \"one\" run"
    assert _shown(run(case.getenv, language=case.language)) == "from-sandbox"


@pytest.mark.parametrize("case", [c for c in _params() if c.values[0].display])  # type: ignore[attr-defined]
def test_display_result(case: Case, shared_sandbox: Sandbox, sdk_env: SandboxHostProcess) -> None:
    assert case.display is not None
    execution = shared_sandbox.run_code(case.display, language=case.language)
    assert execution.error is None
    assert any(result.html for result in execution.results)


@pytest.mark.parametrize("case", _params())
def test_timeout_stops_a_running_cell(
    case: Case, shared_sandbox: Sandbox, sdk_env: SandboxHostProcess
) -> None:
    """The SDK's timeout ends the request; the agent then interrupts the cell (the Java kernel exits on
    SIGINT and is started again), and the next cell runs."""
    with pytest.raises(TimeoutException):
        shared_sandbox.run_code(case.spin, language=case.language, timeout=2)
    assert _shown(shared_sandbox.run_code(case.value, language=case.language, timeout=60)) == case.value_text


def test_unknown_language_is_a_400_naming_the_supported_ones(sdk_env: SandboxHostProcess) -> None:
    sbx = Sandbox.create(timeout=120)
    try:
        with pytest.raises(SandboxException, match="400") as raised:
            sbx.run_code("1", language="cobol")
        assert "cobol" in str(raised.value)
        for name in LANGUAGES:
            assert name in str(raised.value)
        with pytest.raises(SandboxException, match="400"):
            sbx.create_code_context(language="cobol")
    finally:
        sbx.kill()


@pytest.mark.skipif(not _installed("javascript"), reason="tslab is not installed")
def test_async_sdk_and_top_level_await(sdk_env: SandboxHostProcess) -> None:
    async def scenario() -> None:
        sbx = await AsyncSandbox.create(timeout=120)
        try:
            execution = await sbx.run_code(
                "const wait = await new Promise((ok) => setTimeout(() => ok(5), 10)); wait * 2",
                language="js",
            )
            assert execution.text == "10" and execution.logs.stdout == []
            context = await sbx.create_code_context(language="typescript")
            await sbx.run_code('import * as path from "path"', context=context)
            execution = await sbx.run_code('path.join("a", "b")', context=context)
            assert execution.text == "a/b"
        finally:
            await sbx.kill()

    asyncio.run(scenario())


@pytest.mark.skipif(not _installed("javascript"), reason="tslab is not installed")
@pytest.mark.parametrize("language", ["js", "ts"])
def test_a_javascript_cells_last_value_is_its_main_result(
    language: str, shared_sandbox: Sandbox, sdk_env: SandboxHostProcess
) -> None:
    """As E2B's kernel: ``run_code("1+1", language="js").results[0].text == "2"``, not stdout;
    what the cell prints stays stdout, a display stays a display, no value is no result."""
    execution = shared_sandbox.run_code("1+1", language=language)
    assert [(r.text, r.is_main_result) for r in execution.results] == [("2", True)]
    assert execution.text == "2"
    assert execution.logs.stdout == [] and execution.error is None

    printing = 'console.log("2"); console.info("i"); ({ a: [1, 2] })'
    execution = shared_sandbox.run_code(printing, language=language)
    assert execution.logs.stdout == ["2\n", "i\n"]
    assert execution.text == "{ a: [ 1, 2 ] }"

    displaying = 'require("tslab").display.html("<b>hi</b>"); undefined'
    execution = shared_sandbox.run_code(displaying, language=language)
    assert [(r.html, r.is_main_result) for r in execution.results] == [("<b>hi</b>", False)]
    assert execution.text is None and execution.logs.stdout == []

    execution = shared_sandbox.run_code('process.stdout.write("raw\\n"); null', language=language)
    assert execution.results == [] and execution.logs.stdout == ["raw\n"]


def test_settings_python_is_in_a_runtime() -> None:
    """The runtime the languages are looked up in is the folder of the runtime's Python."""
    assert runtime_of("/opt/e2bq/runtime/bin/python") == Path("/opt/e2bq/runtime")
