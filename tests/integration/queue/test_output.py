"""get_job_output: a job's whole stdout and stderr, paged by byte offset while it runs and after."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from e2bq import E2BToolkit, SandboxManager, Settings
from e2bq.stores.jobs import JobStore
from e2bq.stores.output import cut_marker
from tests.procs import wait_for, worker

CAP = 1024 * 1024


def ended(toolkit: E2BToolkit, job_id: str, timeout: float = 120) -> Any:
    return wait_for(
        lambda: (s := toolkit.get_job_status(job_id))["status"] != "running" and s,
        timeout,
        f"job {job_id} to end",
    )


def read_all(toolkit: E2BToolkit, job_id: str, stream: str = "stdout", limit: int = 64 * 1024) -> Any:
    """The stream read page after page from 0 to its current end: (text, last page)."""
    parts, offset = [], 0
    while True:
        page = toolkit.get_job_output(job_id, stream=stream, offset=offset, limit=limit)
        assert page["status"] == "success", page
        assert (
            page["offset"] == offset and page["next_offset"] - offset == len(page["data"].encode()) <= limit
        )
        parts.append(page["data"])
        if page["next_offset"] == page["size"]:
            return "".join(parts), page
        offset = page["next_offset"]


def numbers(first: int, last: int) -> str:
    return "".join(f"{n}\n" for n in range(first, last + 1))


def test_a_command_jobs_streams_read_back_byte_for_byte_while_it_runs_and_after(toolkit: E2BToolkit) -> None:
    gate = f"/home/user/gate-{uuid.uuid4().hex[:6]}"
    command = (
        "seq 1 100000; for i in $(seq 1 50); do echo warn $i >&2; done; "
        f"while [ ! -e {gate} ]; do sleep 0.02; done; seq 100001 300000; echo last >&2"
    )
    job_id = toolkit.run_command_background(command)["job_id"]
    first = numbers(1, 100000)

    wait_for(
        lambda: toolkit.get_job_output(job_id, limit=4)["size"] >= len(first),
        60,
        "the first part to be written",
    )
    assert toolkit.get_job_status(job_id)["status"] == "running"
    early, page = read_all(toolkit, job_id, limit=50_000)
    assert early == first and page["complete"] is False
    toolkit.run_command(f"touch {gate}")
    assert ended(toolkit, job_id)["status"] == "done"

    stdout, last = read_all(toolkit, job_id, limit=50_000)
    stderr, last_err = read_all(toolkit, job_id, "stderr", limit=100)
    assert stdout == numbers(1, 300000)  # 1.9 MB
    assert (last["size"], last["complete"], last["truncated"]) == (len(stdout), True, False)
    assert stderr == "".join(f"warn {i}\n" for i in range(1, 51)) + "last\n"
    assert last_err["complete"] is True
    json.dumps(last)
    assert toolkit.get_job_status(job_id)["output"].endswith("300000\nlast\n")  # the short tail as before


def test_multi_byte_characters_survive_every_page_boundary(toolkit: E2BToolkit) -> None:
    text = "aé€😀\n" * 100_000  # 1.1 MB of 1- to 4-byte characters
    job_id = toolkit.run_command_background(
        "python3 -c \"import sys; sys.stdout.write('aé€😀\\n' * 100000)\""
    )["job_id"]
    assert ended(toolkit, job_id)["status"] == "done"

    encoded = text.encode()
    for offset in range(40):  # pages of 4 bytes from every offset: each holds whole characters only
        page = toolkit.get_job_output(job_id, offset=offset, limit=4)
        assert page["status"] == "success" and page["next_offset"] > offset
        assert page["data"] == encoded[page["offset"] : page["next_offset"]].decode()
    for limit in (1001, 65_537):
        assert read_all(toolkit, job_id, limit=limit)[0] == text


def test_a_code_jobs_prints_are_its_stdout(toolkit: E2BToolkit) -> None:
    code = "import sys\nfor i in range(100000):\n    print(i)\nprint('done', file=sys.stderr)\n"
    job_id = toolkit.run_python_code_background(code)["job_id"]
    assert ended(toolkit, job_id)["status"] == "done"

    stdout, last = read_all(toolkit, job_id, limit=30_000)

    assert stdout == numbers(0, 99999)
    assert last["complete"] is True
    assert read_all(toolkit, job_id, "stderr")[0] == "done\n"


def test_every_key_of_a_jobs_output_expires_with_the_job(
    toolkit: E2BToolkit, client_env: dict[str, str]
) -> None:
    job_id = toolkit.run_command_background("echo out; echo err >&2")["job_id"]
    assert ended(toolkit, job_id)["status"] == "done"

    raw = redis.Redis.from_url(client_env["E2BQ_REDIS_URL"], decode_responses=True)
    keys = sorted(raw.keys(f"e2bq:job:{job_id}:*"))
    for part in ("output", "stdout", "stderr", "streams"):
        assert f"e2bq:job:{job_id}:{part}" in keys
    for key in keys:
        assert 0 < raw.ttl(key) <= toolkit.settings.job_ttl, key


@pytest.fixture
def capped(toolkit: E2BToolkit, client_env: dict[str, str], tmp_path: Path) -> Iterator[E2BToolkit]:
    """A toolkit whose jobs go to a worker that keeps 1 MiB of each job's output."""
    queue = f"{client_env['E2BQ_QUEUE']}-capped"
    env = {**client_env, "E2BQ_QUEUE": queue, "E2BQ_JOB_OUTPUT_MAX_BYTES": str(CAP)}
    with worker(tmp_path, env):
        yield E2BToolkit(SandboxManager(settings=Settings.from_env(queue=queue)), auto_create_default=False)


@pytest.mark.parametrize(
    "start",
    [
        lambda kit, sid: kit.run_command_background("seq 1 400000; echo gone >&2", sandbox_id=sid),
        lambda kit, sid: kit.run_python_code_background(
            "import sys\nfor i in range(1, 400001):\n    print(i)\nprint('gone', file=sys.stderr)\n",
            sandbox_id=sid,
        ),
    ],
    ids=["command", "code"],
)
def test_past_the_cap_the_output_is_cut_with_a_marker(
    toolkit: E2BToolkit, capped: E2BToolkit, start: Any
) -> None:
    sandbox_id = toolkit.list_managed_sandboxes()["default_sandbox_id"]
    job_id = start(capped, sandbox_id)["job_id"]
    assert ended(capped, job_id)["status"] == "done"

    stdout, last = read_all(capped, job_id, limit=100_000)
    stderr, _ = read_all(capped, job_id, "stderr")

    kept = numbers(1, 400000).encode()[:CAP].decode()  # 2.7 MB printed
    assert stdout == kept + "\n" + cut_marker(CAP)
    assert cut_marker(CAP) == "[e2bq: output cut at 1 MiB; E2BQ_JOB_OUTPUT_MAX_BYTES sets the cap]\n"
    assert (last["truncated"], last["complete"]) == (True, True)
    assert stderr == cut_marker(CAP)
    assert capped.get_job_status(job_id)["output"].endswith("400000\ngone\n")  # the tail follows on


def test_bad_requests_are_errors_that_say_what_to_change(toolkit: E2BToolkit) -> None:
    job_id = toolkit.run_command_background("echo hi")["job_id"]
    assert ended(toolkit, job_id)["status"] == "done"

    cases = {
        "stream must be 'stdout' or 'stderr'": {"stream": "both"},
        "offset must be a whole number of bytes >= 0": {"offset": -1},
        "offset must be a whole": {"offset": "10"},
        "limit must be a whole number of bytes from 4": {"limit": 0},
        "limit must be a whole": {"limit": 2.5},
        "past the end of the job's stdout": {"offset": 100},
    }
    for says, arguments in cases.items():
        answer = toolkit.get_job_output(job_id, **arguments)
        assert answer["status"] == "error" and says in answer["message"], (arguments, answer)

    unknown = toolkit.get_job_output("no-such-job")
    assert unknown["status"] == "error" and "expired (E2BQ_JOB_TTL) or it never existed" in unknown["message"]
    assert toolkit.get_job_output(None)["status"] == "error"  # type: ignore[arg-type]


def test_an_expired_job_and_a_map_job_have_no_output(toolkit: E2BToolkit) -> None:
    short = JobStore(Settings.from_env(job_ttl=1))
    expired = uuid.uuid4().hex
    short.create(expired, "command", "sandbox", toolkit.manager.namespace)
    wait_for(lambda: short.get(expired) is None, 10, "the job record to expire")
    answer = toolkit.get_job_output(expired)
    assert answer["status"] == "error" and "expired" in answer["message"]

    mapped = uuid.uuid4().hex
    toolkit.jobs.create(mapped, "map", "", toolkit.manager.namespace)
    answer = toolkit.get_job_output(mapped)
    assert answer["status"] == "error" and "batch map" in answer["message"]
