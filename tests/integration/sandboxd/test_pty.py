"""PTY sessions (the SDK's ``sandbox.pty``): an interactive login shell on a real pseudo-terminal,
typed into, resized, followed from a second client, killed, and ended by ``exit``."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Iterator

import pytest
from e2b import (
    AsyncSandbox,
    CommandExitException,
    CommandResult,
    InvalidArgumentException,
    NotFoundException,
    PtySize,
    TimeoutException,
)
from e2b.sandbox_sync.commands.command_handle import CommandHandle
from e2b_code_interpreter import Sandbox

from tests.procs import SandboxHostProcess

SIZE = PtySize(rows=24, cols=80)
CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
WAIT = 30.0  # seconds a shell gets to answer: generous, the machine is shared


class Screen:
    """What a PTY printed, gathered by a thread that follows its handle (the sync SDK's way)."""

    def __init__(self, handle: CommandHandle) -> None:
        self.handle = handle
        self.data = bytearray()
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._follow, daemon=True)
        self.thread.start()

    def _follow(self) -> None:
        try:
            for _, _, pty in self.handle:
                if pty:
                    self.data.extend(pty)
        except Exception as exc:  # the test asserts on it
            self.error = exc

    def wait(self) -> CommandResult:
        """The session's end, as the SDK's ``handle.wait()`` reports it once the stream is read."""
        self.thread.join(WAIT)
        assert not self.thread.is_alive(), "the session did not end"
        if self.error is not None:
            raise self.error
        return self.handle.wait()

    def wait_for(self, line: str, timeout: float = WAIT) -> None:
        """Until ``line`` is a whole line of the screen."""
        ends = time.monotonic() + timeout
        while line not in lines(self.data):
            assert time.monotonic() < ends, f"{line!r} never came; the screen: {bytes(self.data)[-2000:]!r}"
            time.sleep(0.05)


def lines(screen: bytes | bytearray) -> list[str]:
    """The screen's lines as a reader sees them: terminal control sequences and carriage returns
    left out (bash's bracketed-paste switches surround each command's output)."""
    text = CONTROL.sub("", bytes(screen).decode(errors="replace"))
    return [line.rstrip("\r").rsplit("\r", 1)[-1] for line in text.split("\n")]


def start(sandbox: Sandbox, cwd: str | None = None, envs: dict[str, str] | None = None) -> Screen:
    return Screen(sandbox.pty.create(SIZE, cwd=cwd, envs=envs, timeout=0))


@pytest.fixture
def screen(sandbox: Sandbox) -> Iterator[Screen]:
    shown = start(sandbox)
    yield shown
    sandbox.pty.kill(shown.handle.pid)


def test_what_is_typed_runs_in_an_interactive_shell_and_its_output_streams(
    sandbox: Sandbox, screen: Screen
) -> None:
    sandbox.pty.send_stdin(screen.handle.pid, b"echo hi\n")
    # the echo of what was typed reads `echo hi`; the command's own output is `hi` on its own line
    screen.wait_for("hi")
    sandbox.pty.send_stdin(screen.handle.pid, b"tty; echo $TERM; [[ $- == *i* ]] && echo interactive\n")
    screen.wait_for("interactive")
    assert b"/dev/pts/" in screen.data
    assert b"xterm-256color\r\n" in screen.data


def test_a_resize_reaches_the_terminal(sandbox: Sandbox, screen: Screen) -> None:
    sandbox.pty.send_stdin(screen.handle.pid, b"stty size\n")
    screen.wait_for("24 80")
    sandbox.pty.resize(screen.handle.pid, PtySize(rows=50, cols=132))
    sandbox.pty.send_stdin(screen.handle.pid, b"stty size\n")
    screen.wait_for("50 132")


def test_exit_ends_the_session_with_its_exit_code(sandbox: Sandbox) -> None:
    shown = start(sandbox)
    sandbox.pty.send_stdin(shown.handle.pid, b"exit 3\n")
    with pytest.raises(CommandExitException) as raised:
        shown.wait()
    assert raised.value.exit_code == 3
    assert shown.handle.pid not in {p.pid for p in sandbox.commands.list()}


def test_exit_0_ends_it_cleanly(sandbox: Sandbox) -> None:
    shown = start(sandbox)
    sandbox.pty.send_stdin(shown.handle.pid, b"exit\n")
    assert shown.wait().exit_code == 0


def test_kill_ends_the_shell_and_every_job_it_started(sandbox: Sandbox) -> None:
    shown = start(sandbox)
    sandbox.pty.send_stdin(shown.handle.pid, b"sleep 4242 & sleep 4343\n")
    running = (
        "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done"
        " | grep -c '^sleep 4[23]4[23]' || true"
    )
    deadline = time.monotonic() + WAIT
    while sandbox.commands.run(running, timeout=WAIT).stdout.strip() != "2":
        assert time.monotonic() < deadline, "the jobs never started"
        time.sleep(0.1)

    assert sandbox.pty.kill(shown.handle.pid) is True
    with pytest.raises(CommandExitException) as raised:
        shown.wait()
    assert raised.value.exit_code == -1
    # the background job too: an interactive shell gives each job a process group of its own
    assert sandbox.commands.run(running, timeout=WAIT).stdout.strip() == "0"
    assert sandbox.pty.kill(shown.handle.pid) is False


def test_the_session_is_listed_and_a_second_client_connects_to_it(
    sandbox: Sandbox, screen: Screen, sdk_env: SandboxHostProcess
) -> None:
    assert screen.handle.pid in {p.pid for p in sandbox.commands.list()}
    other = Sandbox.connect(sandbox.sandbox_id)
    follower = Screen(other.pty.connect(screen.handle.pid, timeout=0))
    assert follower.handle.pid == screen.handle.pid
    other.pty.send_stdin(screen.handle.pid, b"echo $((6 * 7))\n")
    follower.wait_for("42")
    screen.wait_for("42")
    sandbox.pty.send_stdin(screen.handle.pid, b"exit 5\n")
    with pytest.raises(CommandExitException) as raised:
        follower.wait()
    assert raised.value.exit_code == 5


def test_cwd_and_envs_are_the_sessions(sandbox: Sandbox) -> None:
    shown = start(sandbox, cwd="/tmp", envs={"GREETING": "hello there"})
    try:
        sandbox.pty.send_stdin(shown.handle.pid, b'echo "[$GREETING] $(pwd)"\n')
        shown.wait_for("[hello there] /tmp")
    finally:
        sandbox.pty.kill(shown.handle.pid)
    assert "hello there" not in sandbox.commands.run('echo "[$GREETING]"').stdout


def test_a_bad_size_or_an_unknown_pid_is_the_callers_error(sandbox: Sandbox) -> None:
    with pytest.raises(InvalidArgumentException):
        sandbox.pty.create(PtySize(rows=0, cols=80))
    with pytest.raises(NotFoundException):
        sandbox.pty.send_stdin(999_999, b"x")
    with pytest.raises(NotFoundException):
        sandbox.pty.resize(999_999, SIZE)


def test_the_async_sdk_drives_a_session(sdk_env: SandboxHostProcess) -> None:
    async def scenario() -> None:
        sandbox = await AsyncSandbox.create(timeout=120)
        try:
            seen, seen_by_other = bytearray(), bytearray()
            handle = await sandbox.pty.create(SIZE, on_data=seen.extend, timeout=0)
            other = await AsyncSandbox.connect(sandbox.sandbox_id)
            follower = await other.pty.connect(handle.pid, on_data=seen_by_other.extend, timeout=0)

            async def shows(screen: bytearray, line: str) -> None:
                async with asyncio.timeout(WAIT):
                    while line not in lines(screen):
                        await asyncio.sleep(0.05)

            await sandbox.pty.send_stdin(handle.pid, b"echo hi\n")
            await shows(seen, "hi")
            await sandbox.pty.resize(handle.pid, PtySize(rows=40, cols=100))
            await sandbox.pty.send_stdin(handle.pid, b"stty size\n")
            await shows(seen, "40 100")
            await shows(seen_by_other, "40 100")
            await sandbox.pty.send_stdin(handle.pid, b"exit 3\n")
            with pytest.raises(CommandExitException) as raised:
                await handle.wait()
            assert raised.value.exit_code == 3
            with pytest.raises(CommandExitException):
                await follower.wait()

            killed = await sandbox.pty.create(SIZE, on_data=lambda _: None, timeout=0)
            assert await sandbox.pty.kill(killed.pid) is True
            with pytest.raises(CommandExitException) as raised:
                await killed.wait()
            assert raised.value.exit_code == -1
        finally:
            await sandbox.kill()

    asyncio.run(scenario())


def test_input_to_a_terminal_that_does_not_read_times_out(sandbox: Sandbox, screen: Screen) -> None:
    sandbox.pty.send_stdin(screen.handle.pid, b"stty raw -echo; echo READY$((1 + 1)); sleep 600\n")
    screen.wait_for("READY2")
    started = time.monotonic()
    with pytest.raises(TimeoutException):
        for _ in range(64):  # 4 MiB in all: far past what a terminal buffers
            sandbox.pty.send_stdin(screen.handle.pid, b"x" * 65536)
    assert time.monotonic() - started < WAIT
    sandbox.pty.kill(screen.handle.pid)  # still answers


def test_stream_input_types_each_chunk_as_it_arrives(sandbox: Sandbox, screen: Screen) -> None:
    def typed() -> Iterator[bytes]:
        yield b"echo first$((1 + 1))\n"
        screen.wait_for("first2")  # the next chunk is sent only once the first has run
        yield b"echo second$((1 + 2))\n"

    sandbox.pty.stream_input(screen.handle.pid, typed())

    screen.wait_for("second3")


def test_stream_input_feeds_a_commands_stdin_and_names_an_unknown_process(sandbox: Sandbox) -> None:
    handle = sandbox.commands.run("cat", background=True, stdin=True, timeout=0)
    sandbox.commands.stream_input(handle.pid, ["one\n", b"two\n"])
    sandbox.commands.close_stdin(handle.pid)
    assert handle.wait().stdout == "one\ntwo\n"
    with pytest.raises(NotFoundException):
        sandbox.commands.stream_input(999_999, [b"x"])


def test_the_async_sdk_streams_input(sdk_env: SandboxHostProcess) -> None:
    async def scenario() -> None:
        sandbox = await AsyncSandbox.create(timeout=120)
        try:
            handle = await sandbox.commands.run("cat", background=True, stdin=True, timeout=0)
            async with sandbox.commands.stream_input(handle.pid) as stdin:
                await stdin.send(b"a\n")
                await stdin.send("b\n")
            await sandbox.commands.close_stdin(handle.pid)
            assert (await handle.wait()).stdout == "a\nb\n"

            seen = bytearray()
            terminal = await sandbox.pty.create(SIZE, on_data=seen.extend, timeout=0)
            async with sandbox.pty.stream_input(terminal.pid) as typed:
                await typed.send(b"echo typed$((2 * 3))\n")
                async with asyncio.timeout(WAIT):  # shown while the stream is still open
                    while "typed6" not in lines(seen):
                        await asyncio.sleep(0.05)
            missing = sandbox.commands.stream_input(999_999)
            with pytest.raises(NotFoundException):
                async with missing:
                    await missing.send(b"x")
        finally:
            await sandbox.kill()

    asyncio.run(scenario())
