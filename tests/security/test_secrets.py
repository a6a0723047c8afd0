"""No secret of the host inside a sandbox: not sandboxd's environment, not the host's files, not
sandboxd's state, not another sandbox's files, not the host's processes.

sandboxd runs with canary secrets in its environment (``HOST_SECRETS``) and the test plants a
canary file in the host's /tmp; neither may show up anywhere a sandbox can look.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from e2b import SandboxException
from e2b_code_interpreter import Sandbox

from tests.procs import DEFAULT_ROOTFS, SandboxHostProcess
from tests.security.harness import HOST_SECRETS, run
from tests.security.probes import host_pids_running

# Variables E2B itself sets inside its sandboxes; they carry nothing of the host.
E2B_PUBLIC = {"E2B_SANDBOX", "E2B_SANDBOX_ID", "E2B_TEMPLATE_ID"}
# Names a shell or the sandbox sets for itself, whose value may equal the host's by chance.
NEUTRAL = {
    *("PATH", "HOME", "USER", "LOGNAME", "SHELL", "HOSTNAME"),
    *("LANG", "LC_ALL", "TERM", "PWD", "OLDPWD", "SHLVL", "_"),
}
# Reads every file it may under the given places and names those holding a secret. The secrets
# come hex-encoded, so that this probe's own command line does not hold them.
FIND_SECRETS = """
import glob, os, sys
secrets = [bytes.fromhex(h) for h in sys.argv[1:]]
places = ["/etc", "/home", "/tmp", "/run", "/opt/e2bq/lib", "/dev/shm", *glob.glob("/proc/[0-9]*")]
for place in places:
    for folder, dirs, files in os.walk(place):
        if folder.startswith("/proc/"):
            dirs.clear()
            files = [f for f in files if f in ("environ", "cmdline")]
        for name in files:
            try:
                with open(os.path.join(folder, name), "rb") as handle:
                    data = handle.read(1 << 22)
            except OSError:
                continue
            if any(secret in data for secret in secrets):
                print(os.path.join(folder, name))
"""
ENVIRON_DUMP = (
    "for f in /proc/[0-9]*/environ; do echo \"== $f\"; tr '\\0' '\\n' < $f 2>/dev/null; done; "
    "echo '== env'; env"
)


def secrets_of(host: SandboxHostProcess) -> list[str]:
    return [*HOST_SECRETS.values(), host.api_key]


def test_the_sandbox_environment_holds_nothing_of_the_hosts(
    make_sandbox: Callable[..., Sandbox], host: SandboxHostProcess
) -> None:
    sandbox = make_sandbox(envs={"MINE": "the sandbox's own"})

    dump = run(sandbox, ENVIRON_DUMP).stdout
    kernel_env = sandbox.run_code("import os; dict(os.environ)").text or ""

    for secret in secrets_of(host):
        assert secret not in dump
        assert secret not in kernel_env
    lines = [line for line in dump.splitlines() if "=" in line and not line.startswith("==")]
    inside = dict(line.split("=", 1) for line in lines)
    assert inside.get("MINE") == "the sandbox's own"
    assert [name for name in inside if name.startswith("E2BQ_")] == []
    assert [name for name in inside if name.startswith("E2B_") and name not in E2B_PUBLIC] == []
    sandboxd_env = dict(
        item.split("=", 1)
        for item in Path(f"/proc/{host.proc.pid}/environ").read_text().split("\0")
        if "=" in item
    )
    copied = {name for name, value in inside.items() if sandboxd_env.get(name) == value} - NEUTRAL
    assert copied == set(), "variables of sandboxd's environment reached the sandbox"


def test_no_file_a_sandbox_can_read_holds_a_host_secret(
    make_sandbox: Callable[..., Sandbox], host: SandboxHostProcess
) -> None:
    sandbox = make_sandbox()
    sandbox.files.write("/tmp/find_secrets.py", FIND_SECRETS)
    hexed = " ".join(secret.encode().hex() for secret in secrets_of(host))

    found = run(sandbox, f"python /tmp/find_secrets.py {hexed}", timeout=120)

    assert found.exit_code == 0, found.stderr
    assert found.stdout == "", f"a host secret is readable inside at {found.stdout.split()}"


def test_the_sandbox_sees_only_its_own_processes(
    make_sandbox: Callable[..., Sandbox], host: SandboxHostProcess, neighbour: Sandbox
) -> None:
    marker = f"sleep {uuid.uuid4().int % 10**6}.{uuid.uuid4().int % 10**5}"
    background = neighbour.commands.run(marker, background=True, timeout=0)
    sandbox = make_sandbox()
    host_init = Path("/proc/1/cmdline").read_bytes().replace(b"\0", b" ").decode()

    try:
        listing = run(
            sandbox, "for p in /proc/[0-9]*; do echo \"${p#/proc/} $(tr '\\0' ' ' < $p/cmdline)\"; done"
        ).stdout
        assert host_pids_running(marker), "the neighbour's marker process should run on the host"
    finally:
        neighbour.commands.kill(background.pid)

    assert marker not in listing
    for outsider in ("e2bq.sandboxd", "pytest", "slirp4netns", "celery", "redis-server"):
        assert outsider not in listing
    inside_init = run(sandbox, "tr '\\0' ' ' < /proc/1/cmdline").stdout
    assert inside_init != host_init
    # the host's pid 1 and its environment are out of reach: /proc/1 inside is the jail's init
    try:
        host_env = Path("/proc/1/environ").read_text(errors="replace").split("\0")
    except PermissionError:  # a container may hide its init's environment even from root
        host_env = [f"{name}={value}" for name, value in os.environ.items()]
    host_init_env = [e for e in host_env if e]
    inside_init_env = run(sandbox, "tr '\\0' '\\n' < /proc/1/environ").stdout.splitlines()
    assert [e for e in host_init_env if e in inside_init_env and e.split("=")[0] not in NEUTRAL] == []
    assert "e2bq.sandboxd" not in inside_init
    assert len(listing.splitlines()) < 20, listing


def test_host_files_are_invisible(
    make_sandbox: Callable[..., Sandbox], host: SandboxHostProcess, canary: Path
) -> None:
    content = canary.read_text()
    sandbox = make_sandbox()
    repository = Path(__file__).resolve().parents[2]
    hidden = ["/etc/shadow", "/root", str(canary), str(host.state_dir), str(repository), "/proc/kcore"]

    shadow = [line for line in Path("/etc/shadow").read_text().splitlines() if line]
    for path in hidden:
        shown = run(sandbox, f"cat {path} 2>&1; ls -la {path} 2>&1; true").stdout
        assert content not in shown
        assert [line for line in shadow if line in shown] == []
        with pytest.raises(SandboxException):
            sandbox.files.read(path)
    assert canary.name not in run(sandbox, "ls -a /tmp").stdout
    assert [e.name for e in sandbox.files.list("/tmp") if e.name == canary.name] == []
    assert not sandbox.files.exists(str(host.state_dir))
    assert canary.read_text() == content


def test_another_sandboxs_files_are_invisible(
    make_sandbox: Callable[..., Sandbox], host: SandboxHostProcess, neighbour: Sandbox
) -> None:
    name = f"private-{uuid.uuid4().hex}.txt"
    neighbour.files.write(f"/home/user/{name}", "the neighbour's secret")
    on_host = [p for p in host.state_dir.glob(f"{neighbour.sandbox_id}/**/{name}")]
    assert on_host, "the neighbour's file should be somewhere in sandboxd's state folder"
    sandbox = make_sandbox()

    found = run(sandbox, f"find / -name {name} -not -path '/proc/*' 2>/dev/null; true", timeout=120)

    assert found.stdout == ""
    for path in [f"/home/user/{name}", *map(str, on_host)]:
        assert not sandbox.files.exists(path)
        assert "the neighbour's secret" not in run(sandbox, f"cat {path} 2>&1; true").stdout
    assert run(sandbox, "ls -a /home").stdout.split() == [".", "..", "user"]


def test_the_jail_is_not_the_hosts_root(make_sandbox: Callable[..., Sandbox]) -> None:
    """/ inside is a small allow-list: none of the host's own top-level folders with data. On a
    template, / is the template's: its folders hold what the template's do, not the host's."""
    sandbox = make_sandbox()
    inside = {entry.name for entry in sandbox.files.list("/")}
    with_data = {"root", "var", "srv", "mnt", "media", "boot", "work", "farm", "old_root", "sys"}
    host_only = with_data & set(os.listdir("/"))
    if DEFAULT_ROOTFS is None:
        assert inside & host_only == set()
        return
    assert "work" not in inside
    for name in inside & host_only - {"root"}:  # root's folder is unreadable inside: checked below
        listed = {entry.name for entry in sandbox.files.list(f"/{name}")}
        assert listed == set(os.listdir(DEFAULT_ROOTFS / name)), name
    assert run(sandbox, "ls /root 2>&1; true").stdout.strip().endswith("Permission denied")
