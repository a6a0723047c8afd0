"""A sandbox burning every core it can get does not starve sandboxd or its neighbour."""

from __future__ import annotations

import os
from collections.abc import Callable

from e2b_code_interpreter import Sandbox

from tests.procs import SandboxHostProcess, wait_for
from tests.security.harness import ANSWER_TIMEOUT, assert_host_and_neighbour_answer, run
from tests.security.probes import jail_processes_running

BURNERS = 2 * (os.cpu_count() or 1)
BURN = "while True: pass"


def test_a_cpu_burn_in_one_sandbox_leaves_its_neighbour_answering(
    make_sandbox: Callable[..., Sandbox], host: SandboxHostProcess, neighbour: Sandbox
) -> None:
    sandbox = make_sandbox(metadata={"e2bq.cpu": "0.5"})
    burn = sandbox.commands.run(
        f"for i in $(seq {BURNERS}); do python -c '{BURN}' & done; wait", background=True, timeout=0
    )
    try:
        wait_for(
            lambda: len(jail_processes_running(sandbox.sandbox_id, BURN)) > BURNERS,  # and their shell
            60,
            f"{BURNERS} burners to run",
        )
        # more burners than cores, and still: sandboxd, the neighbour and a new sandbox answer
        assert_host_and_neighbour_answer(host, neighbour)
        fresh = make_sandbox()
        assert fresh.run_code("6*7", timeout=ANSWER_TIMEOUT).text == "42"
        assert run(neighbour, "python -c 'print(sum(range(10**6)))'").stdout == "499999500000\n"
        # the burning sandbox itself still answers too
        assert run(sandbox, "echo alive").stdout == "alive\n"
    finally:
        sandbox.commands.kill(burn.pid, request_timeout=ANSWER_TIMEOUT)
    wait_for(lambda: not jail_processes_running(sandbox.sandbox_id, BURN), 30, "the burners to end")
    assert_host_and_neighbour_answer(host, neighbour)
