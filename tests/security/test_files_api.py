"""The files API (read, write, list, rename, remove, make_dir, signed URLs) stays inside the jail:
not with ``../``, not with the host's absolute paths, not through symlinks made inside.

The host side is checked directly: a canary file in the host's /tmp, the host's /etc/passwd, and
sandboxd's state folder must be exactly as they were.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from e2b import SandboxException
from e2b.sandbox.filesystem.filesystem import WriteEntry
from e2b_code_interpreter import Sandbox

from tests.procs import DEFAULT_ROOTFS, SandboxHostProcess
from tests.security.harness import assert_host_and_neighbour_answer, run
from tests.security.probes import sha256_of

UP = "../" * 12
PLANTED = ("planted", "stolen", "moved", "pwned")
ON_TEMPLATE = DEFAULT_ROOTFS is not None  # sandboxes run on code-interpreter-v1's root (see tests.procs)


def planted_outside(state_dir: Path, sandbox: Sandbox) -> list[str]:
    """Files the attacks named, found in sandboxd's state anywhere but the attacker's own folder."""
    found = []
    for path in state_dir.rglob("*"):
        relative = str(path.relative_to(state_dir))
        # a word of its own in the name ("moved", not a template's "debian-archive-removed-keys")
        if not relative.startswith(sandbox.sandbox_id) and any(
            re.search(rf"(^|[^a-z]){word}", path.name) for word in PLANTED
        ):
            found.append(relative)
    return found


def shared_state(state_dir: Path) -> dict[str, str]:
    """sandboxd's own files every jail sees (generated /etc, the agent's code), by content."""
    return {
        str(p.relative_to(state_dir)): sha256_of(p)
        for folder in ("etc", "lib")
        for p in (state_dir / folder).rglob("*")
        if p.is_file()
    }


@pytest.fixture
def host_files(canary: Path) -> Iterator[dict[str, str]]:
    """The host files an escape would touch; the test fails if any changed."""
    watched = [canary, Path("/etc/passwd"), Path("/etc/hostname")]
    before = {str(p): sha256_of(p) for p in watched}
    yield before
    assert {str(p): sha256_of(p) for p in watched} == before


def test_traversal_reads_find_nothing_of_the_host(
    make_sandbox: Callable[..., Sandbox], host: SandboxHostProcess, canary: Path, host_files: dict[str, str]
) -> None:
    sandbox = make_sandbox()
    paths = [
        "../../etc/shadow",
        "/etc/shadow",
        UP + "etc/shadow",
        "~/../../etc/shadow",
        "/home/user/../../etc/shadow",
        str(canary),
        UP + str(canary).lstrip("/"),
        str(host.state_dir / "etc" / "passwd"),
        "/proc/1/root" + str(canary),
    ]
    for path in paths:
        with pytest.raises(SandboxException):
            sandbox.files.read(path)
        # on a template, /etc/shadow is the template's own (root's, unreadable), not the host's; and
        # pid 1 is root's there, so looking through /proc/1/root is refused outright
        if not ON_TEMPLATE:
            assert not sandbox.files.exists(path)
        elif not path.endswith("etc/shadow"):
            with contextlib.suppress(SandboxException):
                assert not sandbox.files.exists(path)
        answer = httpx.get(sandbox.download_url(path), timeout=30)
        assert answer.status_code != 200, path
        assert canary.read_text() not in answer.text


def test_traversal_writes_change_nothing_on_the_host(
    make_sandbox: Callable[..., Sandbox],
    host: SandboxHostProcess,
    neighbour: Sandbox,
    canary: Path,
    host_files: dict[str, str],
) -> None:
    sandbox = make_sandbox()
    shared_before = shared_state(host.state_dir)
    neighbour_home = f"{host.state_dir}/{neighbour.sandbox_id}/home/planted.txt"

    for path in ["/etc/passwd", "../../etc/passwd", UP + "etc/hostname", "/usr/bin/e2bq-planted"]:
        with pytest.raises(SandboxException):
            sandbox.files.write(path, "pwned")
    # these land in the sandbox's own /tmp (the host's /tmp is not there), or fail
    for path in [str(canary), UP + str(canary).lstrip("/"), neighbour_home]:
        try:
            sandbox.files.write(path, "pwned")
        except SandboxException:
            continue
    sandbox.files.write_files(
        [WriteEntry(path=UP + str(canary).lstrip("/"), data="pwned"), WriteEntry(path="ok.txt", data="ok")]
    )
    posted = httpx.post(sandbox.upload_url(UP + str(canary).lstrip("/")), files={"file": ("x", b"pwned")})
    assert posted.status_code in (200, 400, 403, 404)

    assert not neighbour.files.exists("/home/user/planted.txt")
    assert planted_outside(host.state_dir, sandbox) == []
    assert shared_state(host.state_dir) == shared_before
    assert_host_and_neighbour_answer(host, neighbour)


def test_listings_show_the_jail_not_the_host(
    make_sandbox: Callable[..., Sandbox], host: SandboxHostProcess, canary: Path
) -> None:
    sandbox = make_sandbox()
    root = {e.name for e in sandbox.files.list("/")}

    for path in ["/..", "/../..", UP, "/proc/1/root", "/proc/self/root"]:
        if ON_TEMPLATE and path == "/proc/1/root":  # pid 1 is root's there: refused outright
            with pytest.raises(SandboxException, match="Permission denied"):
                sandbox.files.list(path)
            continue
        assert {e.name for e in sandbox.files.list(path)} == root, path
    assert "work" not in root and ("root" not in root or ON_TEMPLATE)  # a template has its own /root
    assert canary.name not in {e.name for e in sandbox.files.list("/tmp")}
    for path in [str(host.state_dir), f"{host.state_dir}/{sandbox.sandbox_id}", "/root"]:
        with pytest.raises(SandboxException):
            sandbox.files.list(path)


def test_symlinks_made_inside_lead_nowhere_outside(
    make_sandbox: Callable[..., Sandbox],
    host: SandboxHostProcess,
    neighbour: Sandbox,
    canary: Path,
    host_files: dict[str, str],
) -> None:
    sandbox = make_sandbox()
    shared_before = shared_state(host.state_dir)
    neighbour_folder = host.state_dir / neighbour.sandbox_id
    links = {
        "root": "/",
        "state": str(host.state_dir),
        "neighbour": str(neighbour_folder),
        "canary": str(canary),
        "relative": UP + str(canary).lstrip("/"),
        "init_root": "/proc/1/root",
    }
    run(sandbox, "; ".join(f"ln -s '{target}' /home/user/{name}" for name, target in links.items()))
    assert {e.name for e in sandbox.files.list("/home/user")} >= set(links)

    # read
    for path in ["root/etc/shadow", "canary", "relative", "state/etc/passwd", "init_root/etc/shadow"]:
        with pytest.raises(SandboxException):
            sandbox.files.read(f"/home/user/{path}")
    # list
    assert "work" not in {e.name for e in sandbox.files.list("/home/user/root")}
    for path in ["state", "neighbour"]:
        with pytest.raises(SandboxException):
            sandbox.files.list(f"/home/user/{path}")
    # write and make_dir through the links: into the jail's own /tmp, or refused
    for path in ["canary", "relative", "state/planted.txt", "neighbour/home/planted.txt", "root/etc/passwd"]:
        try:
            sandbox.files.write(f"/home/user/{path}", "pwned")
        except SandboxException:
            continue
    for path in ["state/planted-dir", "root/planted-dir", "root/usr/planted-dir"]:
        try:
            sandbox.files.make_dir(f"/home/user/{path}")
        except SandboxException:
            continue
    # rename and remove through the links
    renames = [
        ("/home/user/root/etc/hostname", "/home/user/stolen"),
        ("/home/user/canary", "/home/user/moved"),
        (str(canary), "/home/user/moved-canary"),
        ("/home/user/state/etc/passwd", "/home/user/stolen-passwd"),
    ]
    for source, target in renames:
        try:
            sandbox.files.rename(source, target)
        except SandboxException:
            continue
    for path in ["/home/user/root/etc/hostname", str(canary), "/home/user/state/etc", "/home/user/neighbour"]:
        try:
            sandbox.files.remove(path)
        except SandboxException:
            continue

    assert canary.exists()
    assert planted_outside(host.state_dir, sandbox) == []
    assert shared_state(host.state_dir) == shared_before
    assert not neighbour.files.exists("/home/user/planted.txt")
    assert_host_and_neighbour_answer(host, neighbour)
