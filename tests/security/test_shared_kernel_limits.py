"""Kernel allowances counted per user must not be shared between sandboxes.

Some limits are counted per host uid rather than per cgroup: inotify instances and watches
(``/proc/sys/user/max_inotify_*``). If every jail runs as the same host uid, one sandbox can use
up what every other sandbox's ``tail -f``, file watchers and dev servers need.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from e2b_code_interpreter import Sandbox

from tests.procs import SandboxHostProcess, wait_for
from tests.security.harness import assert_host_and_neighbour_answer, run

# Takes inotify instances until the kernel refuses (at most 1,000), says how many, holds them.
HOARD = """
import ctypes, json, time
libc = ctypes.CDLL(None, use_errno=True)
held = []
while len(held) < 1000 and (fd := libc.inotify_init1(0)) >= 0:
    held.append(fd)
with open("/tmp/hoarded.json", "w") as out:
    json.dump({"held": len(held), "errno": ctypes.get_errno()}, out)
time.sleep(600)
"""
INOTIFY = "python -c 'import ctypes; print(ctypes.CDLL(None).inotify_init1(0) >= 0)'"


def test_one_sandbox_cannot_use_up_the_inotify_instances_of_the_others(
    make_sandbox: Callable[..., Sandbox], host: SandboxHostProcess, neighbour: Sandbox
) -> None:
    assert run(neighbour, INOTIFY).stdout == "True\n"
    attacker = make_sandbox()
    attacker.files.write("/tmp/hoard.py", HOARD)
    hoarder = attacker.commands.run("python /tmp/hoard.py", background=True, timeout=0)
    try:
        taken = wait_for(
            lambda: json.loads(attacker.files.read("/tmp/hoarded.json")), 60, "the attacker to take its fill"
        )
        assert isinstance(taken, dict)
        assert taken["held"] > 0

        assert run(neighbour, INOTIFY).stdout == "True\n", (
            f"after another sandbox took {taken['held']} inotify instances, this one can create none"
        )
        assert run(make_sandbox(), INOTIFY).stdout == "True\n"
    finally:
        attacker.commands.kill(hoarder.pid)
    assert_host_and_neighbour_answer(host, neighbour)
