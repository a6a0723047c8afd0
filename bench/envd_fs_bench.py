"""What file metadata, inotify watches and metrics sampling cost, each beside its baseline.

- listing 1,000 files: EntryInfo with ``metadata`` (a ``listxattr`` per entry) vs without;
- one look of a recursive watcher at a 10,000-file tree after one change: inotify vs the snapshot
  walk it replaced (still the fallback);
- one metrics sample of a sandbox's cgroup and disk (as root: a cgroup made for the run).

    python bench/envd_fs_bench.py [--files 1000] [--tree 10000] [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from e2bq.sandboxd.agent.envd import entries, metadata
from e2bq.sandboxd.agent.envd.inotify import InotifyWatcher
from e2bq.sandboxd.agent.envd.watch import DirWatcher
from e2bq.sandboxd.jail import usage
from e2bq.sandboxd.jail.cgroups import Cgroups
from e2bq.sandboxd.jail.limits import Limits


def median_ms(action: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def listing(folder: Path, runs: int) -> None:
    def walk() -> None:
        owners = entries.Owners()
        for item in os.scandir(folder):
            entries.entry_info(Path(item.path), item.stat(follow_symlinks=False), owners)

    with_metadata = median_ms(walk, runs)
    real_read = metadata.read
    metadata.read = lambda _path: None  # type: ignore[assignment]  # the baseline: no xattr look
    try:
        without = median_ms(walk, runs)
    finally:
        metadata.read = real_read  # type: ignore[assignment]
    count = len(os.listdir(folder))
    print(f"list {count} entries: {with_metadata:.2f} ms with metadata, {without:.2f} ms without "
          f"(x{with_metadata / without:.2f})")


def watching(tree: Path, runs: int) -> None:
    snapshot = DirWatcher(tree, recursive=True, include_entry=False)
    kernel = InotifyWatcher(tree, recursive=True, include_entry=False)
    target = tree / "d0" / "f0"

    def touch_then(look: Callable[[], object]) -> Callable[[], object]:
        def step() -> object:
            target.write_text(str(time.time()))
            return look()
        return step

    snap_ms = median_ms(touch_then(snapshot.events), runs)
    kernel_ms = median_ms(touch_then(kernel.events), runs)
    kernel.close()
    print(f"watch look at {sum(1 for _ in tree.rglob('*'))} entries after a write: inotify "
          f"{kernel_ms:.3f} ms, snapshot walk {snap_ms:.2f} ms (x{snap_ms / kernel_ms:.0f})")


def sampling(folder: Path, runs: int) -> None:
    if os.geteuid() != 0:
        print("metrics sample: skipped (needs root for a cgroup)")
        return
    cgroups = Cgroups(f"e2bq-bench-{os.getpid()}")
    if not cgroups.available:
        print("metrics sample: skipped (no cgroups)")
        return
    try:
        cgroups.create("ibench", Limits())
        for data, what in ((Path("/"), "a disk image (statvfs)"), (folder, "a plain folder (walked)")):
            took = median_ms(
                lambda data=data: usage.read(cgroups, "ibench", data=data, memory_mb=1024, disk_mb=2048), runs
            )
            print(f"metrics sample of one sandbox on {what}: {took * 1000:.0f} us (every 5 s)")
    finally:
        cgroups.remove("ibench")
        cgroups.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--tree", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        flat = Path(tmp) / "flat"
        flat.mkdir()
        for index in range(args.files):
            path = flat / f"f{index}"
            path.write_text("x")
            if index % 2:
                os.setxattr(path, "user.e2b.tag", b"v")
        listing(flat, args.runs)
        tree = Path(tmp) / "tree"
        for index in range(args.tree):
            folder = tree / f"d{index // 100}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"f{index % 100}").write_text("x")
        watching(tree, args.runs)
        sampling(flat, args.runs)


if __name__ == "__main__":
    main()
