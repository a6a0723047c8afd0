"""A sandbox resumed from a filesystem-only pause is as confined as a new one, and its kept disk
is out of every other sandbox's reach.

The resume starts a new jail on the kept disk: the same uid, no capability, no new privileges, the
seccomp filter, the sandbox's own cgroups with its limits, and its network policy (only loopback
without internet; the host unreachable with it). While paused, the disk image and the record
beside it (which holds the sandbox's tokens) are root's alone on the host, and no other sandbox
can see the state folder at all.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from e2b_code_interpreter import Sandbox

from tests.procs import SandboxHostProcess
from tests.security.harness import assert_host_and_neighbour_answer, run, sdk_options
from tests.security.probes import Listener, host_listener, jail_pids, real_and_effective_uids
from tests.security.test_network import SLIRP_GATEWAY, probe
from tests.security.test_privileges import SYSCALL_PROBE, status_fields

MEMORY_MB = 256


def paused_and_resumed(host: SandboxHostProcess, sandbox: Sandbox) -> Sandbox:
    sandbox.files.write("/home/user/before.txt", "written before the pause")
    assert sandbox.pause(keep_memory=False) is True
    assert jail_pids(sandbox.sandbox_id) == []
    resumed = Sandbox.connect(sandbox.sandbox_id, **sdk_options(host))
    assert resumed.files.read("/home/user/before.txt") == "written before the pause"
    return resumed


def memory_limit_of(pid: int) -> int:
    """The memory limit, in bytes, of the cgroup ``pid`` is in (cgroup v1 or v2)."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return int(Path(f"/sys/fs/cgroup/memory{path}/memory.limit_in_bytes").read_text())
        if controllers == "":
            return int(Path(f"/sys/fs/cgroup{path}/memory.max").read_text())
    raise AssertionError(f"no memory cgroup for {pid}")


def test_privileges_seccomp_and_cgroups_are_those_of_a_new_sandbox(
    host: SandboxHostProcess, make_sandbox: Callable[..., Sandbox], neighbour: Sandbox
) -> None:
    sandbox = make_sandbox(metadata={"e2bq.memory_mb": str(MEMORY_MB)})
    uids_before = {uid for pid in jail_pids(sandbox.sandbox_id) for uid in real_and_effective_uids(pid)}
    resumed = paused_and_resumed(host, sandbox)

    assert run(resumed, "id -un; id -u").stdout == "user\n1000\n"
    status = status_fields(resumed)
    assert status["NoNewPrivs"] == "1" and status.get("Seccomp") == "2"
    for field in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(status[field], 16) == 0, field
    resumed.files.write("/tmp/syscalls.py", SYSCALL_PROBE)
    outcomes = json.loads(run(resumed, "python /tmp/syscalls.py").stdout)
    assert {name: o for name, o in outcomes.items() if o[0] != -1} == {}
    pids = jail_pids(sandbox.sandbox_id)
    assert pids
    for pid in pids:
        groups = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
        own = [line for line in groups if line.endswith("/" + sandbox.sandbox_id)]
        assert own, (pid, groups)
        assert memory_limit_of(pid) == MEMORY_MB * 1024 * 1024
        # the same unprivileged host uid as before the pause (its files are its own), never root
        assert real_and_effective_uids(pid) <= uids_before and 0 not in real_and_effective_uids(pid)
    assert_host_and_neighbour_answer(host, neighbour)


def test_without_internet_it_still_has_only_loopback(
    host: SandboxHostProcess, make_sandbox: Callable[..., Sandbox]
) -> None:
    resumed = paused_and_resumed(host, make_sandbox(allow_internet_access=False))
    assert set(run(resumed, "ls /proc/sys/net/ipv4/conf").stdout.split()) == {"all", "default", "lo"}


def test_with_internet_the_host_stays_unreachable(
    host: SandboxHostProcess, make_sandbox: Callable[..., Sandbox]
) -> None:
    resumed = paused_and_resumed(host, make_sandbox())
    sandboxd_port = urlsplit(host.url).port
    assert sandboxd_port is not None
    listener: Listener
    with host_listener() as listener:
        targets = [
            ("127.0.0.1", listener.port),
            ("127.0.0.1", sandboxd_port),
            (SLIRP_GATEWAY, listener.port),
            (SLIRP_GATEWAY, sandboxd_port),
        ]
        outcomes = probe(resumed, targets)
        assert {t: o for t, o in outcomes.items() if o.startswith("connected")} == {}
        assert listener.accepted == []


def test_a_paused_disk_is_root_s_alone_and_out_of_other_sandboxes_sight(
    host: SandboxHostProcess, make_sandbox: Callable[..., Sandbox], neighbour: Sandbox
) -> None:
    sandbox = make_sandbox()
    sandbox.files.write("/home/user/secret.txt", "the paused sandbox's own")
    sandbox.pause(keep_memory=False)
    folder = host.state_dir / sandbox.sandbox_id
    kept = [folder / "paused.json", *folder.glob("disk.*.img")]
    assert len(kept) == 2, list(folder.iterdir())
    for path in kept:
        info = path.stat()
        assert info.st_uid == 0 and stat.S_IMODE(info.st_mode) == 0o600, (path, oct(info.st_mode))
    assert not any(part.is_mount() for part in folder.iterdir()), "a paused sandbox's disk stays mounted"

    # from another sandbox: the state folder does not exist, nor does any path to the image
    for path in (folder, *kept, folder / "data" / "home" / "secret.txt"):
        attempt = run(neighbour, f"cat {path} || ls -la {path}")
        assert attempt.exit_code != 0 and "the paused sandbox's own" not in attempt.stdout, path
    found = run(neighbour, "find / -path /proc -prune -o -path /sys -prune -o -name paused.json -print "
                           "-o -name 'disk.*.img' -print 2>/dev/null; true")
    assert found.stdout == ""
    assert_host_and_neighbour_answer(host, neighbour)


def test_a_full_disk_or_a_planted_kernel_folder_does_not_stop_the_resume(
    host: SandboxHostProcess, make_sandbox: Callable[..., Sandbox]
) -> None:
    sandbox = make_sandbox(metadata={"e2bq.disk_mb": "64"})
    # where the fork server hands over the default kernel, a link out of the sandbox's disk: the
    # relaunch removes only a real folder there, and never follows the link as root
    run(sandbox, "rm -rf /tmp/e2bq-kernels; ln -s /etc /tmp/e2bq-kernels")
    run(sandbox, "head -c 100M /dev/zero > /home/user/fill")
    assert "100%" in run(sandbox, "df /home/user").stdout
    sandbox.pause(keep_memory=False)
    resumed = Sandbox.connect(sandbox.sandbox_id, **sdk_options(host))
    assert resumed.files.exists("/home/user/fill")
    resumed.files.remove("/home/user/fill")
    assert resumed.run_code("1 + 1").text == "2"
    assert Path("/etc/passwd").exists()
