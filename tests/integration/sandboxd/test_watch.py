"""``watch_dir`` as E2B's envd serves it: every change an event of its own (inotify), entry info on
request, recursive watches that take in folders made after the watch began; sync and async SDK."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from e2b import FileNotFoundException, FilesystemEvent, FilesystemEventType, FileType, SandboxException
from e2b_code_interpreter import AsyncSandbox, Sandbox

from tests.procs import SandboxHostProcess

CREATE, WRITE, CHMOD = FilesystemEventType.CREATE, FilesystemEventType.WRITE, FilesystemEventType.CHMOD
REMOVE, RENAME = FilesystemEventType.REMOVE, FilesystemEventType.RENAME


def kinds(events: list[FilesystemEvent]) -> list[tuple[FilesystemEventType, str]]:
    return [(event.type, event.name) for event in events]


def test_a_new_file_is_create_chmod_write_as_envd_reports_it(sandbox: Sandbox) -> None:
    sandbox.files.make_dir("watched")
    handle = sandbox.files.watch_dir("watched")
    sandbox.files.write("watched/f.txt", "content")
    assert kinds(handle.get_new_events()) == [(CREATE, "f.txt"), (CHMOD, "f.txt"), (WRITE, "f.txt")]
    sandbox.files.write("watched/f.txt", "new content")
    assert (WRITE, "f.txt") in kinds(handle.get_new_events())
    handle.stop()


def test_changes_made_by_commands_are_each_reported_in_order(sandbox: Sandbox) -> None:
    sandbox.files.make_dir("cmd")
    handle = sandbox.files.watch_dir("cmd")
    sandbox.commands.run("cd cmd && echo a > a && chmod 600 a && mv a b && rm b && mkdir d")
    assert kinds(handle.get_new_events()) == [
        (CREATE, "a"),
        (WRITE, "a"),
        (CHMOD, "a"),
        (RENAME, "a"),
        (CREATE, "b"),
        (REMOVE, "b"),
        (CREATE, "d"),
    ]
    handle.stop()


def test_events_carry_the_entry_when_asked(sandbox: Sandbox) -> None:
    sandbox.files.make_dir("entries")
    sandbox.files.write("entries/e.txt", "old")
    handle = sandbox.files.watch_dir("entries", include_entry=True)
    sandbox.files.write("entries/e.txt", "newer", metadata={"tag": "t"})
    written = next(event for event in handle.get_new_events() if event.type == WRITE)
    assert written.entry is not None
    assert (written.entry.name, written.entry.path) == ("e.txt", "/home/user/entries/e.txt")
    entry = written.entry
    assert (entry.type, entry.size, entry.metadata) == (FileType.FILE, 5, {"tag": "t"})
    sandbox.files.remove("entries/e.txt")
    [removed] = handle.get_new_events()
    assert (removed.type, removed.entry) == (REMOVE, None)  # gone: envd has nothing to describe either
    handle.stop()


def test_recursive_watch_names_are_relative_and_see_nested_files(sandbox: Sandbox) -> None:
    sandbox.files.make_dir("tree/nested")
    handle = sandbox.files.watch_dir("tree", recursive=True)
    sandbox.files.write("tree/nested/n.txt", "n")
    events = handle.get_new_events()
    assert len(events) == 3
    assert (events[0].type, events[0].name) == (CREATE, "nested/n.txt")
    handle.stop()


def test_a_folder_made_after_the_watch_began_is_watched_too(sandbox: Sandbox) -> None:
    sandbox.files.make_dir("grow")
    handle = sandbox.files.watch_dir("grow", recursive=True)
    sandbox.files.make_dir("grow/later")
    sandbox.files.write("grow/later/file.txt", "x")
    sandbox.commands.run("mkdir -p grow/later/deep/er && echo y > grow/later/deep/er/z")
    seen = kinds(handle.get_new_events())
    assert (CREATE, "later") in seen
    assert (WRITE, "later/file.txt") in seen
    assert (CREATE, "later/deep/er/z") in seen
    sandbox.files.remove("grow/later/deep/er/z")
    assert kinds(handle.get_new_events()) == [(REMOVE, "later/deep/er/z")]
    handle.stop()


def test_a_watch_that_is_not_recursive_does_not_see_into_folders(sandbox: Sandbox) -> None:
    sandbox.files.make_dir("flat/sub")
    handle = sandbox.files.watch_dir("flat")
    sandbox.files.write("flat/sub/hidden.txt", "x")
    sandbox.files.write("flat/top.txt", "x")
    assert {name for _, name in kinds(handle.get_new_events())} == {"top.txt"}
    handle.stop()


def test_watching_what_is_not_a_folder_fails_as_envd_does(sandbox: Sandbox) -> None:
    with pytest.raises(FileNotFoundException):
        sandbox.files.watch_dir("no-such-folder")
    sandbox.files.write("plain.txt", "x")
    with pytest.raises(SandboxException):
        sandbox.files.watch_dir("plain.txt")


async def until(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the event did not come"
        await asyncio.sleep(0.05)


def test_async_watch_streams_events_of_folders_made_later(sdk_env: SandboxHostProcess) -> None:
    async def scenario() -> list[tuple[FilesystemEventType, str, FileType | None]]:
        sandbox = await AsyncSandbox.create(timeout=120)
        got: list[tuple[FilesystemEventType, str, FileType | None]] = []
        try:
            await sandbox.files.make_dir("stream")
            handle = await sandbox.files.watch_dir(
                "stream",
                lambda event: got.append((event.type, event.name, event.entry and event.entry.type)),
                recursive=True,
                include_entry=True,
            )
            await sandbox.files.make_dir("stream/n")
            await sandbox.files.write("stream/n/f.txt", "x")
            await until(lambda: (CREATE, "n/f.txt", FileType.FILE) in got)
            await sandbox.commands.run("echo y >> stream/n/f.txt; rm stream/n/f.txt")
            await until(lambda: any(kind == REMOVE for kind, _, _ in got))
            await handle.stop()
            return got
        finally:
            await sandbox.kill()

    got = asyncio.run(scenario())
    assert got[0] == (CREATE, "n", FileType.DIR)
    # the append's entry may already be gone by the time envd looks: only its kind is certain
    assert [(kind, name) for kind, name, _ in got[-2:]] == [(WRITE, "n/f.txt"), (REMOVE, "n/f.txt")]
    assert got[-1][2] is None
