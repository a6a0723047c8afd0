"""File metadata, as E2B's envd keeps it: ``user.e2b.*`` extended attributes set by an upload's
``X-Metadata-*`` headers and read back by ``list``, ``get_info`` and ``rename``; sync and async SDK."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from e2b import InvalidArgumentException, NotEnoughSpaceException
from e2b_code_interpreter import AsyncSandbox, Sandbox

from tests.procs import SandboxHostProcess


def attributes(sandbox: Sandbox, path: str) -> dict[str, str]:
    """Every extended attribute of ``path`` as the sandbox's own Python sees it."""
    script = (
        f"import os, json; p = {path!r}; "
        "print(json.dumps({n: os.getxattr(p, n).decode('latin-1') for n in os.listxattr(p)}))"
    )
    return dict(json.loads(sandbox.commands.run(f'python3 -c "{script}"').stdout))


def test_metadata_on_a_multipart_write_comes_back_everywhere(sandbox: Sandbox) -> None:
    written = sandbox.files.write("/home/user/m.txt", "data", metadata={"Owner": "alice", "k-2": "a b"})
    assert written.metadata == {"owner": "alice", "k-2": "a b"}  # keys lowercased, as envd does
    assert sandbox.files.get_info("/home/user/m.txt").metadata == {"owner": "alice", "k-2": "a b"}
    [listed] = [entry for entry in sandbox.files.list("/home/user") if entry.name == "m.txt"]
    assert listed.metadata == {"owner": "alice", "k-2": "a b"}
    moved = sandbox.files.rename("/home/user/m.txt", "/home/user/sub/n.txt")
    assert moved.metadata == {"owner": "alice", "k-2": "a b"}
    assert attributes(sandbox, "/home/user/sub/n.txt") == {"user.e2b.owner": "alice", "user.e2b.k-2": "a b"}


def test_metadata_on_octet_stream_and_gzip_uploads(sandbox: Sandbox) -> None:
    raw = sandbox.files.write("/home/user/o.bin", b"\x00\x01", use_octet_stream=True, metadata={"a": "1"})
    assert raw.metadata == {"a": "1"}
    packed = sandbox.files.write("/home/user/g.txt", "zipped", gzip=True, metadata={"b": "2"})
    assert packed.metadata == {"b": "2"}
    assert sandbox.files.read("/home/user/g.txt") == "zipped"
    several = sandbox.files.write_files(
        [{"path": "/home/user/w1.txt", "data": "1"}, {"path": "/home/user/w2.txt", "data": "2"}],
        metadata={"batch": "yes"},
    )
    assert [info.metadata for info in several] == [{"batch": "yes"}, {"batch": "yes"}]


def test_an_overwrite_replaces_the_whole_set(sandbox: Sandbox) -> None:
    sandbox.files.write("/home/user/r.txt", "one", metadata={"old": "1", "kept": "1"})
    assert sandbox.files.write("/home/user/r.txt", "two", metadata={"kept": "2"}).metadata == {"kept": "2"}
    assert sandbox.files.get_info("/home/user/r.txt").metadata == {"kept": "2"}
    assert sandbox.files.write("/home/user/r.txt", "three").metadata is None
    assert sandbox.files.get_info("/home/user/r.txt").metadata is None


def test_attributes_set_inside_the_sandbox_show_only_under_user_e2b(sandbox: Sandbox) -> None:
    sandbox.files.write("/home/user/x.txt", "x")
    script = (
        "import os; p = '/home/user/x.txt'; "
        "os.setxattr(p, 'user.e2b.by_hand', b'yes'); os.setxattr(p, 'user.other', b'no'); "
        "os.setxattr(p, 'user.e2b.binary', b'\\xff\\xfe')"
    )
    sandbox.commands.run(f'python3 -c "{script}"')
    # another tool's user.* attribute is not metadata; bytes a JSON string cannot carry are left out
    assert sandbox.files.get_info("/home/user/x.txt").metadata == {"by_hand": "yes"}


def test_metadata_on_a_file_in_tmp_too(sandbox: Sandbox) -> None:
    assert sandbox.files.write("/tmp/t.txt", "t", metadata={"where": "tmp"}).metadata == {"where": "tmp"}


def test_async_sdk_writes_and_reads_metadata(sdk_env: SandboxHostProcess) -> None:
    async def scenario() -> tuple[object, object, object]:
        sandbox = await AsyncSandbox.create(timeout=120)
        try:
            written = await sandbox.files.write("/home/user/a.txt", "a", metadata={"Mode": "async"})
            info = await sandbox.files.get_info("/home/user/a.txt")
            moved = await sandbox.files.rename("/home/user/a.txt", "/home/user/b.txt")
            return written.metadata, info.metadata, moved.metadata
        finally:
            await sandbox.kill()

    assert asyncio.run(scenario()) == ({"mode": "async"},) * 3


# -- limits: nothing can be put where it does not belong -----------------------------------------


def test_huge_metadata_is_refused_and_writes_nothing(sandbox: Sandbox) -> None:
    before = sandbox.commands.run("ls -A /home/user").stdout  # what the template's home holds
    with pytest.raises(InvalidArgumentException, match=r"total metadata size \d+ bytes is over 4096"):
        sandbox.files.write("/home/user/huge.txt", "x", metadata={"k": "v" * 5000})
    with pytest.raises(InvalidArgumentException, match="longer than 246 bytes"):
        sandbox.files.write("/home/user/huge.txt", "x", metadata={"k" * 300: "v"})
    # under E2B's 4 KiB budget yet more than ext4 keeps beside a file: envd's 507, said plainly
    with pytest.raises(NotEnoughSpaceException, match="too large for one filesystem block"):
        sandbox.files.write("/home/user/huge.txt", "x", metadata={"k": "v" * 4070})
    assert not sandbox.files.exists("/home/user/huge.txt")
    assert sandbox.commands.run("ls -A /home/user").stdout == before  # no staging file left either


def test_raw_metadata_headers_are_checked_by_the_sandbox(sandbox: Sandbox) -> None:
    url = sandbox.upload_url("/home/user/raw.txt")
    many = {f"X-Metadata-key{index}": "v" * 90 for index in range(60)}  # ~6 KB of metadata
    answer = httpx.post(url, files={"file": ("raw.txt", b"raw")}, headers=many)
    assert answer.status_code == 400
    assert "total metadata size" in answer.json()["message"]
    bad = httpx.post(url, files={"file": ("raw.txt", b"raw")}, headers={"X-Metadata-k": b"caf\xe9"})
    assert bad.status_code == 400
    assert "printable US-ASCII" in bad.json()["message"]
    assert not sandbox.files.exists("/home/user/raw.txt")


def test_metadata_keys_name_attributes_not_paths(sandbox: Sandbox) -> None:
    written = sandbox.files.write("/home/user/p.txt", "p", metadata={"..": "up", "etc.passwd": "x"})
    assert written.metadata == {"..": "up", "etc.passwd": "x"}
    assert attributes(sandbox, "/home/user/p.txt") == {"user.e2b...": "up", "user.e2b.etc.passwd": "x"}
    assert sandbox.commands.run("ls -A /home").stdout == "user\n"  # nothing was made beside the home
