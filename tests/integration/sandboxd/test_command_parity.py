"""Commands as E2B's envd runs them: a command's own variables stay with that command, and a
sandbox killed under a running command ends it with the SDK's ``SandboxNotRunningException``."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from e2b import AsyncSandbox, PtySize, SandboxNotRunningException
from e2b_code_interpreter import Sandbox

from tests.procs import SandboxHostProcess

KILL_AFTER = 1.0  # seconds the command runs before its sandbox is killed
# E2B's edge ends such a stream with this; the SDK then asks the sandbox's health and, finding
# it gone, raises SandboxNotRunningException
CUT = "ended before the stream completed"
GONE = "The sandbox was killed or reached its end of life while the request was in flight"

# -- environment variables ---------------------------------------------------------------------


def test_a_commands_variables_are_its_own(sandbox: Sandbox) -> None:
    result = sandbox.commands.run("echo $FOO", envs={"FOO": "bar"})
    assert result.exit_code == 0
    assert result.stdout.strip() == "bar"
    # not accessible to the commands that follow, in bash or any child of it
    assert sandbox.commands.run('echo "[$FOO]"').stdout == "[]\n"
    assert sandbox.commands.run("python3 -c \"import os; print(os.environ.get('FOO'))\"").stdout == "None\n"
    assert "FOO=" not in sandbox.commands.run("env").stdout


def test_a_commands_variables_reach_its_children(sandbox: Sandbox) -> None:
    result = sandbox.commands.run(
        "python3 -c \"import os; print(os.environ['FOO'])\"; bash -c 'echo $FOO'", envs={"FOO": "bar"}
    )
    assert result.stdout == "bar\nbar\n"


def test_a_background_commands_variables_stay_with_it(sandbox: Sandbox) -> None:
    handle = sandbox.commands.run("sleep 600", background=True, envs={"SECRET_TOKEN": "t0k"})
    try:
        assert sandbox.commands.run('echo "[$SECRET_TOKEN]"').stdout == "[]\n"
    finally:
        sandbox.commands.kill(handle.pid)


def test_a_variable_exported_by_one_command_is_gone_in_the_next(sandbox: Sandbox) -> None:
    sandbox.commands.run("export LEAK=1; echo 'export ALSO=1' >> /tmp/not-a-profile")
    assert sandbox.commands.run('echo "[$LEAK][$ALSO]"').stdout == "[][]\n"


def test_the_async_sdk_scopes_them_too(sdk_env: SandboxHostProcess) -> None:
    async def scenario() -> None:
        sandbox = await AsyncSandbox.create(timeout=60)
        try:
            assert (await sandbox.commands.run("echo $FOO", envs={"FOO": "bar"})).stdout == "bar\n"
            assert (await sandbox.commands.run('echo "[$FOO]"')).stdout == "[]\n"
        finally:
            await sandbox.kill()

    asyncio.run(scenario())


# -- the sandbox killed under a running command ------------------------------------------------


def _kill_soon(sandbox: Sandbox) -> threading.Timer:
    timer = threading.Timer(KILL_AFTER, sandbox.kill)
    timer.start()
    return timer


def _assert_gone(error: SandboxNotRunningException, started: float) -> None:
    assert CUT in str(error), str(error)
    assert GONE in str(error), str(error)
    assert time.monotonic() - started < 30  # the command's own 600 s did not matter


@pytest.mark.parametrize("how", ["foreground", "background", "connected", "pty"])
def test_killing_the_sandbox_ends_a_running_command(how: str, sdk_env: SandboxHostProcess) -> None:
    sandbox = Sandbox.create(timeout=60)
    started = time.monotonic()
    with pytest.raises(SandboxNotRunningException) as raised:
        if how == "foreground":
            _kill_soon(sandbox)
            sandbox.commands.run("sleep 600")
        elif how == "pty":
            handle = sandbox.pty.create(PtySize(rows=24, cols=80), timeout=0)
            _kill_soon(sandbox)
            handle.wait()
        else:
            handle = sandbox.commands.run("sleep 600", background=True, timeout=0)
            if how == "connected":
                handle = Sandbox.connect(sandbox.sandbox_id).commands.connect(handle.pid, timeout=0)
            _kill_soon(sandbox)
            handle.wait()
    _assert_gone(raised.value, started)


@pytest.mark.parametrize("how", ["foreground", "background", "pty"])
def test_the_async_sdk_sees_the_same(how: str, sdk_env: SandboxHostProcess) -> None:
    async def scenario() -> SandboxNotRunningException:
        sandbox = await AsyncSandbox.create(timeout=60)

        async def kill_soon() -> None:
            await asyncio.sleep(KILL_AFTER)
            await sandbox.kill()

        killer = asyncio.create_task(kill_soon())
        try:
            if how == "foreground":
                await sandbox.commands.run("sleep 600")
            elif how == "pty":
                size = PtySize(rows=24, cols=80)
                handle = await sandbox.pty.create(size, on_data=lambda _: None, timeout=0)
                await handle.wait()
            else:
                handle = await sandbox.commands.run("sleep 600", background=True, timeout=0)
                await handle.wait()
        except SandboxNotRunningException as exc:
            return exc
        finally:
            await killer
        raise AssertionError("the command outlived its sandbox")

    started = time.monotonic()
    _assert_gone(asyncio.run(scenario()), started)


def test_a_sandbox_killed_before_the_command_starts_refuses_it(sandbox: Sandbox) -> None:
    sandbox.kill()
    with pytest.raises(SandboxNotRunningException):
        sandbox.commands.run("echo never")
