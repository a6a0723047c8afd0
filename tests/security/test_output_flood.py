"""A flood of output is cut at the sandbox's allowance and marked; sandboxd's memory stays bounded.

The gigabyte is only sent once a small flood has shown the cap in force: without it, the test's
own SDK client would have to hold the whole gigabyte.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from e2b_code_interpreter import Sandbox

from tests.procs import SandboxHostProcess
from tests.security.harness import assert_host_and_neighbour_answer, run
from tests.security.probes import jail_agent, vm_rss_kib

OUTPUT_BYTES = 100_000
LIMITED = {"e2bq.output_bytes": str(OUTPUT_BYTES)}
MARKER = "[e2bq: output truncated]"
# run_code marks the cut in its logs: in the stream as commands do, or in a note on stderr
CODE_MARKERS = (MARKER, "[output truncated: more than")
SLACK = 1024  # the marker and line ends after the cut
MB = 1024 * 1024
RSS_MARGIN_KIB = 150 * 1024  # generous: allocator noise, never the flood itself


def assert_capped(text: str) -> None:
    size = len(text.encode())
    assert size <= OUTPUT_BYTES + SLACK, f"{size} bytes came through"
    tail = text.rstrip()[-200:]
    assert tail.endswith(MARKER), tail


def require_cap(sandbox: Sandbox) -> None:
    probe = run(sandbox, f"head -c {10 * OUTPUT_BYTES} /dev/zero | tr '\\0' y")
    if len(probe.stdout) > OUTPUT_BYTES + SLACK:
        pytest.fail(f"e2bq.output_bytes={OUTPUT_BYTES} is not enforced: refusing to pull a gigabyte")


def test_a_command_past_the_output_cap_is_cut_and_marked(make_sandbox: Callable[..., Sandbox]) -> None:
    sandbox = make_sandbox(metadata=LIMITED)

    result = run(sandbox, f"head -c {3 * OUTPUT_BYTES} /dev/zero | tr '\\0' y; echo done >&2")

    assert result.exit_code == 0
    assert result.stdout[:1000] == "y" * 1000
    assert_capped(result.stdout)


def test_output_reaching_the_cap_exactly_and_then_more_is_still_marked(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    """The cut is marked however the output was chunked: here the first burst fills the allowance
    to the byte (the pause inside makes it arrive on its own), the rest comes after."""
    sandbox = make_sandbox(metadata=LIMITED)
    burst = (
        f"python -c \"import sys, time; sys.stdout.write('y' * {OUTPUT_BYTES}); sys.stdout.flush(); "
        "time.sleep(1); sys.stdout.write('z' * 10)\""
    )

    result = run(sandbox, burst)

    assert result.exit_code == 0
    assert "z" not in result.stdout
    assert_capped(result.stdout)


def test_a_gigabyte_of_stdout_finishes_capped_and_sandboxd_stays_small(
    make_sandbox: Callable[..., Sandbox], host: SandboxHostProcess, neighbour: Sandbox
) -> None:
    sandbox = make_sandbox(metadata=LIMITED)
    require_cap(sandbox)
    sandboxd_before = vm_rss_kib(host.proc.pid)

    result = run(sandbox, "yes | head -c 1G; echo finished >&2", timeout=240)

    assert result.exit_code == 0
    assert_capped(result.stdout)
    assert vm_rss_kib(host.proc.pid) - sandboxd_before < RSS_MARGIN_KIB
    # the sandbox's agent drained and dropped the flood rather than holding it
    assert vm_rss_kib(jail_agent(sandbox.sandbox_id)) < 300 * 1024
    assert run(sandbox, "echo next").stdout == "next\n"
    assert_host_and_neighbour_answer(host, neighbour)


def test_code_printing_past_the_output_cap_is_cut_and_marked(
    make_sandbox: Callable[..., Sandbox], host: SandboxHostProcess, neighbour: Sandbox
) -> None:
    sandbox = make_sandbox(metadata=LIMITED)
    require_cap(sandbox)

    execution = sandbox.run_code("for _ in range(100):\n    print('y' * (1 << 20))\n6 * 7", timeout=240)

    assert execution.error is None, execution.error
    assert execution.text == "42"  # the cell ran to its end
    stdout = "".join(execution.logs.stdout)
    size = len(stdout.encode())
    assert size <= OUTPUT_BYTES + SLACK, f"{size} bytes came through"
    tail = stdout[-300:] + "".join(execution.logs.stderr)[-300:]
    assert any(marker in tail for marker in CODE_MARKERS), tail[-300:]
    assert sandbox.run_code("print('next')").logs.stdout == ["next\n"]
    assert_host_and_neighbour_answer(host, neighbour)


def test_a_large_download_streams_through_sandboxd_without_growing_it(
    make_sandbox: Callable[..., Sandbox], host: SandboxHostProcess
) -> None:
    """Files are not output: a 512 MiB (sparse) file comes out whole, streamed, not buffered."""
    sandbox = make_sandbox()
    run(sandbox, "truncate -s 512M /home/user/sparse.bin")
    sandboxd_before = vm_rss_kib(host.proc.pid)

    received = 0
    for chunk in sandbox.files.read("/home/user/sparse.bin", format="stream"):
        received += len(chunk)

    assert received == 512 * MB
    assert vm_rss_kib(host.proc.pid) - sandboxd_before < RSS_MARGIN_KIB
