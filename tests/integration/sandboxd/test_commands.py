"""Commands in a sandbox (envd's process service): foreground, background, stdin, signals, reconnect."""

from __future__ import annotations

import pytest
from e2b import CommandExitException
from e2b_code_interpreter import Sandbox

from tests.procs import SandboxHostProcess, wait_for


def _pids(sandbox: Sandbox) -> set[int]:
    return {process.pid for process in sandbox.commands.list()}


# -- foreground --------------------------------------------------------------------------------


def test_stdout_stderr_and_exit_code_of_a_command(sandbox: Sandbox) -> None:
    result = sandbox.commands.run("echo out; echo err >&2; printf 'no newline'")
    assert result.exit_code == 0
    assert result.stdout == "out\nno newline"
    assert result.stderr == "err\n"
    assert result.error is None


def test_a_failing_command_raises_with_its_exit_code_and_stderr(sandbox: Sandbox) -> None:
    with pytest.raises(CommandExitException) as raised:
        sandbox.commands.run("echo partial; echo 'it broke' >&2; exit 7")
    assert raised.value.exit_code == 7
    assert raised.value.stderr == "it broke\n"
    assert raised.value.stdout == "partial\n"


def test_a_command_runs_in_the_given_working_directory(sandbox: Sandbox) -> None:
    sandbox.files.make_dir("/home/user/work/sub")
    assert sandbox.commands.run("pwd").stdout == "/home/user\n"
    assert sandbox.commands.run("pwd", cwd="/home/user/work/sub").stdout == "/home/user/work/sub\n"
    assert sandbox.commands.run("pwd", cwd="/tmp").stdout == "/tmp\n"


def test_a_command_sees_the_environment_it_is_given(sandbox: Sandbox) -> None:
    result = sandbox.commands.run('echo "$GREETING/$OTHER"', envs={"GREETING": "hello world", "OTHER": "x=y"})
    assert result.stdout == "hello world/x=y\n"
    # per-command variables do not stick to the sandbox
    assert sandbox.commands.run('echo "[$GREETING]"').stdout == "[]\n"


def test_the_sandbox_environment_given_at_create_reaches_every_command(
    sdk_env: SandboxHostProcess,
) -> None:
    sandbox = Sandbox.create(timeout=60, envs={"PROJECT": "e2bq", "SHARED": "from-sandbox"})
    try:
        assert sandbox.commands.run('echo "$PROJECT $SHARED"').stdout == "e2bq from-sandbox\n"
        # a command's own variable wins over the sandbox's
        overridden = sandbox.commands.run('echo "$SHARED"', envs={"SHARED": "from-command"})
        assert overridden.stdout == "from-command\n"
    finally:
        sandbox.kill()


# -- background --------------------------------------------------------------------------------


def test_a_background_command_has_a_pid_and_is_listed(sandbox: Sandbox) -> None:
    handle = sandbox.commands.run("sleep 600", background=True)
    try:
        assert handle.pid > 0
        listed = {p.pid: p for p in sandbox.commands.list()}
        assert handle.pid in listed
        assert listed[handle.pid].cmd == "/bin/bash"
        assert listed[handle.pid].args[-1] == "sleep 600"
    finally:
        sandbox.commands.kill(handle.pid)


def test_stdin_reaches_a_background_command(sandbox: Sandbox) -> None:
    handle = sandbox.commands.run("read line; echo got $line", background=True, stdin=True)
    sandbox.commands.send_stdin(handle.pid, "hello\n")
    result = handle.wait()
    assert result.exit_code == 0
    assert result.stdout == "got hello\n"


def test_closing_stdin_ends_a_reader(sandbox: Sandbox) -> None:
    handle = sandbox.commands.run("cat; echo eof", background=True, stdin=True)
    sandbox.commands.send_stdin(handle.pid, "one\n")
    sandbox.commands.send_stdin(handle.pid, b"two\n")
    sandbox.commands.close_stdin(handle.pid)
    assert handle.wait().stdout == "one\ntwo\neof\n"


def test_kill_ends_a_background_command(sandbox: Sandbox) -> None:
    handle = sandbox.commands.run("sleep 600", background=True)
    assert sandbox.commands.kill(handle.pid) is True
    with pytest.raises(CommandExitException) as raised:
        handle.wait()
    assert raised.value.exit_code != 0
    wait_for(lambda: handle.pid not in _pids(sandbox), 10, "the killed process to leave the list")
    assert sandbox.commands.kill(handle.pid) is False


def test_kill_reaches_the_children_of_a_command(sandbox: Sandbox) -> None:
    def sleeps() -> set[str]:
        lines = sandbox.commands.run("ps -eo args").stdout.splitlines()
        return {line for line in lines if line in ("sleep 600", "sleep 601")}

    handle = sandbox.commands.run("sleep 600 & sleep 601; wait", background=True)
    wait_for(lambda: sleeps() == {"sleep 600", "sleep 601"}, 10, "both child sleeps")
    sandbox.commands.kill(handle.pid)
    wait_for(lambda: not sleeps(), 10, "every process of the killed command to end")


def test_reconnect_to_a_background_command_by_pid(sandbox: Sandbox) -> None:
    handle = sandbox.commands.run("read line; echo reconnected $line; exit 3", background=True, stdin=True)
    pid = handle.pid
    handle.disconnect()
    assert pid in _pids(sandbox)  # leaving the stream leaves the process running

    again = sandbox.commands.connect(pid)
    assert again.pid == pid
    sandbox.commands.send_stdin(pid, "yes\n")
    with pytest.raises(CommandExitException) as raised:
        again.wait()
    assert raised.value.exit_code == 3
    assert raised.value.stdout == "reconnected yes\n"


@pytest.mark.slow
def test_a_background_command_without_timeout_outlives_the_default_deadline(
    sandbox: Sandbox,
) -> None:
    """``timeout=0``: no stream deadline, and the process is reachable by pid after 70 s."""
    handle = sandbox.commands.run(
        "sleep 70; touch /tmp/seventy; read line; echo finished $line",
        background=True,
        timeout=0,
        stdin=True,
    )
    pid = handle.pid
    handle.disconnect()
    wait_for(lambda: sandbox.files.exists("/tmp/seventy"), 120, "70 seconds to pass in the sandbox")
    assert pid in _pids(sandbox)

    again = sandbox.commands.connect(pid, timeout=0)
    sandbox.commands.send_stdin(pid, "ok\n")
    result = again.wait()
    assert result.exit_code == 0
    assert result.stdout == "finished ok\n"
