"""A fork bomb fills its own sandbox's process allowance, and nothing beyond it.

The bounded probe runs first: a real fork bomb is only set off once the sandbox has shown that
its process count is capped, so a missing limit fails the test instead of taking the host down.
"""

from __future__ import annotations

import errno
from collections.abc import Callable

import pytest
from e2b_code_interpreter import Sandbox

from tests.procs import SandboxHostProcess, wait_for
from tests.security.harness import (
    ANSWER_TIMEOUT,
    answers_or_is_gone,
    assert_host_and_neighbour_answer,
    fork_probe,
    run,
)
from tests.security.probes import jail_namespaces, jail_pids, pids_in

PIDS = 64
LIMITED = {"e2bq.pids": str(PIDS), "e2bq.cpu": "0.5"}

# The leader stays put (the agent knows its pid and process group); its child becomes the bomb.
FORK_BOMB = (
    "python -c \"import os, time; os.fork() or os.execvp('bash', ['bash', '-c', ':(){ :|:& };:']); "
    'time.sleep(3600)"'
)


def test_processes_past_the_sandboxs_pids_limit_cannot_start(
    make_sandbox: Callable[..., Sandbox], host: SandboxHostProcess, neighbour: Sandbox
) -> None:
    sandbox = make_sandbox(metadata=LIMITED)

    outcome = fork_probe(sandbox)

    assert outcome["errno"] == errno.EAGAIN, f"fork never failed: {outcome}"
    assert outcome["started"] is not None and outcome["started"] < PIDS
    # the processes were given back: the sandbox works on
    assert run(sandbox, "echo still here").stdout == "still here\n"
    assert_host_and_neighbour_answer(host, neighbour)


def test_a_fork_bomb_stays_inside_its_sandbox(
    make_sandbox: Callable[..., Sandbox], host: SandboxHostProcess, neighbour: Sandbox
) -> None:
    sandbox = make_sandbox(metadata=LIMITED)
    if fork_probe(sandbox)["errno"] != errno.EAGAIN:
        pytest.fail(f"e2bq.pids={PIDS} is not enforced: refusing to set off a fork bomb on this host")
    neighbour_before = set(jail_pids(neighbour.sandbox_id))
    baseline = len(jail_pids(sandbox.sandbox_id))

    bomb = sandbox.commands.run(FORK_BOMB, background=True, timeout=0)
    try:
        # the bomb has filled the sandbox's allowance...
        wait_for(lambda: len(jail_pids(sandbox.sandbox_id)) >= PIDS // 2, 60, "the fork bomb to spread")
        # ...and stays within it, while the host and the neighbour carry on
        assert_host_and_neighbour_answer(host, neighbour)
        assert len(jail_pids(sandbox.sandbox_id)) <= PIDS
        assert neighbour_before <= set(jail_pids(neighbour.sandbox_id))
        # another sandbox can still be made, and can still start processes of its own
        fresh = make_sandbox()
        assert run(fresh, "for i in $(seq 20); do /bin/true; done; echo forked").stdout == "forked\n"
    finally:
        # one signal to the bomb's process group ends every copy (a fork racing it fails)
        sandbox.commands.kill(bomb.pid, request_timeout=ANSWER_TIMEOUT)

    wait_for(
        lambda: len(jail_pids(sandbox.sandbox_id)) <= baseline + 1, 60, "the fork bomb's processes to end"
    )
    assert answers_or_is_gone(sandbox) == "answers"
    assert_host_and_neighbour_answer(host, neighbour)


def test_killing_a_fork_bombed_sandbox_leaves_nothing_on_the_host(
    make_sandbox: Callable[..., Sandbox], host: SandboxHostProcess, neighbour: Sandbox
) -> None:
    sandbox = make_sandbox(metadata=LIMITED)
    if fork_probe(sandbox)["errno"] != errno.EAGAIN:
        pytest.fail(f"e2bq.pids={PIDS} is not enforced: refusing to set off a fork bomb on this host")
    sandbox.commands.run(FORK_BOMB, background=True, timeout=0)
    wait_for(lambda: len(jail_pids(sandbox.sandbox_id)) >= PIDS // 2, 60, "the fork bomb to spread")
    namespace = jail_namespaces(sandbox.sandbox_id)

    assert sandbox.kill() is True

    assert pids_in(namespace) == []
    assert_host_and_neighbour_answer(host, neighbour)
