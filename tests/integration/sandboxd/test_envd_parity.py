"""Smaller envd behaviours E2B's SDK pins: symlinks in ``get_info``, removing what is missing, and
expired signed URLs; with the hostile side of symlinks (they point anywhere, they lead nowhere)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from e2b import FileNotFoundException, FileType, NotFoundException, SandboxException
from e2b_code_interpreter import AsyncSandbox, Sandbox

from tests.procs import DEFAULT_ROOTFS, SandboxHostProcess


def test_get_info_of_a_symlink_reports_it_and_its_target(sandbox: Sandbox) -> None:
    sandbox.files.write("/home/user/target.txt", "t")
    sandbox.files.make_dir("/home/user/folder")
    sandbox.commands.run("ln -s target.txt /home/user/to-file && ln -s folder /home/user/to-folder")
    to_file = sandbox.files.get_info("/home/user/to-file")
    assert (to_file.type, to_file.symlink_target) == (FileType.SYMLINK, "/home/user/target.txt")
    assert to_file.mode == 0o644  # the target's permission bits, as envd reports them
    to_folder = sandbox.files.get_info("/home/user/to-folder")
    assert (to_folder.type, to_folder.symlink_target) == (FileType.SYMLINK, "/home/user/folder")
    listed = {entry.name: entry for entry in sandbox.files.list("/home/user")}
    assert listed["to-file"].symlink_target == "/home/user/target.txt"
    assert listed["target.txt"].symlink_target is None  # a file that is no link has none


def test_a_symlink_leading_out_of_the_sandbox_reads_only_the_sandbox(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    secret = tmp_path / "host-secret.txt"
    secret.write_text("host only")
    sandbox.commands.run(f"ln -s {secret} /home/user/escape && ln -s /etc/shadow /home/user/shadow")
    info = sandbox.files.get_info("/home/user/escape")
    # the target is reported as written; inside the jail no such file exists
    assert (info.type, info.symlink_target) == (FileType.SYMLINK, str(secret))
    with pytest.raises(NotFoundException):
        sandbox.files.read("/home/user/escape")
    answer = httpx.get(sandbox.download_url("/home/user/escape"))
    assert answer.status_code == 404 and b"host only" not in answer.content
    # writing through it (as envd does) makes the file in the sandbox's own private /tmp
    sandbox.files.write("/home/user/escape", "in the jail")
    assert sandbox.files.read("/home/user/escape") == "in the jail"
    assert secret.read_text() == "host only"
    if DEFAULT_ROOTFS is None:  # on the host's folders the jail's /etc holds no shadow file
        with pytest.raises(NotFoundException):
            sandbox.files.read("/home/user/shadow")
    else:  # on a template it is the template's own, root's alone
        with pytest.raises(SandboxException, match="Permission denied"):
            sandbox.files.read("/home/user/shadow")


def test_removing_a_missing_path_is_not_found(sandbox: Sandbox) -> None:
    with pytest.raises(FileNotFoundException):
        sandbox.files.remove("/home/user/never-was.txt")


def test_async_sdk_symlink_and_missing_remove(sdk_env: SandboxHostProcess) -> None:
    async def scenario() -> tuple[FileType | None, str | None, bool]:
        sandbox = await AsyncSandbox.create(timeout=120)
        try:
            await sandbox.commands.run("ln -s /home/user /home/user/.self")
            info = await sandbox.files.get_info("/home/user/.self")
            try:
                await sandbox.files.remove("/home/user/never-was.txt")
            except FileNotFoundException:
                missing = True
            else:
                missing = False
            return info.type, info.symlink_target, missing
        finally:
            await sandbox.kill()

    assert asyncio.run(scenario()) == (FileType.SYMLINK, "/home/user", True)


def test_an_expired_signed_url_is_refused_with_401(sandbox: Sandbox) -> None:
    sandbox.files.write("/home/user/timed.txt", "timed")
    expired_read = sandbox.download_url("/home/user/timed.txt", use_signature_expiration=-1)
    answer = httpx.get(expired_read)
    assert answer.status_code == 401  # envd's answer to an expired signature
    assert b"timed" not in answer.content
    expired_write = sandbox.upload_url("/home/user/timed.txt", use_signature_expiration=-1)
    assert httpx.post(expired_write, files={"file": ("timed.txt", b"changed")}).status_code == 401
    assert sandbox.files.read("/home/user/timed.txt") == "timed"
    fresh = sandbox.upload_url("/home/user/timed.txt", use_signature_expiration=60)
    assert httpx.post(fresh, files={"file": ("timed.txt", b"changed")}).status_code == 200
