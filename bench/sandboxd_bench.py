"""sandboxd through the unmodified SDK: create, run_code, commands, memory — each against a baseline.

Baselines, measured in the same run: a bare ``bwrap ... true`` (the floor of a jail start), a Jupyter
kernel executing ``1+1`` through jupyter_client with no HTTP in between, and ``subprocess.run(["true"])``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx
from common import header, host, ms, pct, row, summary


def timed(fn: object, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        samples.append(time.perf_counter() - start)
    return samples


def bare_bwrap() -> None:
    subprocess.run(
        [
            shutil.which("bwrap") or "bwrap",
            "--unshare-all",
            "--ro-bind",
            "/usr",
            "/usr",
            "--symlink",
            "usr/bin",
            "/bin",
            "--symlink",
            "usr/lib",
            "/lib",
            "--symlink",
            "usr/lib64",
            "/lib64",
            "--die-with-parent",
            "/bin/true",
        ],
        check=True,
    )


def kernel_baseline(n: int) -> list[float]:
    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(kernel_name="python3")
    try:
        client.execute_interactive("1+1", timeout=30, output_hook=lambda m: None)
        return timed(
            lambda: client.execute_interactive("1+1", timeout=30, output_hook=lambda m: None), n
        )
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def jail_memory_kib(state_dir: Path, sandbox_id: str) -> int:
    """PSS of every process whose command line or cwd belongs to the sandbox's jail."""
    total = 0
    marker = str(state_dir / sandbox_id)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker not in (proc / "cmdline").read_text() and not _in_jail_of(proc, marker):
                continue
            for line in (proc / "smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def _in_jail_of(proc: Path, marker: str) -> bool:
    """A process inside the jail: its bwrap ancestor's command line names the sandbox's folder."""
    try:
        pid = int(proc.name)
        for _ in range(6):
            stat = Path(f"/proc/{pid}/stat").read_text()
            pid = int(stat.rsplit(")", 1)[1].split()[1])
            if pid <= 1:
                return False
            if marker in Path(f"/proc/{pid}/cmdline").read_text():
                return True
    except OSError:
        return False
    return False


def wait_for_pool(ready: int) -> None:
    """Until sandboxd's metrics say the warm pool holds ``ready`` sandboxes."""
    url = os.environ["E2B_API_URL"] + "/metrics"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for line in httpx.get(url).text.splitlines():
            if line.startswith("e2bq_sandboxd_pool_ready ") and float(line.split()[1]) >= ready:
                return
        time.sleep(0.05)
    raise TimeoutError(f"the warm pool did not fill to {ready} in 60 s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--creates", type=int, default=20)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--concurrent", type=int, default=20)
    parser.add_argument("--pool", type=int, default=2)
    args = parser.parse_args()

    from e2b_code_interpreter import Sandbox

    with host("--max-sandboxes", "200") as running:
        header("sandboxd (unmodified e2b SDK → local host)")
        Sandbox.create(timeout=60).kill()  # warm the SDK's imports and connection pool
        creates = []
        for _ in range(args.creates):
            start = time.perf_counter()
            sbx = Sandbox.create(timeout=60)
            creates.append(time.perf_counter() - start)
            sbx.kill()
        bwrap = timed(bare_bwrap, args.creates)
        row("cold create (no pool)", summary(creates), f"bare bwrap true: p50 {ms(pct(bwrap, 50))}")

        start = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(args.concurrent) as pool:
            many = list(pool.map(lambda _: Sandbox.create(timeout=60), range(args.concurrent)))
        wall = time.perf_counter() - start
        row(f"{args.concurrent} concurrent creates", f"wall {wall:.2f} s", "")
        for sbx in many:
            sbx.kill()

        sbx = Sandbox.create(timeout=600)
        sbx.run_code("1+1")
        code = timed(lambda: sbx.run_code("1+1"), args.runs)
        kernel = kernel_baseline(args.runs)
        row(
            'run_code("1+1")',
            summary(code),
            f"jupyter_client direct: p50 {ms(pct(kernel, 50))} p99 {ms(pct(kernel, 99))}",
        )

        sbx.commands.run("true")
        cmds = timed(lambda: sbx.commands.run("true"), args.runs // 3)
        local = timed(lambda: subprocess.run(["true"], check=True), args.runs // 3)
        row(
            'commands.run("true")', summary(cmds), f"subprocess.run(true): p50 {ms(pct(local, 50))}"
        )

        idle = Sandbox.create(timeout=60)
        idle.run_code("1+1")  # kernel up, as after first use
        kib = jail_memory_kib(running.state_dir, idle.sandbox_id)
        row("idle memory per sandbox (PSS, agent + kernel)", f"{kib / 1024:.0f} MiB", "")
        idle.kill()
        sbx.kill()

    with host("--max-sandboxes", "200", "--warm-pool", str(args.pool)):
        wait_for_pool(args.pool)
        Sandbox.create(timeout=60).kill()  # as above: the first request to a fresh host is not measured
        warm = []
        for _ in range(args.creates):
            wait_for_pool(args.pool)
            start = time.perf_counter()
            sbx = Sandbox.create(timeout=60)
            warm.append(time.perf_counter() - start)
            sbx.kill()
        row(
            f"create from the warm pool ({args.pool} ready)",
            summary(warm),
            f"cold create above: p50 {ms(pct(creates, 50))}",
        )


if __name__ == "__main__":
    main()
