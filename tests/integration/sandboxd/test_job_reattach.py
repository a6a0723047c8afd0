"""What lets a job outlive its worker, at the sandbox host: a keyed execution keeps running when its
client goes and answers the same key again with all its lines, running its code once; a command
carrying E2BQ_JOB_ID starts once per id, and its end is kept for a late re-attach."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Iterator

import httpx
from e2b import CommandExitException, CommandHandle
from e2b_code_interpreter import AsyncSandbox, Sandbox

from tests.procs import wait_for

PORT = 49999


def _url_and_headers(sandbox: Sandbox) -> tuple[str, dict[str, str]]:
    url = sandbox.connection_config.get_sandbox_url(sandbox.sandbox_id, sandbox.sandbox_domain, port=PORT)
    headers = {"E2b-Sandbox-Id": sandbox.sandbox_id, "E2b-Sandbox-Port": str(PORT)}
    headers["X-Access-Token"] = str(sandbox._envd_access_token)  # what the SDK sends with /execute
    return url, headers


def _lines(sandbox: Sandbox, body: dict[str, object]) -> list[dict[str, object]]:
    url, headers = _url_and_headers(sandbox)
    with httpx.stream("POST", f"{url}/e2bq/executions", json=body, headers=headers, timeout=60) as answer:
        assert answer.status_code == 200, answer.read()
        return [json.loads(line) for line in answer.iter_lines() if line]


def _open(sandbox: Sandbox, body: dict[str, object]) -> contextlib.AbstractContextManager[httpx.Response]:
    url, headers = _url_and_headers(sandbox)
    return httpx.stream("POST", f"{url}/e2bq/executions", json=body, headers=headers, timeout=60)


def _until(answer: httpx.Response, text: str, lines: Iterator[str] | None = None) -> bool:
    """Read the answer's lines until one holds ``text``."""
    return any(text in line for line in (lines or answer.iter_lines()))


def _read(sandbox: Sandbox, path: str) -> list[str]:
    return sandbox.commands.run(f"cat {path} 2>/dev/null || true").stdout.split()


def test_a_keyed_execution_outlives_its_client_and_runs_once(sandbox: Sandbox) -> None:
    key = uuid.uuid4().hex
    code = (
        "import time\nprint('begun', flush=True)\ntime.sleep(2)\n"
        "open('/home/user/ran', 'a').write('x\\n')\n6 * 7"
    )
    with _open(sandbox, {"key": key, "code": code}) as first:
        assert first.status_code == 200
        assert _until(first, "begun")  # then the client goes away, mid-cell

    again = _lines(sandbox, {"key": key, "code": "open('/home/user/ran', 'a').write('again\\n')"})

    assert [line["text"] for line in again if line["type"] == "stdout"] == ["begun\n"]
    assert any(line.get("type") == "result" and line.get("text") == "42" for line in again), again
    assert again[-1]["type"] == "end_of_execution"
    assert _read(sandbox, "~/ran") == ["x"]  # the first body's code, once; the second body's never
    later = _lines(sandbox, {"key": key, "code": "", "from": len(again) - 1})
    assert [line["type"] for line in later] == ["end_of_execution"]


def test_deleting_a_keyed_execution_interrupts_it(sandbox: Sandbox) -> None:
    key = uuid.uuid4().hex
    url, headers = _url_and_headers(sandbox)
    code = "import time\nprint('sleeping', flush=True)\ntime.sleep(600)\nwoke = True"
    with _open(sandbox, {"key": key, "code": code}) as first:
        lines = first.iter_lines()
        assert _until(first, "sleeping", lines)
        assert httpx.delete(f"{url}/e2bq/executions/{key}", headers=headers).status_code == 204
        rest = [json.loads(line) for line in lines if line]
    assert rest[-1]["type"] == "end_of_execution"
    assert sandbox.run_code("'woke' in globals()").text == "False"  # the kernel is free again
    assert httpx.delete(f"{url}/e2bq/executions/no-such-key", headers=headers).status_code == 404


def test_a_keyed_execution_refuses_bad_requests(sandbox: Sandbox) -> None:
    url, headers = _url_and_headers(sandbox)
    bad: list[dict[str, object]] = [{"code": "1"}, {"key": "", "code": "1"}, {"key": "k" * 300, "code": "1"}]
    for body in [*bad, {"key": "k", "code": 1}]:
        answer = httpx.post(f"{url}/e2bq/executions", json=body, headers=headers)
        assert answer.status_code == 400, (body, answer.text)
    tokenless = {name: value for name, value in headers.items() if name != "X-Access-Token"}
    answer = httpx.post(f"{url}/e2bq/executions", json={"key": "k", "code": "1"}, headers=tokenless)
    assert answer.status_code == 401  # the sandbox's access token is required, as for /execute


def test_a_job_command_starts_once_per_job_id_and_keeps_its_end(sandbox: Sandbox) -> None:
    marker = {"E2BQ_JOB_ID": uuid.uuid4().hex}
    first = sandbox.commands.run("echo once >> ~/started; sleep 1; exit 4", background=True, envs=marker)
    second = sandbox.commands.run("echo twice >> ~/started", background=True, envs=marker)
    assert second.pid == first.pid  # the same process, followed again
    wait_for(lambda: first.pid not in {p.pid for p in sandbox.commands.list()}, 30, "the command to end")

    late = sandbox.commands.connect(first.pid)  # it ended while nobody followed it: its end is kept
    assert _exit_code(late) == 4
    assert _exit_code(sandbox.commands.run("echo thrice >> ~/started", background=True, envs=marker)) == 4
    assert _read(sandbox, "~/started") == ["once"]
    # Without the marker, a command is E2B's as ever: each start runs it.
    sandbox.commands.run("echo plain >> ~/plain")
    sandbox.commands.run("echo plain >> ~/plain")
    assert _read(sandbox, "~/plain") == ["plain", "plain"]


def _exit_code(handle: CommandHandle) -> int:
    try:
        return handle.wait().exit_code
    except CommandExitException as exc:
        return exc.exit_code


def test_a_job_command_whose_client_left_while_it_started_is_still_started_once(sdk_env: object) -> None:
    """A worker killed while its command starts: the process must still be the job's, found by the
    takeover's start, never started again."""

    async def scenario() -> list[str]:
        sandbox = await AsyncSandbox.create()
        try:
            markers = [{"E2BQ_JOB_ID": uuid.uuid4().hex} for _ in range(20)]
            for index, marker in enumerate(markers):
                command = f"echo j{index} >> ~/abandoned"
                with contextlib.suppress(Exception):  # the client gives up at once, mid-start
                    await asyncio.wait_for(sandbox.commands.run(command, background=True, envs=marker), 0.002)
            for index, marker in enumerate(markers):
                command = f"echo j{index} >> ~/abandoned"
                handle = await sandbox.commands.run(command, background=True, envs=marker)
                await handle.wait()
            read = await sandbox.commands.run("cat ~/abandoned")
            return sorted(read.stdout.split())
        finally:
            await sandbox.kill()

    assert asyncio.run(scenario()) == sorted(f"j{index}" for index in range(20))
