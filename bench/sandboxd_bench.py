"""sandboxd through the unmodified SDK: making sandboxes and what an idle one costs.

Cold creates one after another (beside a bare ``bwrap ... true``, the floor of a jail start, and
followed by the new sandbox's first ``run_code``, so a create cannot look fast by leaving its work to
the first call), creates 20 at a time, the memory of an idle sandbox whose kernel is up, and creates
from the warm pool: one at a time, and in bursts of 50. The way of one call through the layers is
``layers_bench.py``.
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
from targets import Figures


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


def fork_server_kib() -> int:
    """PSS of sandboxd's fork server (0 when it runs none): the pages its children share with it."""
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and b"agent.forkserver.server" in (proc / "cmdline").read_bytes():
                for line in (proc / "smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        return int(line.split()[1])
        except OSError:
            continue
    return 0


def pool_metric(name: str) -> int:
    for line in httpx.get(os.environ["E2B_API_URL"] + "/metrics").text.splitlines():
        if line.startswith(name + " "):
            return int(float(line.split()[1]))
    raise RuntimeError(f"sandboxd's /metrics has no {name}")


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
    parser.add_argument("--creates", type=int, default=20, help="cold creates, one after another")
    parser.add_argument("--many", type=int, default=200, help="sandboxes made 20 at a time")
    parser.add_argument("--burst", type=int, default=50, help="concurrent creates on a warm pool")
    parser.add_argument("--pool", type=int, default=2, help="warm pool for the sequential warm creates")
    parser.add_argument("--idle", type=int, default=20, help="idle sandboxes whose memory is measured")
    parser.add_argument("--json", default=None, help="write the figures to this file (merged)")
    args = parser.parse_args()
    figures = Figures()

    from e2b_code_interpreter import Sandbox

    with host("--max-sandboxes", str(max(args.many, args.burst) + 10)) as running:
        header("sandboxd: making sandboxes (unmodified e2b SDK → local host)")
        Sandbox.create(timeout=60).kill()  # warm the SDK's imports and connection pool
        creates, first_code = [], []
        for _ in range(args.creates):
            start = time.perf_counter()
            sbx = Sandbox.create(timeout=60)
            creates.append(time.perf_counter() - start)
            sbx.run_code("1+1")
            first_code.append(time.perf_counter() - start)
            sbx.kill()
        bwrap = timed(bare_bwrap, args.creates)
        row("cold create (no pool)", summary(creates), f"bare bwrap true: p50 {ms(pct(bwrap, 50))}")
        row('cold create, then its first run_code("1+1")', summary(first_code), "")
        figures.record("cold_create_p50", pct(creates, 50))
        figures.record("create_then_code_p50", pct(first_code, 50))

        start = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            many = list(pool.map(lambda _: Sandbox.create(timeout=120), range(args.many)))
        wall = time.perf_counter() - start
        rate = figures.record("creates_per_s", args.many / wall)
        row(f"{args.many} creates, 20 at a time (no pool)", f"{rate:.1f}/s ({wall:.1f} s wall)", "")
        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            list(pool.map(lambda s: s.kill(), many))

        fleet = [Sandbox.create(timeout=300) for _ in range(args.idle)]
        for sbx in fleet:
            sbx.run_code("1+1")  # kernel up, as after first use
        one = jail_memory_kib(running.state_dir, fleet[0].sandbox_id) / 1024
        shared = fork_server_kib() / 1024
        total = sum(jail_memory_kib(running.state_dir, sbx.sandbox_id) for sbx in fleet) / 1024 + shared
        mib = figures.record("idle_pss_mib", total / len(fleet))
        row(
            f"idle memory per sandbox over {args.idle} idle ones (PSS: agents, kernels, fork server)",
            f"{mib:.0f} MiB",
            f"one of them alone: {one:.0f} MiB, beside the fork server's {shared:.0f} MiB they share",
        )
        for sbx in fleet:
            sbx.kill()

    pool_max = str(args.burst + 10)
    with host(
        "--max-sandboxes",
        str(args.burst * 2 + 10),
        "--warm-pool",
        str(args.pool),
        "--warm-pool-max",
        pool_max,
    ):
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
        burst = burst_creates(Sandbox, args.burst, rounds=3)
        row(
            f"{args.burst} concurrent creates, pool following demand (floor {args.pool}, at most {pool_max})",
            summary(burst),
            "the 3rd of 3 bursts; before each, the pool refilled to the size sandboxd chose",
        )
        figures.record("warm_burst_p95", pct(burst, 95))
    figures.dump(args.json)


def burst_creates(sandbox: type, n: int, rounds: int) -> list[float]:
    """Timings of the last of ``rounds`` bursts of ``n`` concurrent creates. The first burst shows
    sandboxd the demand its pool should meet; before each, the pool has refilled to the size sandboxd
    chose (``e2bq_sandboxd_pool_target``): bursts closer together than a refill takes would ask for
    more creates per second than the host makes, which no pool can serve."""

    def one(_: int) -> tuple[float, object]:
        start = time.perf_counter()
        sbx = sandbox.create(timeout=60)  # type: ignore[attr-defined]
        return time.perf_counter() - start, sbx

    timings: list[float] = []
    for _ in range(rounds):
        time.sleep(1)
        wait_for_pool(pool_metric("e2bq_sandboxd_pool_target"))
        with concurrent.futures.ThreadPoolExecutor(n) as pool:
            made = list(pool.map(one, range(n)))
        timings = [t for t, _ in made]
        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            list(pool.map(lambda m: m[1].kill(), made))  # type: ignore[attr-defined]
    return timings


if __name__ == "__main__":
    main()
