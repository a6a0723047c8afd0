"""sandboxd's fork and snapshots through the unmodified SDK, beside their baselines in the same run.

A parent sandbox holds 100 MB of files (100 files of 1 MB, random, so nothing compresses or
deduplicates). Measured: ``fork(10)`` (wall time from the call to ten running forks) and the host
disk it adds (``du -x`` of sandboxd's state folder before and after: the images' allocated blocks
and the layers, not what is mounted on them); ``create_snapshot`` and a create from it. Baselines:
a cold ``Sandbox.create``; ``cp -a`` of the parent's 100 MB on the host; and the other way to copy
a sandbox's disk, a sparse copy (``cp --sparse=always``) of its ext4 image, ten times.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from common import header, host, pct, row
from targets import Figures

FILES, FILE_MB, FORKS = 100, 1, 10
FILL = (
    f"python -c \"import os; [open(f'/home/user/data/f{{i}}', 'wb').write(os.urandom({FILE_MB} << 20)) "
    f"for i in range({FILES})]\""
)


def du_bytes(folder: Path) -> int:
    """Blocks allocated under ``folder`` on its own file system, once what the sandboxes' disk
    images hold in the loop devices' page cache has reached the image files."""
    subprocess.run(["sync"], check=True)
    out = subprocess.run(["du", "-sx", "--block-size=1", str(folder)], capture_output=True, text=True)
    return int(out.stdout.split()[0])


def mb(n: float) -> str:
    return f"{n / (1 << 20):.0f} MB"


def s(seconds: float) -> str:
    return f"{seconds:.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3, help="fork(10) rounds")
    parser.add_argument("--json", default=None, help="write the figures to this file (merged)")
    args = parser.parse_args()
    figures = Figures()

    from e2b_code_interpreter import Sandbox

    with host("--max-sandboxes", "40") as running:
        header(f"sandboxd: fork({FORKS}) and snapshots of a sandbox holding {FILES * FILE_MB} MB")
        state = running.state_dir
        creates: list[float] = []

        parent = Sandbox.create(timeout=900)
        parent.commands.run("mkdir -p /home/user/data && " + FILL, timeout=300)
        data = state / parent.sandbox_id / "data" / "home" / "data"
        image = next((state / parent.sandbox_id).glob("disk.*.img"))

        copies, copy_disk = [], 0
        for _ in range(args.rounds):
            with tempfile.TemporaryDirectory(dir=state) as target:
                start = time.perf_counter()
                subprocess.run(["cp", "-a", str(data), f"{target}/copy"], check=True)
                copies.append(time.perf_counter() - start)
                copy_disk = du_bytes(Path(target))

        subprocess.run(["sync"], check=True)  # the image file holds what its file system holds
        with tempfile.TemporaryDirectory(dir=state) as target:
            start = time.perf_counter()
            for i in range(FORKS):
                subprocess.run(["cp", "--sparse=always", str(image), f"{target}/{i}.img"], check=True)
            sparse_time, sparse_disk = time.perf_counter() - start, du_bytes(Path(target))

        for _ in range(5):
            start = time.perf_counter()
            Sandbox.create(timeout=60).kill()
            creates.append(time.perf_counter() - start)
        cold = pct(creates, 50)
        walls, extra = [], []
        for _ in range(args.rounds):
            before = du_bytes(state)
            start = time.perf_counter()
            forks = parent.fork(count=FORKS, timeout=300)
            walls.append(time.perf_counter() - start)
            extra.append(du_bytes(state) - before)
            children = [f for f in forks if isinstance(f, Sandbox)]
            assert len(children) == FORKS, forks
            assert children[-1].commands.run("ls /home/user/data | wc -l").stdout.strip() == str(FILES)
            for child in children:
                child.kill()

        start = time.perf_counter()
        snapshot = parent.create_snapshot(name="bench")
        snap_time = time.perf_counter() - start
        from_snap = []
        for _ in range(5):  # interleaved with cold creates: the same load on both
            start = time.perf_counter()
            Sandbox.create(template=snapshot.snapshot_id, timeout=60).kill()
            from_snap.append(time.perf_counter() - start)
            start = time.perf_counter()
            Sandbox.create(timeout=60).kill()
            creates.append(time.perf_counter() - start)
        Sandbox.delete_snapshot(snapshot.snapshot_id)
        parent.kill()

        row(
            f"`fork({FORKS})`, {FILES * FILE_MB} MB of files: wall",
            f"p50 {s(pct(walls, 50))} (min {s(min(walls))}, n={len(walls)})",
            f"a cold `Sandbox.create`: p50 {s(cold)} "
            f"({FORKS} of them one after another ≈ {s(FORKS * cold)}); "
            f"`cp -a` of the 100 MB: {s(statistics.median(copies))}",
        )
        row(
            f"`fork({FORKS})`: extra host disk",
            mb(statistics.median(extra)),
            f"`cp -a` of the 100 MB: {mb(copy_disk)}; "
            f"{FORKS} sparse copies of the parent's image: {mb(sparse_disk)} in {s(sparse_time)}",
        )
        row("`create_snapshot()`", s(snap_time), f"`cp -a` of the 100 MB: {s(statistics.median(copies))}")
        row(
            "`Sandbox.create(template=<snapshot>)` (create and kill)",
            f"p50 {s(pct(from_snap, 50))}",
            f"a cold `Sandbox.create` (and kill): p50 {s(pct(creates, 50))}",
        )
        figures.record("fork10_wall_p50", pct(walls, 50))
        figures.record("fork10_extra_disk_bytes", statistics.median(extra))
        figures.record("cold_create_p50_fork_bench", pct(creates, 50))
    figures.dump(args.json)


if __name__ == "__main__":
    main()
