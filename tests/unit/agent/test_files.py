"""The agent's ``/files`` endpoints: streamed downloads, streamed all-or-nothing uploads."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2b.api.client_sync import get_envd_api
from e2b.connection_config import ConnectionConfig
from e2b.exceptions import FileNotFoundException, InvalidArgumentException, NotEnoughSpaceException
from e2b.sandbox.filesystem.filesystem import FileType
from e2b.sandbox_sync.filesystem.filesystem import Filesystem
from packaging.version import Version

from tests.procs import API_KEY, wait_for

from .conftest import SDK_ENVD_VERSION, AgentProcess, start_agent, tcp_bridge

MIB = 1024 * 1024
BIG = 50 * MIB


def staging_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob(".e2bq-upload-*"))


def upload_raw(client: httpx.Client, path: str, data: bytes, **headers: str) -> httpx.Response:
    headers = {"content-type": "application/octet-stream", **headers}
    return client.post("/files", params={"path": path}, content=data, headers=headers)


# --- Downloads ----------------------------------------------------------------------------------


def test_download_answers_the_raw_bytes(client: httpx.Client, workdir: Path) -> None:
    data = bytes(range(256)) * 100
    (workdir / "blob.bin").write_bytes(data)
    response = client.get("/files", params={"path": str(workdir / "blob.bin"), "username": "user"})
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-length"] == str(len(data))


def test_download_supports_ranges(client: httpx.Client, workdir: Path) -> None:
    (workdir / "r.txt").write_bytes(b"0123456789")
    response = client.get("/files", params={"path": str(workdir / "r.txt")}, headers={"range": "bytes=2-4"})
    assert (response.status_code, response.content) == (206, b"234")


def test_download_errors_are_json_with_the_status_the_sdk_maps(client: httpx.Client, workdir: Path) -> None:
    missing = client.get("/files", params={"path": str(workdir / "ghost")})
    assert missing.status_code == 404
    assert missing.json() == {"code": 404, "message": f"path '{workdir / 'ghost'}' does not exist"}

    directory = client.get("/files", params={"path": str(workdir)})
    assert directory.status_code == 400
    assert directory.json() == {"code": 400, "message": f"path '{workdir}' is a directory"}

    assert client.get("/files").status_code == 400


def test_relative_paths_are_in_home(client: httpx.Client, agent: AgentProcess, workdir: Path) -> None:
    relative = f"{workdir.name}/rel/r.txt"
    response = upload_raw(client, relative, b"relative")
    assert response.json() == [{"name": "r.txt", "type": "file", "path": str(agent.home / relative)}]
    assert (agent.home / relative).read_bytes() == b"relative"
    assert client.get("/files", params={"path": relative}).content == b"relative"
    assert client.get("/files", params={"path": f"~/{relative}"}).content == b"relative"


# --- Uploads ------------------------------------------------------------------------------------


def test_octet_stream_upload_creates_parents(client: httpx.Client, workdir: Path) -> None:
    target = workdir / "new" / "dirs" / "data.bin"
    data = os.urandom(100_000)
    response = upload_raw(client, str(target), data)
    assert response.status_code == 200
    assert response.json() == [{"name": "data.bin", "type": "file", "path": str(target)}]
    assert target.read_bytes() == data
    assert staging_files(workdir) == []


def test_multipart_upload_as_the_sdk_sends_it(client: httpx.Client, workdir: Path) -> None:
    target = workdir / "data" / "a.txt"
    boundary = "c0292e6392e010df8e7638f97788c40a"
    body = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{target}"\r\n'
        "Content-Type: text/plain\r\n\r\n"
        f"abc\r\n--{boundary}--\r\n"
    ).encode()
    response = client.post(
        "/files",
        params={"path": str(target)},
        content=body,
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 200
    assert response.json() == [{"name": "a.txt", "type": "file", "path": str(target)}]
    assert target.read_bytes() == b"abc"


def test_multipart_several_files_go_to_their_filenames(
    client: httpx.Client, agent: AgentProcess, workdir: Path
) -> None:
    files = [
        ("file", (str(workdir / "one.bin"), b"\x00\x01binary\xff")),
        ("note", ("ignored.txt", b"parts not named 'file' are ignored")),
        ("file", (f"{workdir.name}/sub/two.txt", "zwei €".encode())),
    ]
    response = client.post("/files", files=files)
    assert response.status_code == 200, response.text
    assert response.json() == [
        {"name": "one.bin", "type": "file", "path": str(workdir / "one.bin")},
        {"name": "two.txt", "type": "file", "path": str(workdir / "sub" / "two.txt")},
    ]
    assert (workdir / "one.bin").read_bytes() == b"\x00\x01binary\xff"
    assert (workdir / "sub" / "two.txt").read_text() == "zwei €"
    assert not (agent.home / "ignored.txt").exists()


def test_gzip_bodies_are_decoded(client: httpx.Client, workdir: Path) -> None:
    data = os.urandom(300_000) + b"a" * 3_000_000  # compresses well: inflated in bounded pieces
    response = upload_raw(client, str(workdir / "z.bin"), gzip.compress(data), **{"content-encoding": "gzip"})
    assert response.status_code == 200, response.text
    assert (workdir / "z.bin").read_bytes() == data

    two_members = gzip.compress(b"first ") + gzip.compress(b"second")
    response = upload_raw(client, str(workdir / "m.txt"), two_members, **{"content-encoding": "gzip"})
    assert (workdir / "m.txt").read_bytes() == b"first second"


def test_overwriting_keeps_the_mode_and_writes_through_symlinks(client: httpx.Client, workdir: Path) -> None:
    script = workdir / "run.sh"
    script.write_text("old")
    script.chmod(0o750)
    (workdir / "alias").symlink_to("run.sh")
    response = upload_raw(client, str(workdir / "alias"), b"new")
    assert response.json() == [{"name": "alias", "type": "file", "path": str(workdir / "alias")}]
    assert (workdir / "alias").is_symlink()
    assert script.read_bytes() == b"new"
    assert script.stat().st_mode & 0o777 == 0o750


@pytest.mark.parametrize(
    ("headers", "params", "content", "message"),
    [
        ({"content-type": "text/plain"}, {"path": "x"}, b"x", "unsupported Content-Type"),
        ({"content-type": "application/octet-stream"}, {}, b"x", "needs the path query"),
        (
            {"content-type": "application/octet-stream", "content-encoding": "br"},
            {"path": "x"},
            b"x",
            "unsupported Content-Encoding",
        ),
        (
            {"content-type": "application/octet-stream", "content-encoding": "gzip"},
            {"path": "x"},
            b"not gzip at all",
            "not valid gzip",
        ),
        (
            {"content-type": "application/octet-stream", "content-encoding": "gzip"},
            {"path": "x"},
            gzip.compress(b"truncated" * 1000, mtime=0)[:-20],
            "gzip body ended",
        ),
        ({"content-type": "multipart/form-data"}, {}, b"", "no boundary"),
    ],
)
def test_bad_uploads_are_400_and_leave_nothing(
    client: httpx.Client,
    workdir: Path,
    headers: dict[str, str],
    params: dict[str, str],
    content: bytes,
    message: str,
) -> None:
    params = {key: str(workdir / value) for key, value in params.items()}
    response = client.post("/files", params=params, content=content, headers=headers)
    assert response.status_code == 400
    assert response.json()["code"] == 400
    assert message in response.json()["message"]
    assert list(workdir.iterdir()) == []


def test_upload_onto_a_directory_or_under_a_file_is_400(client: httpx.Client, workdir: Path) -> None:
    (workdir / "dir").mkdir()
    response = upload_raw(client, str(workdir / "dir"), b"x")
    assert response.json() == {"code": 400, "message": f"path '{workdir / 'dir'}' is a directory"}
    (workdir / "file").write_text("")
    response = upload_raw(client, str(workdir / "file" / "below"), b"x")
    assert response.status_code == 400
    assert "a parent is not a directory" in response.json()["message"]
    assert staging_files(workdir) == []


def test_multipart_failures_leave_no_file(client: httpx.Client, workdir: Path) -> None:
    nameless = client.post("/files", files=[("file", ("", b"data"))])
    assert nameless.status_code == 400
    assert "needs a filename" in nameless.json()["message"]

    twice = [("file", (str(workdir / "same"), b"1")), ("file", (str(workdir / "same"), b"2"))]
    response = client.post("/files", files=twice)
    assert response.status_code == 400
    assert "more than once" in response.json()["message"]

    boundary = "b0undary"
    truncated = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{workdir}/cut"\r\n\r\n'
        "the body stops before the closing boundary"
    ).encode()
    response = client.post(
        "/files", content=truncated, headers={"content-type": f"multipart/form-data; boundary={boundary}"}
    )
    assert response.status_code == 400
    assert "closing boundary" in response.json()["message"]
    assert list(workdir.iterdir()) == []


def test_a_client_that_goes_away_leaves_no_file(
    agent: AgentProcess, client: httpx.Client, workdir: Path
) -> None:
    target = workdir / "partial.bin"
    watch = client.post("/filesystem.Filesystem/CreateWatcher", json={"path": str(workdir)})
    watcher = {"watcherId": watch.json()["watcherId"]}
    head = (
        f"POST /files?path={target} HTTP/1.1\r\nHost: agent\r\n"
        "Content-Type: application/octet-stream\r\nContent-Length: 10000000\r\n\r\n"
    ).encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(str(agent.socket))
        conn.sendall(head + os.urandom(1_000_000))
        wait_for(lambda: staging_files(workdir), 10, "the upload to start")
        # a watcher does not report the upload until it is complete
        assert client.post("/filesystem.Filesystem/GetWatcherEvents", json=watcher).json() == {}
    wait_for(lambda: not staging_files(workdir), 10, "the staging file to be removed")
    assert list(workdir.iterdir()) == []


# --- Through the e2b SDK --------------------------------------------------------------------------


def test_sdk_writes_and_reads(sdk_files: Filesystem, workdir: Path) -> None:
    info = sdk_files.write(str(workdir / "s.txt"), "via the SDK")  # multipart
    assert (info.name, info.type, info.path) == ("s.txt", FileType.FILE, str(workdir / "s.txt"))
    assert sdk_files.read(str(workdir / "s.txt")) == "via the SDK"

    sdk_files.write(str(workdir / "g.bin"), b"\x00" * 10_000, gzip=True)  # octet-stream + gzip
    assert sdk_files.read(str(workdir / "g.bin"), format="bytes") == bytearray(10_000)

    stream = io.BytesIO(b"streamed")  # file-like: octet-stream, streamed
    sdk_files.write(str(workdir / "f.bin"), stream)
    with sdk_files.read(str(workdir / "f.bin"), format="stream") as reader:
        assert b"".join(reader) == b"streamed"

    infos = sdk_files.write_files(
        [{"path": str(workdir / "m1"), "data": "1"}, {"path": str(workdir / "m2"), "data": b"2"}]
    )
    assert [i.path for i in infos] == [str(workdir / "m1"), str(workdir / "m2")]
    assert (workdir / "m2").read_bytes() == b"2"


def test_sdk_maps_file_errors(sdk_files: Filesystem, workdir: Path) -> None:
    with pytest.raises(FileNotFoundException):
        sdk_files.read(str(workdir / "ghost"))
    with pytest.raises(InvalidArgumentException):
        sdk_files.read(str(workdir))


# --- Big files, memory and a full disk ------------------------------------------------------------


@pytest.fixture
def big_file(tmp_path: Path) -> Path:
    path = tmp_path / "big.bin"
    with path.open("wb") as out:
        for _ in range(BIG // MIB):
            out.write(os.urandom(MIB))
    return path


def sha256_of(chunks: Iterator[bytes]) -> str:
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


@pytest.mark.slow
def test_50_mb_round_trips_without_buffering(tmp_path: Path, big_file: Path) -> None:
    expected = sha256_of(iter([big_file.read_bytes()]))
    spool = tmp_path / "agent-tmp"
    spool.mkdir()
    with start_agent(tmp_path / "agent", env={"TMPDIR": str(spool)}) as agent, agent.client() as client:
        home = agent.home
        baseline = max(agent.memory_kib("VmRSS"), agent.memory_kib("VmHWM"))
        with big_file.open("rb") as body:
            response = upload_raw(client, "raw.bin", body)  # type: ignore[arg-type]
        assert response.status_code == 200, response.text
        with big_file.open("rb") as body:
            response = client.post("/files", files=[("file", ("multi.bin", body))])
        assert response.status_code == 200, response.text
        with client.stream("GET", "/files", params={"path": "raw.bin"}) as download:
            assert sha256_of(download.iter_bytes()) == expected
        with tcp_bridge(agent.socket) as url:
            config = ConnectionConfig(api_key=API_KEY, request_timeout=120)
            sdk = Filesystem(url, Version(SDK_ENVD_VERSION), config, get_envd_api(config, url))
            with big_file.open("rb") as body:
                sdk.write("sdk.bin", body)
            with sdk.read("sdk.bin", format="stream") as reader:
                assert sha256_of(reader) == expected
        growth_mib = (agent.memory_kib("VmHWM") - baseline) / 1024
    for name in ("raw.bin", "multi.bin", "sdk.bin"):
        assert sha256_of(iter([(home / name).read_bytes()])) == expected, name
    assert growth_mib < 10, f"the agent's peak memory grew by {growth_mib:.0f} MiB"
    assert list(spool.iterdir()) == []  # nothing spooled to TMPDIR


def test_a_full_disk_is_507_and_leaves_nothing(tmp_path: Path) -> None:
    small = tmp_path / "agent" / "home" / "small"
    small.mkdir(parents=True)
    mount = 'mount -t tmpfs -o size=1m tmpfs "$0" && exec "$@"'
    wrap = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", mount, str(small)]
    with start_agent(tmp_path / "agent", wrap=wrap) as agent, agent.client() as client:
        response = upload_raw(client, "small/big.bin", os.urandom(2 * MIB))
        assert response.status_code == 507
        assert response.json()["code"] == 507
        assert "not enough disk space" in response.json()["message"]

        files = client.post("/files", files=[("file", ("small/m.bin", os.urandom(2 * MIB)))])
        assert files.status_code == 507

        with tcp_bridge(agent.socket) as url:
            config = ConnectionConfig(api_key=API_KEY, request_timeout=30)
            sdk = Filesystem(url, Version(SDK_ENVD_VERSION), config, get_envd_api(config, url))
            with pytest.raises(NotEnoughSpaceException):
                sdk.write("small/sdk.bin", os.urandom(2 * MIB))
        listing = client.post(
            "/filesystem.Filesystem/ListDir",
            json={"path": "small"},
            headers={"connect-protocol-version": "1"},
        )
        assert listing.json() == {"entries": []}  # no half file, no staging file
