"""A fork and a sandbox made from a snapshot are as confined as a new sandbox.

Each runs as a host uid of its own (never root, never its parent's), sees no host file, sits in
cgroups of its own, cannot see its parent's processes, cannot write into the shared layer its
files come from, and nothing it does reaches the parent or the snapshot.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from e2b_code_interpreter import Sandbox

from tests.procs import SandboxHostProcess, wait_for
from tests.security.harness import kill_quietly, run, sdk_options
from tests.security.probes import jail_agent, jail_processes_running, real_and_effective_uids


def _sandbox_cgroups(pid: int) -> set[str]:
    """The cgroups sandboxd made that ``pid`` is in (``controller:/e2bq-<host pid>/<sandbox id>``)."""
    lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    return {line.partition(":")[2] for line in lines if "/e2bq-" in line}


@pytest.fixture
def family(
    host: SandboxHostProcess, make_sandbox: Callable[..., Sandbox]
) -> Iterator[tuple[Sandbox, list[Sandbox]]]:
    """A parent with a secret file and a marked process, a fork of it, and a sandbox made from its
    snapshot."""
    parent = make_sandbox()
    parent.files.write("/home/user/secret.txt", "parent's")
    marker = f"parent-{uuid.uuid4().hex}"
    parent.commands.run(f"python -c 'import time; time.sleep(600)' {marker}", background=True, timeout=0)
    wait_for(lambda: jail_processes_running(parent.sandbox_id, marker), 10, "the parent's process")
    snapshot = parent.create_snapshot()
    [forked] = parent.fork(count=1)
    assert isinstance(forked, Sandbox), forked
    from_snapshot = Sandbox.create(template=snapshot.snapshot_id, timeout=120, **sdk_options(host))
    try:
        yield parent, [forked, from_snapshot]
    finally:
        kill_quietly(forked)
        kill_quietly(from_snapshot)
        Sandbox.delete_snapshot(snapshot.snapshot_id, **sdk_options(host))


def test_each_runs_as_its_own_unprivileged_uid_in_its_own_cgroups(
    family: tuple[Sandbox, list[Sandbox]],
) -> None:
    parent, copies = family
    parent_agent = jail_agent(parent.sandbox_id)
    seen_uids = [real_and_effective_uids(parent_agent)]
    for sandbox in copies:
        agent = jail_agent(sandbox.sandbox_id)
        uids = real_and_effective_uids(agent)
        assert 0 not in uids and uids not in seen_uids, (uids, seen_uids)
        seen_uids.append(uids)
        groups = _sandbox_cgroups(agent)
        assert groups and all(group.endswith("/" + sandbox.sandbox_id) for group in groups), groups
        assert run(sandbox, "id -u").stdout.strip() == "1000"
        # its files are its own inside: the chown to its uid reached every one
        assert run(sandbox, "stat -c %U /home/user /home/user/secret.txt /tmp").stdout.split() == ["user"] * 3


def test_none_sees_the_host_or_its_parents_processes(
    family: tuple[Sandbox, list[Sandbox]], host: SandboxHostProcess
) -> None:
    _, copies = family
    for sandbox in copies:
        assert "parent-" not in run(sandbox, "ps -eo args").stdout
        assert run(sandbox, "cat /etc/shadow").exit_code != 0
        assert run(sandbox, "ls /var/lib /root").exit_code != 0
        # the overlay's options show in its mount table: its layers are named, not where they are
        mounts = run(sandbox, "cat /proc/self/mountinfo").stdout
        assert "lowerdir=../layers/" in mounts and str(host.state_dir / "layers") not in mounts


def test_writes_reach_neither_the_parent_nor_the_layer_nor_each_other(
    family: tuple[Sandbox, list[Sandbox]], host: SandboxHostProcess
) -> None:
    parent, copies = family
    for i, sandbox in enumerate(copies):
        run(sandbox, f"echo mine-{i} > /home/user/secret.txt && rm -f /home/user/gone; touch /tmp/x{i}")
    for i, sandbox in enumerate(copies):
        assert sandbox.files.read("/home/user/secret.txt") == f"mine-{i}\n"
        assert not sandbox.files.exists(f"/tmp/x{1 - i}")
    assert parent.files.read("/home/user/secret.txt") == "parent's"
    layers = host.state_dir / "layers"
    for layer_file in layers.glob("*/tree/home/secret.txt"):
        assert layer_file.read_text() == "parent's"
