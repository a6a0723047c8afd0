"""Limits per sandbox: the host's defaults apply to every sandbox, a sandbox may ask for less at
create (``e2bq.*`` metadata, which the unmodified SDK sends), and asking for more is refused.

This module's sandboxd runs with non-default limits, so each check also shows that the host-wide
options are the ones in force.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from e2b import SandboxException
from e2b_code_interpreter import Sandbox

from tests.procs import SandboxHostProcess
from tests.security.harness import fork_probe, run

HOST = {"memory_mb": 512, "pids": 128, "cpu": 1.0, "disk_mb": 256, "open_files": 512, "output_bytes": 65536}
MARKER = "[e2bq: output truncated]"

OPEN_FILES_PROBE = """
import json, resource
opened, failure = [], None
for _ in range(5000):
    try:
        opened.append(open("/dev/null"))
    except OSError as exc:
        failure = exc.errno
        break
print(json.dumps({"soft": resource.getrlimit(resource.RLIMIT_NOFILE)[0], "opened": len(opened),
                  "errno": failure}))
"""
MEMORY_PROBE = "python -c \"x = b'\\x01' * ({mb} << 20); print('survived')\""


@pytest.fixture(scope="module")
def host_args() -> tuple[str, ...]:
    return (
        *("--memory-mb", str(HOST["memory_mb"]), "--pids", str(HOST["pids"])),
        *("--cpu", str(HOST["cpu"]), "--disk-mb", str(HOST["disk_mb"])),
        *("--open-files", str(HOST["open_files"]), "--output-bytes", str(HOST["output_bytes"])),
    )


def open_files(sandbox: Sandbox) -> dict[str, int | None]:
    sandbox.files.write("/tmp/open_files.py", OPEN_FILES_PROBE)
    outcome: dict[str, int | None] = json.loads(run(sandbox, "python /tmp/open_files.py").stdout)
    return outcome


def output_length(sandbox: Sandbox, produced: int) -> tuple[int, str]:
    stdout = run(sandbox, f"head -c {produced} /dev/zero | tr '\\0' y").stdout
    return len(stdout.encode()), stdout[-100:]


# -- the host's defaults -----------------------------------------------------------------------


def test_the_hosts_open_files_limit_applies(make_sandbox: Callable[..., Sandbox]) -> None:
    outcome = open_files(make_sandbox())
    assert outcome["soft"] == HOST["open_files"]
    assert outcome["errno"] == 24  # EMFILE: "Too many open files"
    assert outcome["opened"] is not None and outcome["opened"] < HOST["open_files"]


def test_the_hosts_process_limit_applies(make_sandbox: Callable[..., Sandbox]) -> None:
    outcome = fork_probe(make_sandbox())
    assert outcome["errno"] == 11  # EAGAIN
    assert outcome["started"] is not None and outcome["started"] < HOST["pids"]


def test_the_hosts_memory_limit_applies(make_sandbox: Callable[..., Sandbox]) -> None:
    sandbox = make_sandbox()
    assert "survived" in run(sandbox, MEMORY_PROBE.format(mb=HOST["memory_mb"] // 4)).stdout
    beyond = run(sandbox, MEMORY_PROBE.format(mb=2 * HOST["memory_mb"]))
    assert "survived" not in beyond.stdout
    assert beyond.exit_code != 0


def test_the_hosts_disk_limit_applies(make_sandbox: Callable[..., Sandbox]) -> None:
    sandbox = make_sandbox()
    result = run(sandbox, f"dd if=/dev/zero of=/home/user/fill bs=1M count={2 * HOST['disk_mb']}")
    assert "No space left on device" in result.stderr
    written = int(run(sandbox, "stat -c %s /home/user/fill").stdout)
    assert written <= HOST["disk_mb"] * 1024 * 1024


def test_the_hosts_output_cap_applies(make_sandbox: Callable[..., Sandbox]) -> None:
    length, tail = output_length(make_sandbox(), 4 * HOST["output_bytes"])
    assert length <= HOST["output_bytes"] + 1024, f"{length} bytes came through"
    assert tail.rstrip().endswith(MARKER), tail[-100:]


# -- asking for less ---------------------------------------------------------------------------


def test_a_sandbox_may_ask_for_lower_limits(make_sandbox: Callable[..., Sandbox]) -> None:
    sandbox = make_sandbox(
        metadata={
            "e2bq.memory_mb": "256",
            "e2bq.pids": "64",
            "e2bq.cpu": "0.5",
            "e2bq.disk_mb": "64",
            "e2bq.open_files": "256",
            "e2bq.output_bytes": "10000",
        }
    )

    assert open_files(sandbox)["soft"] == 256
    started = fork_probe(sandbox)["started"]
    assert started is not None and started < 64
    assert "No space left on device" in run(sandbox, "dd if=/dev/zero of=/tmp/fill bs=1M count=128").stderr
    run(sandbox, "rm -f /tmp/fill")
    length, _ = output_length(sandbox, 100_000)
    assert length <= 10_000 + 1024, f"{length} bytes came through"
    assert "survived" not in run(sandbox, MEMORY_PROBE.format(mb=384)).stdout
    # a neighbour without overrides keeps the host's defaults
    assert open_files(make_sandbox())["soft"] == HOST["open_files"]


# -- asking for more ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "asked",
    [
        {"e2bq.memory_mb": "4096"},
        {"e2bq.pids": "100000"},
        {"e2bq.cpu": "64"},
        {"e2bq.disk_mb": "1000000"},
        {"e2bq.open_files": "1048576"},
        {"e2bq.output_bytes": str(1 << 40)},
        {"e2bq.memory_mb": "lots"},
        {"e2bq.pids": "-1"},
        {"e2bq.memory_mb": "0"},
    ],
    ids=lambda asked: "=".join(next(iter(asked.items()))),
)
def test_asking_for_more_than_the_host_allows_is_refused(
    asked: dict[str, str], host: SandboxHostProcess, make_sandbox: Callable[..., Sandbox]
) -> None:
    with httpx.Client() as client:
        before = client.get(host.url + "/health").json()["sandboxes"]

    with pytest.raises(SandboxException) as refused:
        make_sandbox(metadata=asked)

    assert "400" in str(refused.value)
    with httpx.Client() as client:
        assert client.get(host.url + "/health").json()["sandboxes"] == before  # none was left behind
