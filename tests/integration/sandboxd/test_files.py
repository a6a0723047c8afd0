"""Files in a sandbox: envd's filesystem service, /files transfers and signed file URLs."""

from __future__ import annotations

import os
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from e2b import FileType, NotFoundException
from e2b_code_interpreter import Sandbox


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


# -- reading and writing -----------------------------------------------------------------------


def test_text_round_trips(sandbox: Sandbox) -> None:
    text = "héllo wörld ✓\nsecond line\n"
    info = sandbox.files.write("/home/user/notes.txt", text)
    assert info.path == "/home/user/notes.txt"
    assert info.name == "notes.txt"
    assert sandbox.files.read("/home/user/notes.txt") == text
    assert sandbox.commands.run("cat /home/user/notes.txt").stdout == text


def test_bytes_round_trip_exactly(sandbox: Sandbox) -> None:
    data = bytes(range(256)) * 4 + b"\r\n\x00\xff"
    sandbox.files.write("/home/user/all-bytes.bin", data)
    assert bytes(sandbox.files.read("/home/user/all-bytes.bin", format="bytes")) == data
    assert sandbox.commands.run("stat -c %s /home/user/all-bytes.bin").stdout == f"{len(data)}\n"


def test_a_50_mb_random_file_round_trips_byte_for_byte(sandbox: Sandbox) -> None:
    data = os.urandom(50 * 1024 * 1024)
    sandbox.files.write("/home/user/big.bin", data)
    back = sandbox.files.read("/home/user/big.bin", format="bytes")
    assert len(back) == len(data)
    assert bytes(back) == data


def test_writing_overwrites_and_creates_parent_folders(sandbox: Sandbox) -> None:
    sandbox.files.write("/home/user/a/b/c.txt", "first, longer content")
    sandbox.files.write("/home/user/a/b/c.txt", "second")
    assert sandbox.files.read("/home/user/a/b/c.txt") == "second"


def test_reading_a_missing_file_is_not_found(sandbox: Sandbox) -> None:
    with pytest.raises(NotFoundException):
        sandbox.files.read("/home/user/does-not-exist.txt")


def test_write_files_writes_several_at_once(sandbox: Sandbox) -> None:
    infos = sandbox.files.write_files(
        [
            {"path": "/home/user/many/one.txt", "data": "1"},
            {"path": "/home/user/many/two.bin", "data": b"\x00\x02"},
            {"path": "/home/user/other/three.txt", "data": "3"},
        ]
    )
    assert [i.path for i in infos] == [
        "/home/user/many/one.txt",
        "/home/user/many/two.bin",
        "/home/user/other/three.txt",
    ]
    assert sandbox.files.read("/home/user/many/one.txt") == "1"
    assert bytes(sandbox.files.read("/home/user/many/two.bin", format="bytes")) == b"\x00\x02"
    assert sandbox.files.read("/home/user/other/three.txt") == "3"


# -- the filesystem ----------------------------------------------------------------------------


def test_list_shows_files_and_folders(sandbox: Sandbox) -> None:
    sandbox.files.write("/home/user/listing/file.txt", "abc")
    sandbox.files.make_dir("/home/user/listing/folder")
    entries = {e.name: e for e in sandbox.files.list("/home/user/listing")}
    assert set(entries) == {"file.txt", "folder"}
    assert entries["file.txt"].type == FileType.FILE
    assert entries["file.txt"].path == "/home/user/listing/file.txt"
    assert entries["file.txt"].size == 3
    assert entries["folder"].type == FileType.DIR


def test_exists(sandbox: Sandbox) -> None:
    sandbox.files.write("/home/user/here.txt", "x")
    assert sandbox.files.exists("/home/user/here.txt") is True
    assert sandbox.files.exists("/home/user") is True
    assert sandbox.files.exists("/home/user/not-here.txt") is False


def test_make_dir_answers_true_then_false(sandbox: Sandbox) -> None:
    assert sandbox.files.make_dir("/home/user/new/nested") is True
    assert sandbox.files.make_dir("/home/user/new/nested") is False
    assert sandbox.files.get_info("/home/user/new/nested").type == FileType.DIR


def test_rename_moves_a_file(sandbox: Sandbox) -> None:
    sandbox.files.write("/home/user/old-name.txt", "content")
    moved = sandbox.files.rename("/home/user/old-name.txt", "/home/user/moved/new-name.txt")
    assert moved.path == "/home/user/moved/new-name.txt"
    assert sandbox.files.exists("/home/user/old-name.txt") is False
    assert sandbox.files.read("/home/user/moved/new-name.txt") == "content"


def test_remove_deletes_files_and_folders(sandbox: Sandbox) -> None:
    sandbox.files.write("/home/user/gone/inner/file.txt", "x")
    sandbox.files.write("/home/user/single.txt", "x")
    sandbox.files.remove("/home/user/single.txt")
    sandbox.files.remove("/home/user/gone")
    assert sandbox.files.exists("/home/user/single.txt") is False
    assert sandbox.files.exists("/home/user/gone") is False


def test_get_info_describes_an_entry(sandbox: Sandbox) -> None:
    sandbox.files.write("/home/user/info.txt", "12345")
    info = sandbox.files.get_info("/home/user/info.txt")
    assert info.name == "info.txt"
    assert info.path == "/home/user/info.txt"
    assert info.type == FileType.FILE
    assert info.size == 5
    assert info.owner == "user"
    assert info.permissions.startswith("-rw")
    with pytest.raises(NotFoundException):
        sandbox.files.get_info("/home/user/missing.txt")


def test_relative_paths_resolve_under_the_home(sandbox: Sandbox) -> None:
    info = sandbox.files.write("relative/dir/file.txt", "rel")
    assert info.path == "/home/user/relative/dir/file.txt"
    assert sandbox.commands.run("cat /home/user/relative/dir/file.txt").stdout == "rel"
    assert sandbox.files.read("relative/dir/file.txt") == "rel"
    assert sandbox.files.get_info("relative").path == "/home/user/relative"
    assert [e.name for e in sandbox.files.list("relative/dir")] == ["file.txt"]


# -- signed URLs -------------------------------------------------------------------------------


def test_a_download_url_serves_the_file_without_sandbox_headers(sandbox: Sandbox) -> None:
    sandbox.files.write("/home/user/shared/report.bin", b"\x00report\xff")
    url = sandbox.download_url("/home/user/shared/report.bin")
    # with E2B_SANDBOX_URL set, the SDK points file URLs at that origin, signed, with no headers
    assert url.startswith(os.environ["E2B_SANDBOX_URL"] + "/files?")
    assert "signature=v1_" in url
    answer = httpx.get(url)
    assert answer.status_code == 200
    assert answer.content == b"\x00report\xff"


def test_an_upload_url_accepts_a_multipart_file_without_sandbox_headers(sandbox: Sandbox) -> None:
    url = sandbox.upload_url("/home/user/uploads/data.bin")
    assert url.startswith(os.environ["E2B_SANDBOX_URL"] + "/files?")
    answer = httpx.post(url, files={"file": ("data.bin", b"\x01uploaded\x02")})
    assert answer.status_code == 200
    assert bytes(sandbox.files.read("/home/user/uploads/data.bin", format="bytes")) == (b"\x01uploaded\x02")


def test_a_file_url_with_an_expiration_works_until_it_expires(sandbox: Sandbox) -> None:
    sandbox.files.write("/home/user/timed.txt", "timed")
    assert httpx.get(sandbox.download_url("/home/user/timed.txt", use_signature_expiration=60)).text == (
        "timed"
    )
    expired = sandbox.download_url("/home/user/timed.txt", use_signature_expiration=-10)
    assert httpx.get(expired).status_code in (401, 403)


def test_a_bad_signature_is_refused(sandbox: Sandbox) -> None:
    sandbox.files.write("/home/user/secret.txt", "secret")
    sandbox.files.write("/home/user/public.txt", "public")
    url = sandbox.download_url("/home/user/public.txt")
    signature = dict(parse_qsl(urlsplit(url).query))["signature"]

    forged = _with_query(url, signature=signature[:-4] + "AAAA")
    assert httpx.get(forged).status_code in (401, 403)
    # a signature is good for its own path only
    other_path = _with_query(url, path="/home/user/secret.txt")
    answer = httpx.get(other_path)
    assert answer.status_code in (401, 403)
    assert b"secret" not in answer.content
    # and for its own operation only: a read URL cannot upload
    posted = httpx.post(url, files={"file": ("public.txt", b"overwritten")})
    assert posted.status_code in (401, 403)
    assert sandbox.files.read("/home/user/public.txt") == "public"
    # no signature at all and no sandbox headers: nothing to serve
    assert httpx.get(_with_query(url, signature="")).status_code in (401, 403)


def test_a_proc_file_that_says_zero_bytes_reads_whole_and_leaves_the_connection_usable(
    sandbox: Sandbox,
) -> None:
    status = sandbox.files.read("/proc/self/status")
    assert "Pid:" in status
    assert sandbox.commands.run("echo still fine").stdout == "still fine\n"
