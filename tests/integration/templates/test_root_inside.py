"""Root inside a sandbox on a template: ``commands.run(cmd, user="root")`` as E2B serves it.

Root inside is the first uid of a host range of the sandbox's own (see ``jail.idmap``): it installs
system packages into the sandbox's own root layer, and reaches nothing of the host, of the template
on the host, or of another sandbox. It holds no capability outside the sandbox's user namespace
and the jail's seccomp filter still refuses mounts and new namespaces.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2b import AsyncSandbox, CommandExitException, PtySize
from e2b_code_interpreter import Sandbox

from e2bq.sandboxd.jail import idmap
from tests.procs import SandboxHostProcess, sandbox_host

pytestmark = [pytest.mark.slow, pytest.mark.network, pytest.mark.timeout(900)]

# What root inside holds: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP
# NET_BIND_SERVICE SYS_CHROOT AUDIT_WRITE SETFCAP (bwrap.ROOT_CAPABILITIES), and never these.
ROOT_CAPABILITIES = "00000000a00405fb"
_NEVER = {"SYS_ADMIN": 21, "NET_ADMIN": 12, "NET_RAW": 13, "SYS_PTRACE": 19, "SYS_MODULE": 16, "MKNOD": 27}


@pytest.fixture
def sdk(host: SandboxHostProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in host.env.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def tiny(sdk: None) -> Iterator[Sandbox]:
    sandbox = Sandbox.create(template="tiny", timeout=300, allow_internet_access=True)
    try:
        yield sandbox
    finally:
        sandbox.kill()


def as_root(sandbox: Sandbox, command: str, timeout: float = 60) -> str:
    return sandbox.commands.run(command, user="root", timeout=timeout).stdout


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_root_inside_installs_packages_into_the_sandboxes_own_root(tiny: Sandbox, store: Path) -> None:
    rootfs = (store / "tiny" / "rootfs").resolve()
    assert as_root(tiny, "id -u; id -g; echo $HOME; pwd").split() == ["0", "0", "/root", "/root"]
    assert tiny.commands.run("id -u").stdout == "1000\n"  # the sandbox's user is still the default
    assert as_root(tiny, "stat -c %U:%G /usr /usr/bin/jq /etc/built-by-command").split() == ["root:root"] * 3

    installed = as_root(tiny, "apt-get update -qq && apt-get install -y -qq sl >/dev/null && echo done", 280)
    assert installed.strip().endswith("done")
    assert tiny.commands.run("test -x /usr/games/sl && stat -c %U /usr/games/sl").stdout == "root\n"
    as_root(tiny, "touch /usr/local/bin/by-root && chown user: /usr/local/bin/by-root")
    assert tiny.commands.run("stat -c %U /usr/local/bin/by-root").stdout == "user\n"

    # the shared template on the host is as it was; another sandbox on it has none of this
    assert not (rootfs / "usr/games/sl").exists() and not (rootfs / "usr/local/bin/by-root").exists()
    other = Sandbox.create(template="tiny", timeout=120)
    try:
        assert other.commands.run("test -e /usr/games/sl && echo seen || echo absent").stdout == "absent\n"
        assert as_root(other, "id -u") == "0\n"
    finally:
        other.kill()


def test_an_idle_sandbox_has_no_root_broker_until_root_is_asked_for(tiny: Sandbox) -> None:
    """The broker is forked in on the first root command: an idle sandbox costs no more memory."""
    probe = "test -S /run/e2bq-root.sock && echo broker || echo none"
    assert tiny.commands.run(probe).stdout == "none\n"
    assert as_root(tiny, "id -u") == "0\n"
    assert tiny.commands.run(probe).stdout == "broker\n"


def test_root_inside_is_a_host_uid_range_of_the_sandboxes_own(tiny: Sandbox, sdk: None) -> None:
    other = Sandbox.create(template="tiny", timeout=120)
    try:
        show = "cat /proc/self/uid_map /proc/self/gid_map"
        maps = [as_root(sandbox, show).split() for sandbox in (tiny, other)]
    finally:
        other.kill()
    for uid_map in maps:
        inside, outside, count = (int(field) for field in uid_map[:3])
        assert (inside, count) == (0, idmap.RANGE_SIZE) and outside >= idmap.RANGE_BASE
        assert uid_map[:3] == uid_map[3:]  # gids alike
    first, second = (int(uid_map[1]) for uid_map in maps)
    assert abs(first - second) >= idmap.RANGE_SIZE  # no id in common



def test_a_host_given_another_range_base_maps_its_sandboxes_there(
    tiny: Sandbox, store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two hosts on one kernel (two nodes on a machine) keep their sandboxes' ids apart."""
    first = idmap.RANGE_BASE + (1 << 28)
    env = {"E2BQ_SANDBOXD_TEMPLATES_DIR": str(store), "E2BQ_SANDBOX_UID_RANGE_BASE": str(first)}
    ours = int(as_root(tiny, "cat /proc/self/uid_map").split()[1])
    with sandbox_host(tmp_path, env=env) as other_host:
        for name, value in other_host.env.items():
            monkeypatch.setenv(name, value)
        other = Sandbox.create(template="tiny", timeout=120)
        try:
            theirs = int(as_root(other, "cat /proc/self/uid_map").split()[1])
            owner = other.commands.run("touch ~/mine && stat -c %u ~/mine").stdout.strip()
        finally:
            other.kill()
    assert theirs == first and ours < first
    assert owner == "1000"  # inside: its user, whatever the host range


def test_the_templates_own_users_are_kept_and_root_inside_may_add_one(tiny: Sandbox, store: Path) -> None:
    """The template's /etc/passwd and group (apt's _apt among them) are the sandbox's, in its own
    layer: useradd works as root inside and changes neither the template nor another sandbox."""
    assert tiny.commands.run("getent passwd _apt user | cut -d: -f1,3").stdout == "_apt:42\nuser:1000\n"
    assert tiny.commands.run("whoami; id -gn").stdout == "user\nuser\n"
    as_root(tiny, "useradd --uid 2000 --create-home bob")
    assert tiny.commands.run("getent passwd bob | cut -d: -f3").stdout == "2000\n"
    assert as_root(tiny, "su bob -c 'id -u'") == "2000\n"
    assert b"bob" not in (store / "tiny" / "rootfs" / "etc" / "passwd").read_bytes()
    other = Sandbox.create(template="tiny", timeout=120)
    try:
        assert other.commands.run("getent passwd bob || echo none").stdout == "none\n"
    finally:
        other.kill()

def test_root_inside_holds_no_power_beyond_the_sandbox(tiny: Sandbox, store: Path) -> None:
    rootfs = (store / "tiny" / "rootfs").resolve()
    status = as_root(tiny, "grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status")
    fields = dict(line.split(":\t") for line in status.splitlines())
    assert fields["NoNewPrivs"] == "1" and fields["Seccomp"] == "2"
    assert fields["CapEff"] == fields["CapBnd"] == ROOT_CAPABILITIES
    for name, bit in _NEVER.items():
        assert not int(fields["CapEff"], 16) & (1 << bit), name
        assert not int(fields["CapBnd"], 16) & (1 << bit), name

    refused = {
        "mount": "mount -t tmpfs none /mnt",
        "a user namespace": "unshare -U true",
        "a mount namespace": "unshare -m true",
        "a device node": "mknod /tmp/disk b 8 0",
        "the host's /proc": "ls /proc/1/root/work",
        "e2bq's runtime": "touch /opt/e2bq/runtime/planted",
        "the agent's settings": "echo x > /run/e2bq/agent.json",
        "the host's kernel settings": "echo 3 > /proc/sys/vm/drop_caches",
        "the host's hostname": "echo host > /proc/sys/kernel/hostname",
    }
    for what, command in refused.items():
        result = tiny.commands.run(f"{command} 2>/dev/null; echo $?", user="root")
        assert result.stdout.strip() != "0", what

    # the template's files change in the sandbox's own layer only, never on the host
    before = _digest(rootfs / "usr/bin/jq")
    as_root(tiny, "echo replaced > /usr/bin/jq; rm /etc/built-by-command")
    assert tiny.commands.run("cat /usr/bin/jq").stdout == "replaced\n"
    assert _digest(rootfs / "usr/bin/jq") == before and (rootfs / "etc/built-by-command").exists()


def test_root_inside_sees_nothing_of_the_host_or_of_another_sandbox(tiny: Sandbox) -> None:
    marker = f"e2bq-root-marker-{secrets.token_hex(4)}"
    planted = [Path("/etc") / marker, Path("/root") / marker, Path("/tmp") / marker]
    other = Sandbox.create(template="tiny", timeout=120)
    try:
        for path in planted:
            path.write_text("the host's\n")
        other.commands.run(f"echo other > /home/user/{marker}; echo other > /tmp/{marker}")
        as_root(other, f"echo other > /usr/local/{marker}")
        found = as_root(tiny, f"find / -path /proc -prune -o -name '{marker}*' -print 2>/dev/null; true", 120)
        assert found == ""
    finally:
        for path in planted:
            path.unlink(missing_ok=True)
        other.kill()


def test_a_root_command_ends_as_its_command_and_is_killed_with_it(tiny: Sandbox) -> None:
    with pytest.raises(CommandExitException) as failed:
        tiny.commands.run("echo out; echo err >&2; exit 7", user="root")
    assert (failed.value.exit_code, failed.value.stdout, failed.value.stderr) == (7, "out\n", "err\n")
    assert tiny.commands.run("cat", user="root", stdin=False).stdout == ""

    handle = tiny.commands.run("sleep 300", user="root", background=True)
    running = "grep -l 'sleep [3]00' /proc/[0-9]*/cmdline 2>/dev/null | wc -l"  # [3]: not itself
    assert int(tiny.commands.run(running).stdout) >= 1
    assert tiny.commands.kill(handle.pid)
    for _ in range(50):
        if int(tiny.commands.run(running).stdout) == 0:
            break
    assert int(tiny.commands.run(running).stdout) == 0


_JUNK_CLIENT = """
import json, socket
def ask(payload, fds, then=None):
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    conn.connect("/run/e2bq-root.sock")
    socket.send_fds(conn, [payload], fds)
    first = conn.recv(4096)
    if then is not None:
        conn.send(then)
        conn.recv(4096)
    conn.close()
    return first
for payload, fds in [(b"junk", []), (b"[]", [0, 1, 2]), (b'{"argv": []}', [0, 1, 2]),
                     (b'{"argv": ["true"], "env": [1]}', [0, 1, 2]), (b'{"argv": 5}', [0, 1, 2])]:
    ask(payload, fds)
ask(b'{"argv": ["sleep", "5"], "env": {}, "cwd": "/"}', [0, 1, 2], b'{"signal": 99999}')
print("asked")
"""


def test_junk_sent_to_the_root_broker_leaves_it_serving(tiny: Sandbox) -> None:
    as_root(tiny, "true")  # the broker is there from the first root command on
    tiny.files.write("/tmp/junk.py", _JUNK_CLIENT)
    assert tiny.commands.run("python3 /tmp/junk.py").stdout == "asked\n"
    assert as_root(tiny, "id -u") == "0\n"


def test_a_pty_asked_as_root_is_roots_with_its_own_controlling_terminal(tiny: Sandbox) -> None:
    """The shell is root's, the terminal is its controlling one: ^C reaches its foreground job,
    a resize reaches it, and the SDK's kill ends it."""
    output: list[bytes] = []
    terminal = tiny.pty.create(PtySize(rows=24, cols=80), user="root")
    tiny.pty.send_stdin(terminal.pid, b"echo uid=$(id -u) tty=$(tty | cut -c1-8); stty size\n")
    tiny.pty.send_stdin(terminal.pid, b"sleep 300\n")
    time.sleep(1)
    tiny.pty.send_stdin(terminal.pid, b"\x03")
    tiny.pty.resize(terminal.pid, PtySize(rows=30, cols=100))
    tiny.pty.send_stdin(terminal.pid, b"echo interrupted=$?; stty size; exit\n")
    terminal.wait(on_pty=output.append)
    text = b"".join(output).decode(errors="replace")
    assert "uid=0 tty=/dev/pts" in text and "24 80" in text, text
    assert "interrupted=130" in text and "30 100" in text, text

    killed = tiny.pty.create(PtySize(rows=24, cols=80), user="root")
    assert tiny.pty.kill(killed.pid)
    with pytest.raises(CommandExitException):
        killed.wait()


def test_a_filesystem_pause_keeps_what_root_installed(tiny: Sandbox) -> None:
    as_root(tiny, "echo kept > /usr/local/kept && chmod 600 /usr/local/kept")
    assert tiny.pause(keep_memory=False) is True

    resumed = Sandbox.connect(tiny.sandbox_id)

    assert as_root(resumed, "cat /usr/local/kept; id -u") == "kept\n0\n"
    assert resumed.commands.run("cat /usr/local/kept 2>&1; true").stdout.endswith("Permission denied\n")


def test_the_async_sdk_runs_as_root_too(sdk: None) -> None:
    async def scenario() -> tuple[str, str]:
        sandbox = await AsyncSandbox.create(template="tiny", timeout=120)
        try:
            root = await sandbox.commands.run("id -un", user="root")
            user = await sandbox.commands.run("id -un")
            return root.stdout, user.stdout
        finally:
            await sandbox.kill()

    assert asyncio.run(scenario()) == ("root\n", "user\n")


def test_agents_started_by_bwrap_serve_root_too(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the fork server bwrap starts the root broker, which starts the agent as the
    sandbox's user; root holds the same capabilities as a forked broker's."""
    env = {"E2BQ_SANDBOXD_TEMPLATES_DIR": str(store), "E2BQ_SANDBOXD_FORK_KERNELS": "0"}
    with sandbox_host(tmp_path, env=env) as running:
        for name, value in running.env.items():
            monkeypatch.setenv(name, value)
        sandbox = Sandbox.create(template="tiny", timeout=120)
        try:
            assert as_root(sandbox, "id -u; touch /usr/local/x && echo written") == "0\nwritten\n"
            assert as_root(sandbox, "grep CapEff /proc/self/status").split() == ["CapEff:", ROOT_CAPABILITIES]
            assert sandbox.commands.run("id -u; grep CapEff /proc/self/status").stdout.split() == [
                "1000", "CapEff:", "0000000000000000",
            ]  # fmt: skip
            assert sandbox.run_code("import os; os.getuid()").text == "1000"
        finally:
            sandbox.kill()


def test_no_idmapped_tree_is_left_once_its_sandboxes_are_gone(host: SandboxHostProcess, store: Path) -> None:
    rootfs = str((store / "tiny" / "rootfs").resolve())
    with open("/proc/self/mountinfo") as table:
        assert not [line for line in table if rootfs in line], "a template's tree outlived its sandbox"
