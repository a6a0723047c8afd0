"""Snapshots and forks of a sandbox on a built template keep its root's changes, not only its home.

A layer taken from such a sandbox holds its root overlay's upper folder (owners made canonical) and
the chain of root parts below it; a sandbox made from the layer runs on the same template build with
those parts as extra lower layers, idmapped to its own uid range.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from e2b import SandboxException
from e2b_code_interpreter import AsyncSandbox, Sandbox

from e2bq.launch.sandboxd import start_sandboxd
from e2bq.sandboxd.templates.cli import template
from tests.integration.templates.conftest import build_tiny
from tests.procs import API_KEY, SandboxHostProcess, unmount_under

pytestmark = [pytest.mark.slow, pytest.mark.network, pytest.mark.timeout(900)]


@pytest.fixture
def make(host: SandboxHostProcess, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Sandbox]]:
    """Sandbox.create against the templated host; every sandbox made is killed after the test."""
    for name, value in host.env.items():
        monkeypatch.setenv(name, value)
    made: list[Sandbox] = []

    def create(template: str = "tiny") -> Sandbox:
        sandbox = Sandbox.create(template=template, timeout=180)
        made.append(sandbox)
        return sandbox

    yield create
    for sandbox in made:
        with contextlib.suppress(SandboxException):
            sandbox.kill()


def sh(sandbox: Sandbox, command: str, user: str = "user") -> str:
    return sandbox.commands.run(command, user=user).stdout


def changed(sandbox: Sandbox, tag: str = "first") -> None:
    """Root changes (a new file, a deleted template file, a new folder) and a file in home."""
    sh(sandbox, f"echo {tag} > /etc/marker-{tag} && rm /etc/issue && mkdir -p /srv/{tag}/deep", user="root")
    sh(sandbox, f"echo {tag} > ~/f-{tag}")


def sees(sandbox: Sandbox, tag: str = "first") -> None:
    assert sh(sandbox, f"cat /etc/marker-{tag}").strip() == tag
    assert sh(sandbox, "test -e /etc/issue && echo there || echo gone").strip() == "gone"
    assert sh(sandbox, f"test -d /srv/{tag}/deep && echo dir").strip() == "dir"
    assert sh(sandbox, f"cat ~/f-{tag}").strip() == tag
    # root inside owns what root wrote, and may still write /etc; the user owns its files
    assert sh(sandbox, f"stat -c %u /etc/marker-{tag} /srv/{tag}").split() == ["0", "0"]
    assert sh(sandbox, f"stat -c %U ~/f-{tag}").strip() == "user"
    assert sh(sandbox, "echo w > /etc/written && cat /etc/written", user="root").strip() == "w"
    assert sh(sandbox, "jq --version").strip() == "jq-1.6"  # the template's tree below


def test_a_snapshot_keeps_the_roots_changes(make: Callable[..., Sandbox], store: Path) -> None:
    source = make()
    changed(source)
    snapshot = source.create_snapshot()

    copy = make(snapshot.snapshot_id)

    sees(copy)
    assert copy.files.read("/etc/marker-first") == "first\n"
    # the template's tree on the host is as built
    rootfs = (store / "tiny" / "rootfs").resolve()
    assert (rootfs / "etc/issue").exists() and not (rootfs / "etc/marker-first").exists()
    # the source goes on as it was
    assert sh(source, "cat /etc/marker-first").strip() == "first"
    assert sh(source, "test -e /etc/written || echo no").strip() == "no"
    Sandbox.delete_snapshot(snapshot.snapshot_id)


def test_forks_keep_the_roots_changes_and_stay_apart(make: Callable[..., Sandbox]) -> None:
    source = make()
    changed(source)

    forks = source.fork(count=2)

    assert all(isinstance(fork, Sandbox) for fork in forks), forks
    one, two = forks
    try:
        for fork in forks:
            sees(fork)
        sh(one, "echo one > /etc/only-one && rm /etc/marker-first", user="root")
        assert sh(two, "cat /etc/marker-first").strip() == "first"
        assert sh(two, "test -e /etc/only-one || echo no").strip() == "no"
        assert sh(source, "test -e /etc/only-one || echo no").strip() == "no"
        assert sh(source, "cat /etc/marker-first").strip() == "first"
    finally:
        for fork in forks:
            fork.kill()


def test_a_chain_of_snapshots_keeps_every_generation(make: Callable[..., Sandbox]) -> None:
    first = make()
    changed(first, "first")
    snapshot_one = first.create_snapshot()
    second = make(snapshot_one.snapshot_id)
    sh(second, "echo second > /etc/marker-second && mkdir -p /srv/second/deep", user="root")
    sh(second, "echo second > ~/f-second")
    snapshot_two = second.create_snapshot()
    second.kill()
    first.kill()
    Sandbox.delete_snapshot(snapshot_one.snapshot_id)  # the second holds its whole chain

    third = make(snapshot_two.snapshot_id)

    sees(third, "first")
    assert sh(third, "cat /etc/marker-second ~/f-second").split() == ["second", "second"]
    assert sh(third, "stat -c %u /etc/marker-second /srv/second/deep").split() == ["0", "0"]
    Sandbox.delete_snapshot(snapshot_two.snapshot_id)


def test_a_filesystem_pause_of_a_sandbox_from_a_snapshot_keeps_its_root(make: Callable[..., Sandbox]) -> None:
    source = make()
    changed(source)
    snapshot = source.create_snapshot()
    copy = make(snapshot.snapshot_id)
    sh(copy, "echo later > /etc/later", user="root")

    assert copy.pause(keep_memory=False) is True
    resumed = Sandbox.connect(copy.sandbox_id)

    sees(resumed)
    assert sh(resumed, "cat /etc/later").strip() == "later"
    Sandbox.delete_snapshot(snapshot.snapshot_id)


def _layer_copies(host: SandboxHostProcess, name: str) -> list[Path]:
    return list((host.state_dir / "layers").glob(f"*/system/*/{name}"))


def test_hostile_a_setuid_file_gives_nothing_and_the_layer_is_read_only(
    make: Callable[..., Sandbox], host: SandboxHostProcess
) -> None:
    source = make()
    sh(source, "cp /bin/sh /usr/local/bin/rootsh && chmod 4755 /usr/local/bin/rootsh", user="root")
    sh(source, "echo layer > /etc/in-layer", user="root")
    snapshot = source.create_snapshot()
    copy = make(snapshot.snapshot_id)

    # on the host: the copy is root's, setuid, but in a folder only root can enter
    [copied] = [p for p in _layer_copies(host, "usr") if (p / "local/bin/rootsh").exists()]
    found = os.lstat(copied / "local/bin/rootsh")
    assert found.st_uid == 0 and found.st_mode & stat.S_ISUID
    system = copied.parent.parent
    assert stat.S_IMODE(system.stat().st_mode) == 0o700 and system.stat().st_uid == 0
    assert stat.S_IMODE(host.state_dir.stat().st_mode) == 0o711
    # inside: it runs, but not as root (the root overlay is nosuid)
    assert sh(copy, "/usr/local/bin/rootsh -c 'id -u'").strip() == "1000"
    assert "nosuid" in sh(copy, "grep ' / ' /proc/self/mountinfo | head -1")
    # a write by root inside lands on its own disk, never in the shared layer
    sh(copy, "echo mine > /etc/in-layer && rm /usr/local/bin/rootsh", user="root")
    assert sh(copy, "cat /etc/in-layer").strip() == "mine"
    [in_layer] = [p for p in _layer_copies(host, "etc") if (p / "in-layer").exists()]
    assert (in_layer / "in-layer").read_text() == "layer\n"
    assert (copied / "local/bin/rootsh").exists()
    Sandbox.delete_snapshot(snapshot.snapshot_id)


def test_a_snapshot_whose_template_build_is_gone_answers_410(
    make: Callable[..., Sandbox], store: Path, tiny_template: tuple[Path, Path]
) -> None:
    _, source = tiny_template
    variant = source.parent / "variant.toml"  # another definition: a build of its own
    variant.write_text(source.read_text().replace('GREETING = "hello"', 'GREETING = "soon gone"'))
    build_tiny(store, variant, "tiny-gone")
    sandbox = make("tiny-gone")
    sh(sandbox, "echo x > /etc/x", user="root")
    snapshot = sandbox.create_snapshot()
    sandbox.kill()
    result = CliRunner().invoke(template, ["delete", "tiny-gone", "--dir", str(store)])
    assert result.exit_code == 0, result.output

    with pytest.raises(SandboxException, match=r"410.*template 'tiny-gone'.*was deleted"):
        Sandbox.create(template=snapshot.snapshot_id, timeout=60)
    Sandbox.delete_snapshot(snapshot.snapshot_id)


def test_snapshots_and_paused_copies_survive_a_restart(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"E2BQ_SANDBOXD_TEMPLATES_DIR": str(store)}
    state = Path(tempfile.mkdtemp(prefix="e2bq-tplsnap-"))  # kept across the two hosts
    try:
        with start_sandboxd(tmp_path, api_key=API_KEY, state_dir=state, env=env) as first:
            for name, value in first.env.items():
                monkeypatch.setenv(name, value)
            source = Sandbox.create(template="tiny", timeout=180)
            changed(source)
            snapshot = source.create_snapshot()
            copy = Sandbox.create(template=snapshot.snapshot_id, timeout=180)
            sh(copy, "echo later > /etc/later", user="root")
            assert copy.pause(keep_memory=False) is True
        with start_sandboxd(tmp_path, api_key=API_KEY, state_dir=state, env=env) as second:
            for name, value in second.env.items():
                monkeypatch.setenv(name, value)
            resumed = Sandbox.connect(copy.sandbox_id)
            sees(resumed)
            assert sh(resumed, "cat /etc/later").strip() == "later"
            again = Sandbox.create(template=snapshot.snapshot_id, timeout=60)
            sees(again)
            for sandbox in (resumed, again):
                sandbox.kill()
            Sandbox.delete_snapshot(snapshot.snapshot_id)
    finally:
        unmount_under(state)
        shutil.rmtree(state, ignore_errors=True)


def test_async_snapshot_and_fork_keep_the_roots_changes(
    host: SandboxHostProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in host.env.items():
        monkeypatch.setenv(name, value)

    async def scenario() -> None:
        source = await AsyncSandbox.create(template="tiny", timeout=120)
        try:
            await source.commands.run("echo async > /etc/async-marker", user="root")
            info = await source.create_snapshot()
            copy = await AsyncSandbox.create(template=info.snapshot_id, timeout=60)
            [fork] = await source.fork(count=1)
            assert isinstance(fork, AsyncSandbox), fork
            for sandbox in (copy, fork):
                assert (await sandbox.files.read("/etc/async-marker")) == "async\n"
                owner = await sandbox.commands.run("stat -c %u /etc/async-marker")
                assert owner.stdout.strip() == "0"
                await sandbox.kill()
            assert await AsyncSandbox.delete_snapshot(info.snapshot_id)
        finally:
            await source.kill()

    asyncio.run(scenario())
