"""A sandbox made from a built template runs on that template's root filesystem, not the host's.

Its ``/`` is an overlay: the template's tree below, shared read-only, and the sandbox's own layer on
its own disk above. Nothing of the host's system folders is bound in: files the host keeps under
``/usr``, ``/opt`` or ``/etc`` are not the sandbox's.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from e2b import SandboxException
from e2b_code_interpreter import Sandbox

from e2bq.sandboxd.templates.cli import template
from tests.integration.templates.conftest import build_tiny
from tests.procs import SandboxHostProcess, sandbox_host, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.network, pytest.mark.timeout(600)]


@pytest.fixture
def tiny(host: SandboxHostProcess, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    for name, value in host.env.items():
        monkeypatch.setenv(name, value)
    sandbox = Sandbox.create(template="tiny", timeout=120)
    try:
        yield sandbox
    finally:
        sandbox.kill()


def sh(sandbox: Sandbox, command: str) -> str:
    return sandbox.commands.run(command).stdout


def test_the_sandbox_runs_on_the_template(tiny: Sandbox) -> None:
    assert sh(tiny, "cat /etc/built-by-command").splitlines() == ["jq-1.6", "ok"]
    assert sh(tiny, "jq -n 1+1").strip() == "2"  # jq is the template's, not the host's
    assert sh(tiny, "stat -c %a /opt/tiny/motd.txt").strip() == "640"  # root's, as the template has it
    assert sh(tiny, "echo $GREETING").strip() == "hello"  # the template's environment
    assert sh(tiny, "whoami; pwd").split() == ["user", "/home/user"]
    assert tiny.get_info().template_id == "tiny"

    execution = tiny.run_code("import os, six; x = 20\nos.getcwd()")
    assert execution.error is None and (execution.text or "").strip("'") == "/home/user"
    assert tiny.run_code("x * 2 + 2").text == "42"


def test_the_hosts_files_are_not_the_sandboxes(tiny: Sandbox, tmp_path: Path) -> None:
    marker = f"e2bq-host-marker-{secrets.token_hex(4)}"
    planted = [Path("/usr/local/share") / marker, Path("/opt") / marker, Path("/etc") / marker]
    for path in planted:
        path.write_text("the host's\n")
    try:
        for path in planted:
            assert sh(tiny, f"test -e {path} && echo seen || echo absent").strip() == "absent", path
        # /opt holds the template's folder and e2bq's agent, nothing else of the host's
        assert sorted(sh(tiny, "ls /opt").split()) == ["e2bq", "tiny"]
        assert sh(tiny, "cat /etc/hostname").strip() == "e2b"
        assert "bookworm" in sh(tiny, "cat /etc/os-release")
        # the host's /root (where this test runs from) is not the sandbox's /root
        assert sh(tiny, f"ls /root 2>&1 | grep -c {Path.cwd().name} || true").strip() == "0"
    finally:
        for path in planted:
            path.unlink()


def test_writes_stay_in_the_sandboxes_own_layer(tiny: Sandbox, store: Path) -> None:
    other = Sandbox.create(template="tiny", timeout=120)
    try:
        tiny.commands.run("echo mine > /var/tmp/written-here && mkdir -p /var/tmp/deep/er")
        assert tiny.files.read("/var/tmp/written-here") == "mine\n"
        assert not other.files.exists("/var/tmp/written-here")
        rootfs = (store / "tiny" / "rootfs").resolve()
        assert not (rootfs / "var/tmp/written-here").exists()
        # the template's own files cannot be changed by the sandbox's user
        denied = tiny.commands.run("echo x > /usr/bin/jq 2>&1; rm /etc/built-by-command 2>&1; echo $?")
        assert denied.stdout.split()[-1] != "0" and "Permission denied" in denied.stdout
        assert (rootfs / "usr/bin/jq").stat().st_size > 1000
        # a write anywhere counts against the sandbox's own disk
        usage = tiny.commands.run("df --output=source,size / | tail -1").stdout.split()
        assert usage[0].startswith("e2bq-run-")
    finally:
        other.kill()


def test_a_filesystem_pause_keeps_the_sandboxes_root(tiny: Sandbox) -> None:
    tiny.commands.run("echo kept > /var/tmp/across-pause")
    assert tiny.pause(keep_memory=False) is True

    resumed = Sandbox.connect(tiny.sandbox_id)

    assert resumed.files.read("/var/tmp/across-pause") == "kept\n"
    assert sh(resumed, "cat /etc/built-by-command").splitlines() == ["jq-1.6", "ok"]


def test_the_home_starts_as_the_templates_and_is_the_sandboxes_own(tiny: Sandbox, store: Path) -> None:
    seen = sh(tiny, "cat ~/notes.txt; stat -c %U ~/notes.txt ~/.bashrc; echo changed > ~/notes.txt")
    assert seen == "from the template\nuser\nuser\n"
    other = Sandbox.create(template="tiny", timeout=120)
    try:
        assert other.files.read("/home/user/notes.txt") == "from the template\n"
    finally:
        other.kill()
    assert (store / "tiny" / "rootfs" / "home/user/notes.txt").read_text() == "from the template\n"
    assert tiny.files.read("/home/user/notes.txt") == "changed\n"


def test_an_unknown_template_is_a_404_that_names_the_ones_served(
    host: SandboxHostProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in host.env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SandboxException, match=r"template 'no-such-template' not found.*'tiny'"):
        Sandbox.create(template="no-such-template")


def test_a_template_in_use_is_not_deleted(tiny: Sandbox, store: Path) -> None:
    result = CliRunner().invoke(template, ["delete", "tiny", "--dir", str(store)])
    assert result.exit_code == 1 and "in use" in result.output
    assert (store / "tiny" / "rootfs" / "usr/bin/jq").is_file()
    assert sh(tiny, "jq --version").strip() == "jq-1.6"


def test_no_overlay_is_left_once_its_sandboxes_are_gone(host: SandboxHostProcess, store: Path) -> None:
    rootfs = str((store / "tiny" / "rootfs").resolve())
    with open("/proc/self/mountinfo") as table:
        assert not [line for line in table if rootfs in line], "an overlay outlived its sandbox"
    assert os.path.isdir(rootfs)


def test_hostile_code_on_a_template_stays_in_its_sandbox(tiny: Sandbox, store: Path) -> None:
    probes = tiny.commands.run(
        # a setuid program of the template gives nothing (nosuid mount, no_new_privs)
        "ls -l /usr/bin/passwd >/dev/null;"
        " (passwd -S root >/dev/null 2>&1 && echo passwd-ran) || echo no-setuid;"
        # no mount, no device node, the jail's own pid 1 root
        " (mount -t tmpfs none /var/tmp 2>/dev/null && echo mounted) || echo no-mount;"
        " (mknod /var/tmp/disk b 8 0 2>/dev/null && echo mknod) || echo no-mknod;"
        " (ls /proc/1/root/work >/dev/null 2>&1 && echo host-root) || echo own-root;"
        # the overlay's upper layer on the host is out of reach: there is no path to it inside
        " (ls /proc/1/root/../../system 2>/dev/null | grep -q upper && echo upper-seen) || echo no-upper",
    )
    assert probes.stdout.split() == ["no-setuid", "no-mount", "no-mknod", "own-root", "no-upper"]
    identity = sh(tiny, "id -u; grep CapEff /proc/self/status").split()
    assert identity == ["1000", "CapEff:", "0000000000000000"]
    assert not (store / "tiny" / "rootfs" / "var/tmp/disk").exists()


def _metric(host: SandboxHostProcess, name: str) -> float:
    text = httpx.get(host.env["E2B_API_URL"] + "/metrics").text
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


def test_a_template_built_while_the_host_runs_gets_its_warm_pool(
    tiny_template: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, source = tiny_template
    env = {"E2BQ_SANDBOXD_TEMPLATES_DIR": str(folder), "E2BQ_SANDBOXD_WARM_POOL_TEMPLATES": "tiny-pooled=1"}
    with sandbox_host(tmp_path, env=env) as running:
        for name, value in running.env.items():
            monkeypatch.setenv(name, value)
        assert _metric(running, "e2bq_sandboxd_pool_ready") == 0  # not built: no pool
        build_tiny(folder, source, "tiny-pooled")  # the same definition: the cached build, at once
        wait_for(lambda: _metric(running, "e2bq_sandboxd_pool_ready") >= 1, 60, "a pooled tiny jail")
        served = _metric(running, 'e2bq_sandboxd_pool_takes_total{outcome="ready"}')

        sandbox = Sandbox.create(template="tiny-pooled", timeout=60)

        assert _metric(running, 'e2bq_sandboxd_pool_takes_total{outcome="ready"}') == served + 1
        assert sh(sandbox, "cat /etc/built-by-command; echo $GREETING").split() == ["jq-1.6", "ok", "hello"]
        assert sandbox.get_info().template_id == "tiny-pooled"
        sandbox.kill()
    CliRunner().invoke(template, ["delete", "tiny-pooled", "--dir", str(folder)])


def test_sandboxes_on_a_template_can_trust_the_hosts_certificates(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = tmp_path / "proxy-ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\nthe host's proxy\n-----END CERTIFICATE-----\n")
    env = {"E2BQ_SANDBOXD_TEMPLATES_DIR": str(store), "E2BQ_SANDBOX_CA_BUNDLE": str(bundle)}
    with sandbox_host(tmp_path, env=env) as running:
        for name, value in running.env.items():
            monkeypatch.setenv(name, value)
        sandbox = Sandbox.create(template="tiny", timeout=60)
        try:
            assert sandbox.files.read("/etc/ssl/certs/ca-certificates.crt") == bundle.read_text()
            denied = sandbox.commands.run("(echo x >> /etc/ssl/certs/ca-certificates.crt) 2>&1; true").stdout
            assert "Read-only file system" in denied or "Permission denied" in denied
            assert sandbox.files.read("/etc/ssl/certs/ca-certificates.crt") == bundle.read_text()
        finally:
            sandbox.kill()
    template_bundle = (store / "tiny" / "rootfs" / "etc/ssl/certs/ca-certificates.crt").resolve()
    assert "the host's proxy" not in template_bundle.read_text()
