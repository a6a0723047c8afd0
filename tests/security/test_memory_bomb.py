"""A memory bomb is killed inside its own sandbox: never sandboxd, never a neighbour, never the host.

Every bomb here stops at 1 GiB, so without a limit it would only succeed (and fail the test), not
exhaust the host.
"""

from __future__ import annotations

from collections.abc import Callable

from e2b_code_interpreter import Sandbox

from tests.procs import SandboxHostProcess, wait_for
from tests.security.harness import (
    ANSWER_TIMEOUT,
    answers_or_is_gone,
    assert_host_and_neighbour_answer,
    run,
    run_attack,
    sandbox_is_gone,
)
from tests.security.probes import jail_pids

MEMORY_MB = 256
LIMITED = {"e2bq.memory_mb": str(MEMORY_MB)}

# 1 GiB in touched 16 MiB pieces (bytes * n writes every page), then a word if it got that far.
MEMORY_BOMB = "chunks = [b'\\x01' * (16 << 20) for _ in range(64)]\nprint('survived', len(chunks))\n"


def test_a_command_allocating_past_the_memory_limit_is_killed_inside_its_sandbox(
    make_sandbox: Callable[..., Sandbox], host: SandboxHostProcess, neighbour: Sandbox
) -> None:
    sandbox = make_sandbox(metadata=LIMITED)
    sandbox.files.write("/tmp/bomb.py", MEMORY_BOMB)
    sandboxd_pid = host.proc.pid
    neighbour_before = set(jail_pids(neighbour.sandbox_id))

    result = run(sandbox, "python /tmp/bomb.py")

    assert "survived" not in result.stdout
    assert result.exit_code != 0
    # bash reports its child's death by SIGKILL as 128 + 9
    assert result.exit_code in (137, -1), (result.exit_code, result.stderr)
    # the kill landed on the bomb: the sandbox's agent and kernel are the ones from before
    assert answers_or_is_gone(sandbox) == "answers"
    assert sandbox.run_code("1+1", timeout=ANSWER_TIMEOUT).text == "2"
    assert host.proc.pid == sandboxd_pid
    assert neighbour_before <= set(jail_pids(neighbour.sandbox_id))
    assert_host_and_neighbour_answer(host, neighbour)


def test_code_allocating_past_the_memory_limit_ends_with_an_error_not_a_dead_host(
    make_sandbox: Callable[..., Sandbox], host: SandboxHostProcess, neighbour: Sandbox
) -> None:
    sandbox = make_sandbox(metadata=LIMITED)
    assert sandbox.run_code("1+1").text == "2"
    neighbour_before = set(jail_pids(neighbour.sandbox_id))

    try:
        execution = sandbox.run_code(MEMORY_BOMB, timeout=ANSWER_TIMEOUT, request_timeout=ANSWER_TIMEOUT)
    except Exception:  # the sandbox went down with its kernel: allowed, if it is reported gone
        assert sandbox_is_gone(sandbox)
    else:
        assert "survived" not in "".join(execution.logs.stdout)
        assert execution.error is not None
    assert neighbour_before <= set(jail_pids(neighbour.sandbox_id))
    assert_host_and_neighbour_answer(host, neighbour)
    # at worst this sandbox alone is lost; if it lives, its next cell runs in a fresh kernel
    if answers_or_is_gone(sandbox) == "answers":
        wait_for(
            lambda: sandbox.run_code("1+1", timeout=ANSWER_TIMEOUT).text == "2",
            ANSWER_TIMEOUT,
            "the sandbox's kernel to come back",
        )


def test_shared_memory_counts_against_the_sandboxs_memory(
    make_sandbox: Callable[..., Sandbox], host: SandboxHostProcess, neighbour: Sandbox
) -> None:
    """Files in /dev/shm live in RAM: writing twice the memory limit there must not succeed."""
    sandbox = make_sandbox(metadata=LIMITED)

    command = f"dd if=/dev/zero of=/dev/shm/fill bs=1M count={2 * MEMORY_MB} && echo written"

    result = run_attack(sandbox, command)

    if result is not None:  # None: the sandbox went down with it, which is allowed
        assert "written" not in result.stdout, "a sandbox stored twice its memory limit in /dev/shm"
        assert result.exit_code != 0
    answers_or_is_gone(sandbox)
    assert_host_and_neighbour_answer(host, neighbour)
