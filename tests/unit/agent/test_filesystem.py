"""The agent's ``filesystem.Filesystem`` service, as the e2b SDK calls it and parses its answers."""

from __future__ import annotations

import errno
import grp
import json
import os
import pwd
import re
import struct
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2b.envd.filesystem import filesystem_pb
from e2b.exceptions import FileNotFoundException, InvalidArgumentException
from e2b.sandbox.filesystem.filesystem import FileType, map_entry_info
from e2b.sandbox.filesystem.watch_handle import FilesystemEventType
from e2b.sandbox_sync.filesystem.filesystem import Filesystem

from e2bq.sandboxd.agent.envd.entries import os_error

from .conftest import AgentProcess, start_agent

CONNECT_HEADERS = {"content-type": "application/json", "connect-protocol-version": "1"}


def rpc(client: httpx.Client, method: str, body: dict[str, Any]) -> httpx.Response:
    return client.post(f"/filesystem.Filesystem/{method}", json=body, headers=CONNECT_HEADERS)


def ok(client: httpx.Client, method: str, body: dict[str, Any]) -> dict[str, Any]:
    response = rpc(client, method, body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def error(client: httpx.Client, method: str, body: dict[str, Any]) -> tuple[str, str]:
    response = rpc(client, method, body)
    assert response.status_code != 200, response.text
    payload = response.json()
    return payload["code"], payload["message"]


def stat_entry(client: httpx.Client, path: str) -> filesystem_pb.EntryInfo:
    """Stat through the agent, parsed strictly (unknown fields rejected) as the SDK's message."""
    response = rpc(client, "Stat", {"path": path})
    assert response.status_code == 200, response.text
    parsed = filesystem_pb.StatResponse.from_json(response.content)
    assert parsed.entry is not None
    return parsed.entry


def names(entries: list[dict[str, Any]], base: Path) -> list[str]:
    return [str(Path(entry["path"]).relative_to(base)) for entry in entries]


# --- Stat and EntryInfo ----------------------------------------------------------------------


def test_stat_reports_every_entry_info_field(client: httpx.Client, workdir: Path) -> None:
    target = workdir / "notes.txt"
    target.write_bytes(b"hello")
    target.chmod(0o640)
    st = os.stat(target)

    raw = ok(client, "Stat", {"path": str(target)})["entry"]
    assert raw["size"] == "5"  # int64 as a JSON string
    assert raw["type"] == "FILE_TYPE_FILE"
    entry = map_entry_info(stat_entry(client, str(target)))

    assert entry.name == "notes.txt"
    assert entry.type is FileType.FILE
    assert entry.path == str(target)
    assert entry.size == 5
    assert entry.mode == 0o640
    assert entry.permissions == "-rw-r-----"
    assert entry.owner == pwd.getpwuid(st.st_uid).pw_name
    assert entry.group == grp.getgrgid(st.st_gid).gr_name
    assert entry.symlink_target is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}|\.\d{6}|\.\d{9})?Z", raw["modifiedTime"])
    expected = datetime.fromtimestamp(st.st_mtime_ns // 10**9, tz=UTC)
    drift = entry.modified_time - expected
    assert abs(drift.total_seconds() - (st.st_mtime_ns % 10**9) / 1e9) < 1e-6


def test_stat_directory_omits_defaults_and_parses(client: httpx.Client, workdir: Path) -> None:
    empty = workdir / "empty.bin"
    empty.touch()
    raw = ok(client, "Stat", {"path": str(empty)})["entry"]
    assert "size" not in raw  # proto3 JSON leaves zero out

    entry = map_entry_info(stat_entry(client, str(workdir)))
    assert entry.type is FileType.DIR
    assert entry.permissions.startswith("d")
    assert entry.size > 0


def test_stat_symlinks_report_their_target(client: httpx.Client, workdir: Path) -> None:
    (workdir / "real").mkdir(mode=0o750)
    (workdir / "link").symlink_to("real")
    (workdir / "dangling").symlink_to("nowhere")

    link = map_entry_info(stat_entry(client, str(workdir / "link")))
    assert link.type is FileType.SYMLINK
    assert link.symlink_target == str(workdir / "real")
    assert link.permissions.startswith("l")
    assert link.mode == 0o750  # the target's permission bits, as envd reports them

    dangling = map_entry_info(stat_entry(client, str(workdir / "dangling")))
    assert dangling.type is FileType.SYMLINK
    assert dangling.symlink_target == str(workdir / "nowhere")


def test_stat_of_a_missing_path_is_not_found(client: httpx.Client, workdir: Path) -> None:
    response = rpc(client, "Stat", {"path": str(workdir / "ghost")})
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert str(workdir / "ghost") in response.json()["message"]


def test_relative_and_tilde_paths_are_in_home(
    client: httpx.Client, agent: AgentProcess, workdir: Path
) -> None:
    relative = f"{workdir.name}/made/here"
    made = ok(client, "MakeDir", {"path": relative})["entry"]
    assert made["path"] == str(agent.home / relative)
    assert ok(client, "Stat", {"path": f"~/{relative}"})["entry"]["name"] == "here"
    listed = ok(client, "ListDir", {"path": f"{workdir.name}/made"})["entries"]
    assert [entry["path"] for entry in listed] == [str(agent.home / relative)]


# --- ListDir ------------------------------------------------------------------------------


@pytest.fixture
def tree(workdir: Path) -> Path:
    """b.txt, a/, a/x.txt, a/sub/, a/sub/deep.txt and link -> a."""
    (workdir / "a" / "sub").mkdir(parents=True)
    (workdir / "a" / "x.txt").write_text("x")
    (workdir / "a" / "sub" / "deep.txt").write_text("deep")
    (workdir / "b.txt").write_text("b")
    (workdir / "link").symlink_to(workdir / "a")
    return workdir


def test_list_dir_depth_one_is_the_default(client: httpx.Client, tree: Path) -> None:
    default = ok(client, "ListDir", {"path": str(tree)})["entries"]
    assert names(default, tree) == ["a", "b.txt", "link"]
    assert ok(client, "ListDir", {"path": str(tree), "depth": 1})["entries"] == default


def test_list_dir_depth_two_goes_one_level_down_sorted(client: httpx.Client, tree: Path) -> None:
    response = rpc(client, "ListDir", {"path": str(tree), "depth": 2})
    entries = response.json()["entries"]
    assert names(entries, tree) == ["a", "a/sub", "a/x.txt", "b.txt", "link"]  # link not entered
    parsed = filesystem_pb.ListDirResponse.from_json(response.content)
    types = [map_entry_info(entry).type for entry in parsed.entries]
    assert types == [FileType.DIR, FileType.DIR, FileType.FILE, FileType.FILE, FileType.SYMLINK]

    deep = ok(client, "ListDir", {"path": str(tree), "depth": 5})["entries"]
    assert "a/sub/deep.txt" in names(deep, tree)


def test_list_dir_follows_a_symlinked_directory(client: httpx.Client, tree: Path) -> None:
    entries = ok(client, "ListDir", {"path": str(tree / "link")})["entries"]
    assert names(entries, tree / "link") == ["sub", "x.txt"]


def test_list_dir_errors(client: httpx.Client, tree: Path) -> None:
    assert error(client, "ListDir", {"path": str(tree / "ghost")})[0] == "not_found"
    code, message = error(client, "ListDir", {"path": str(tree / "b.txt")})
    assert (code, "not a directory") == ("invalid_argument", message[-15:])
    assert error(client, "ListDir", {"path": str(tree), "depth": "deep"})[0] == "invalid_argument"
    assert error(client, "ListDir", {"path": str(tree), "depth": -1})[0] == "invalid_argument"
    assert error(client, "ListDir", {})[0] == "invalid_argument"


# --- MakeDir, Move, Remove -------------------------------------------------------------------


def test_make_dir_creates_parents_then_reports_already_exists(client: httpx.Client, workdir: Path) -> None:
    target = workdir / "x" / "y" / "z"
    entry = ok(client, "MakeDir", {"path": str(target)})["entry"]
    assert (entry["type"], entry["path"]) == ("FILE_TYPE_DIRECTORY", str(target))
    assert target.is_dir()

    response = rpc(client, "MakeDir", {"path": str(target)})
    assert (response.status_code, response.json()["code"]) == (409, "already_exists")

    (workdir / "file").write_text("")
    assert error(client, "MakeDir", {"path": str(workdir / "file")})[0] == "invalid_argument"
    assert error(client, "MakeDir", {"path": str(workdir / "file" / "sub")})[0] == ("invalid_argument")


def test_move_renames_into_new_parents(client: httpx.Client, workdir: Path) -> None:
    (workdir / "old.txt").write_text("content")
    destination = workdir / "new" / "place" / "moved.txt"
    entry = ok(client, "Move", {"source": str(workdir / "old.txt"), "destination": str(destination)})
    assert entry["entry"]["path"] == str(destination)
    assert entry["entry"]["name"] == "moved.txt"
    assert destination.read_text() == "content"
    assert not (workdir / "old.txt").exists()


def test_move_errors(client: httpx.Client, workdir: Path) -> None:
    missing = {"source": str(workdir / "ghost"), "destination": str(workdir / "x")}
    code, message = error(client, "Move", missing)
    assert code == "not_found" and str(workdir / "ghost") in message

    (workdir / "src").mkdir()
    (workdir / "dst").mkdir()
    (workdir / "dst" / "keep").write_text("")
    full = {"source": str(workdir / "src"), "destination": str(workdir / "dst")}
    assert error(client, "Move", full)[0] == "failed_precondition"
    assert (workdir / "dst" / "keep").exists()


def test_remove_files_and_directories_recursively(client: httpx.Client, tree: Path) -> None:
    assert ok(client, "Remove", {"path": str(tree / "b.txt")}) == {}
    assert not (tree / "b.txt").exists()

    assert ok(client, "Remove", {"path": str(tree / "link")}) == {}
    assert not (tree / "link").exists()
    assert (tree / "a" / "sub" / "deep.txt").exists()  # a symlink goes, never its target

    assert ok(client, "Remove", {"path": str(tree / "a")}) == {}
    assert not (tree / "a").exists()

    code, message = error(client, "Remove", {"path": str(tree / "a")})
    assert code == "not_found" and str(tree / "a") in message


@pytest.mark.parametrize(
    ("number", "code"),
    [
        (errno.ENOENT, "not_found"),
        (errno.EEXIST, "already_exists"),
        (errno.EACCES, "permission_denied"),
        (errno.EPERM, "permission_denied"),
        (errno.ENOTDIR, "invalid_argument"),
        (errno.EISDIR, "invalid_argument"),
        (errno.ENOSPC, "resource_exhausted"),
        (errno.EIO, "internal"),
    ],
)
def test_os_errors_map_to_connect_codes(number: int, code: str) -> None:
    err = os_error(OSError(number, os.strerror(number), "/home/user/f"), "cannot write", "/x")
    assert err.code == code
    assert err.message == f"cannot write '/x': {os.strerror(number)}"


# --- Watchers ---------------------------------------------------------------------------------


def watcher_events(client: httpx.Client, watcher_id: str) -> list[tuple[str, str]]:
    response = rpc(client, "GetWatcherEvents", {"watcherId": watcher_id})
    assert response.status_code == 200, response.text
    parsed = filesystem_pb.GetWatcherEventsResponse.from_json(response.content)
    assert parsed.events is not None
    return [(event.name, event.type.name) for event in parsed.events]


def test_watcher_reports_create_write_chmod_rename_remove(client: httpx.Client, workdir: Path) -> None:
    watcher_id = ok(client, "CreateWatcher", {"path": str(workdir)})["watcherId"]
    assert watcher_events(client, watcher_id) == []

    # every change is an event of its own, in order, as envd's inotify watcher reports them
    (workdir / "f.txt").write_text("one")
    (workdir / "sub").mkdir()
    assert watcher_events(client, watcher_id) == [("f.txt", "CREATE"), ("f.txt", "WRITE"), ("sub", "CREATE")]

    (workdir / "f.txt").write_text("two, longer")
    (workdir / "sub" / "inner").write_text("not seen: not recursive")
    assert set(watcher_events(client, watcher_id)) == {("f.txt", "WRITE")}

    (workdir / "f.txt").chmod(0o600)
    assert watcher_events(client, watcher_id) == [("f.txt", "CHMOD")]

    (workdir / "f.txt").rename(workdir / "g.txt")
    assert watcher_events(client, watcher_id) == [("f.txt", "RENAME"), ("g.txt", "CREATE")]

    (workdir / "g.txt").unlink()
    assert watcher_events(client, watcher_id) == [("g.txt", "REMOVE")]

    assert ok(client, "RemoveWatcher", {"watcherId": watcher_id}) == {}
    assert error(client, "GetWatcherEvents", {"watcherId": watcher_id})[0] == "not_found"


def test_recursive_watcher_names_are_relative_and_carry_entries(client: httpx.Client, workdir: Path) -> None:
    (workdir / "sub").mkdir()
    body = {"path": str(workdir), "recursive": True, "includeEntry": True}
    watcher_id = ok(client, "CreateWatcher", body)["watcherId"]
    (workdir / "sub" / "deep.txt").write_text("x")
    response = ok(client, "GetWatcherEvents", {"watcherId": watcher_id})
    created, written = response["events"]
    assert (created["name"], created["type"]) == ("sub/deep.txt", "EVENT_TYPE_CREATE")
    assert (written["name"], written["type"]) == ("sub/deep.txt", "EVENT_TYPE_WRITE")
    assert created["entry"]["path"] == str(workdir / "sub" / "deep.txt")
    ok(client, "RemoveWatcher", {"watcherId": watcher_id})


def test_watcher_errors(client: httpx.Client, workdir: Path) -> None:
    assert error(client, "CreateWatcher", {"path": str(workdir / "ghost")})[0] == "not_found"
    (workdir / "file").write_text("")
    assert error(client, "CreateWatcher", {"path": str(workdir / "file")})[0] == ("invalid_argument")
    assert error(client, "RemoveWatcher", {"watcherId": "w-unknown"})[0] == "not_found"


def read_envelopes(lines: Iterator[bytes]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Connect stream frames (flags, message) from a response's byte chunks."""
    buffer = b""
    for chunk in lines:
        buffer += chunk
        while len(buffer) >= 5:
            flags, size = struct.unpack(">BI", buffer[:5])
            if len(buffer) < 5 + size:
                break
            yield flags, json.loads(buffer[5 : 5 + size])
            buffer = buffer[5 + size :]


def test_watch_dir_streams_start_then_events(agent: AgentProcess, workdir: Path) -> None:
    body = json.dumps({"path": str(workdir)}).encode()
    request = struct.pack(">BI", 0, len(body)) + body
    headers = {"content-type": "application/connect+json", "connect-timeout-ms": "20000"}
    with (
        agent.client(timeout=30) as http,
        http.stream("POST", "/filesystem.Filesystem/WatchDir", content=request, headers=headers) as response,
    ):
        assert response.status_code == 200
        frames = read_envelopes(response.iter_raw())
        assert next(frames) == (0, {"start": {}})
        for index in range(3):  # the stream keeps reporting what each poll finds
            name = f"born{index}.txt"
            (workdir / name).write_text("x")
            for kind in ("EVENT_TYPE_CREATE", "EVENT_TYPE_WRITE"):
                flags, message = next(frames)  # bounded by the client's read timeout
                assert flags == 0
                parsed = filesystem_pb.WatchDirResponse.from_json(json.dumps(message))
                assert parsed.event is not None
                assert message == {"filesystem": {"name": name, "type": kind}}


def test_watch_dir_of_a_missing_directory_ends_with_not_found(agent: AgentProcess, workdir: Path) -> None:
    body = json.dumps({"path": str(workdir / "ghost")}).encode()
    headers = {"content-type": "application/connect+json", "connect-timeout-ms": "20000"}
    with agent.client(timeout=30) as http:
        response = http.post(
            "/filesystem.Filesystem/WatchDir",
            content=struct.pack(">BI", 0, len(body)) + body,
            headers=headers,
        )
    [(flags, message)] = list(read_envelopes(iter([response.content])))
    assert flags == 2
    assert message["error"]["code"] == "not_found"


# --- The SDK's own Filesystem client ------------------------------------------------------------


def test_sdk_filesystem_round_trip(sdk_files: Filesystem, workdir: Path) -> None:
    base = str(workdir)
    assert sdk_files.make_dir(f"{base}/dir/sub") is True
    assert sdk_files.make_dir(f"{base}/dir/sub") is False
    info = sdk_files.write(f"{base}/dir/a.txt", "alpha")
    assert (info.name, info.type, info.path) == ("a.txt", FileType.FILE, f"{base}/dir/a.txt")
    assert sdk_files.exists(f"{base}/dir/a.txt") is True
    assert sdk_files.exists(f"{base}/dir/nope") is False

    listed = sdk_files.list(f"{base}/dir", depth=2)
    assert [(e.name, e.type) for e in listed] == [("a.txt", FileType.FILE), ("sub", FileType.DIR)]
    got = sdk_files.get_info(f"{base}/dir/a.txt")
    assert (got.size, got.permissions) == (5, "-rw-r--r--")

    moved = sdk_files.rename(f"{base}/dir/a.txt", f"{base}/dir/b.txt")
    assert moved.path == f"{base}/dir/b.txt"
    assert sdk_files.read(f"{base}/dir/b.txt") == "alpha"
    sdk_files.remove(f"{base}/dir")
    assert sdk_files.exists(f"{base}/dir") is False


def test_sdk_filesystem_errors(sdk_files: Filesystem, workdir: Path) -> None:
    with pytest.raises(FileNotFoundException):
        sdk_files.list(str(workdir / "ghost"))
    with pytest.raises(FileNotFoundException):
        sdk_files.get_info(str(workdir / "ghost"))
    with pytest.raises(FileNotFoundException):
        sdk_files.remove(str(workdir / "ghost"))
    (workdir / "file").write_text("")
    with pytest.raises(InvalidArgumentException):
        sdk_files.list(str(workdir / "file"))


def test_sdk_watch_handle_gets_new_events(sdk_files: Filesystem, workdir: Path) -> None:
    handle = sdk_files.watch_dir(str(workdir), recursive=True, include_entry=True)
    sdk_files.write(str(workdir / "w" / "new.txt"), "data")
    events = handle.get_new_events()
    seen = {(event.name, event.type) for event in events}
    assert ("w", FilesystemEventType.CREATE) in seen
    assert ("w/new.txt", FilesystemEventType.CREATE) in seen
    created = next(event for event in events if event.name == "w/new.txt")
    assert created.entry is not None and created.entry.size == 4
    handle.stop()


def test_move_across_filesystems_copies_then_removes(tmp_path: Path) -> None:
    other = tmp_path / "agent" / "home" / "other"
    other.mkdir(parents=True)
    mount = 'mount -t tmpfs -o size=4m tmpfs "$0" && exec "$@"'
    wrap = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", mount, str(other)]
    with start_agent(tmp_path / "agent", wrap=wrap) as agent, agent.client() as client:
        home = agent.home
        (home / "file.txt").write_text("across")
        (home / "tree" / "sub").mkdir(parents=True)
        (home / "tree" / "sub" / "leaf").write_text("leaf")
        (home / "tree" / "link").symlink_to("sub/leaf")

        moved = ok(client, "Move", {"source": "file.txt", "destination": "other/file.txt"})
        assert moved["entry"]["size"] == "6"
        assert ok(client, "Move", {"source": "tree", "destination": "other/tree"})["entry"]["type"] == (
            "FILE_TYPE_DIRECTORY"
        )
        assert not (home / "file.txt").exists() and not (home / "tree").exists()
        listed = ok(client, "ListDir", {"path": "other", "depth": 3})["entries"]
        assert names(listed, home / "other") == [
            "file.txt",
            "tree",
            "tree/link",
            "tree/sub",
            "tree/sub/leaf",
        ]
        assert listed[2]["type"] == "FILE_TYPE_SYMLINK"  # copied as a link, not followed
