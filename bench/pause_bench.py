"""sandboxd's pause and resume through the unmodified SDK, beside their floors in the same run.

Resume is measured from the ``connect`` that thaws a paused sandbox to the first answer of its
envd (``files.exists``), and to its first ``run_code``. Baselines: the same ``connect`` plus
``files.exists`` on a sandbox that is running (what a resume adds is the difference), and a raw
freezer thaw of a cgroup of this process's own holding one sleeping process (the kernel's part).

Filesystem-only pause (``mode="filesystem"``) in the same run: the pause (every process ended, the
disk unmounted and kept), and the resume (a fresh jail, agent and kernel on that disk) to the first
envd answer and to the first ``run_code``, beside a cold create (no warm pool) to the same answers;
and a pause right after 64 MiB were written (the unmount writes them out).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import time
from pathlib import Path

from common import header, host, ms, pct, row, summary
from targets import Figures

from e2bq.sandboxd.jail.freezer import Freezer


def raw_thaws(n: int) -> tuple[list[float], list[float]]:
    """Freeze then thaw a cgroup holding one ``sleep``, n times: (freeze times, thaw times)."""
    v2 = Path("/sys/fs/cgroup/cgroup.controllers").exists()
    group = Path("/sys/fs/cgroup" if v2 else "/sys/fs/cgroup/freezer") / f"e2bq-bench-{os.getpid()}"
    group.mkdir()
    sleeper = subprocess.Popen(["sleep", "600"])
    freezes, thaws = [], []
    try:
        (group / "cgroup.procs").write_text(str(sleeper.pid))
        freezer = Freezer(group, v2=v2)
        for _ in range(n):
            start = time.perf_counter()
            freezer.freeze()
            freezes.append(time.perf_counter() - start)
            start = time.perf_counter()
            freezer.thaw()
            thaws.append(time.perf_counter() - start)
    finally:
        sleeper.kill()
        sleeper.wait()
        with contextlib.suppress(OSError):
            group.rmdir()
    return freezes, thaws


def cold_creates(n: int) -> tuple[list[float], list[float]]:
    """Create → first envd answer, and create → first run_code answer, n times each."""
    from e2b_code_interpreter import Sandbox

    to_envd, to_code = [], []
    for _ in range(n):
        start = time.perf_counter()
        sandbox = Sandbox.create(timeout=120)
        sandbox.files.exists("/tmp")
        to_envd.append(time.perf_counter() - start)
        sandbox.kill()
        start = time.perf_counter()
        sandbox = Sandbox.create(timeout=120)
        assert sandbox.run_code("1 + 1").text == "2"
        to_code.append(time.perf_counter() - start)
        sandbox.kill()
    return to_envd, to_code


def filesystem_rounds(n: int) -> dict[str, list[float]]:
    """Filesystem pause, resume to envd, resume to run_code; and a pause after writing 64 MiB."""
    from e2b_code_interpreter import Sandbox

    times: dict[str, list[float]] = {"pause": [], "envd": [], "code": [], "pause_64": []}
    sandbox = Sandbox.create(timeout=600)
    sandbox.files.write("/home/user/kept.txt", "kept")
    for round_ in range(n):
        start = time.perf_counter()
        sandbox.pause(mode="filesystem")
        times["pause"].append(time.perf_counter() - start)
        start = time.perf_counter()
        Sandbox.connect(sandbox.sandbox_id)
        sandbox.files.exists("/tmp")
        times["envd"].append(time.perf_counter() - start)

        sandbox.pause(mode="filesystem")
        start = time.perf_counter()
        Sandbox.connect(sandbox.sandbox_id)
        assert sandbox.run_code("len(open('/home/user/kept.txt').read())").text == "4"
        times["code"].append(time.perf_counter() - start)

        sandbox.commands.run(f"head -c 64M /dev/urandom > /home/user/blob{round_ % 4}")
        start = time.perf_counter()
        sandbox.pause(mode="filesystem")
        times["pause_64"].append(time.perf_counter() - start)
        Sandbox.connect(sandbox.sandbox_id)
    sandbox.kill()
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30, help="pause/resume rounds")
    parser.add_argument("--fs-rounds", type=int, default=10, help="filesystem pause/resume rounds")
    parser.add_argument("--json", default=None, help="write the figures to this file (merged)")
    args = parser.parse_args()
    figures = Figures()

    from e2b_code_interpreter import Sandbox

    with host():
        header("sandboxd: pause and resume with memory kept (unmodified e2b SDK → local host)")
        sandbox = Sandbox.create(timeout=600)
        sandbox.run_code("kept = 1")
        sandbox.files.exists("/tmp")
        pauses, resume_envd, resume_code, running = [], [], [], []
        for _ in range(args.rounds):
            start = time.perf_counter()
            Sandbox.connect(sandbox.sandbox_id)
            sandbox.files.exists("/tmp")
            running.append(time.perf_counter() - start)

            start = time.perf_counter()
            sandbox.pause()
            pauses.append(time.perf_counter() - start)
            start = time.perf_counter()
            Sandbox.connect(sandbox.sandbox_id)
            sandbox.files.exists("/tmp")
            resume_envd.append(time.perf_counter() - start)

            sandbox.pause()
            start = time.perf_counter()
            Sandbox.connect(sandbox.sandbox_id)
            assert sandbox.run_code("kept").text == "1"
            resume_code.append(time.perf_counter() - start)
        sandbox.kill()
        freezes, thaws = raw_thaws(args.rounds)

        row("pause (POST pause → 204)", summary(pauses), f"raw freezer freeze: p50 {ms(pct(freezes, 50))}")
        row(
            "resume: connect of a paused sandbox → first envd answer",
            summary(resume_envd),
            f"connect of a running one → envd answer: p50 {ms(pct(running, 50))}; "
            f"raw freezer thaw: p50 {ms(pct(thaws, 50))}",
        )
        row("resume: connect → first run_code answer", summary(resume_code), "")
        figures.record("resume_to_envd_p50", pct(resume_envd, 50))
        figures.record("connect_running_to_envd_p50", pct(running, 50))
        figures.record("raw_thaw_p50", pct(thaws, 50))

        header("sandboxd: pause and resume with the filesystem only, beside a cold create")
        fs = filesystem_rounds(args.fs_rounds)
        create_envd, create_code = cold_creates(args.fs_rounds)
        row("filesystem pause (POST pause memory=false → 204)", summary(fs["pause"]),
            f"memory pause: p50 {ms(pct(pauses, 50))}")
        row("filesystem pause after writing 64 MiB", summary(fs["pause_64"]), "")
        row("resume from disk: connect → first envd answer", summary(fs["envd"]),
            f"cold create → envd answer: p50 {ms(pct(create_envd, 50))}; "
            f"memory resume: p50 {ms(pct(resume_envd, 50))}")
        row("resume from disk: connect → first run_code answer", summary(fs["code"]),
            f"cold create → run_code answer: p50 {ms(pct(create_code, 50))}; "
            f"memory resume: p50 {ms(pct(resume_code, 50))}")
        figures.record("fs_pause_p50", pct(fs["pause"], 50))
        figures.record("fs_resume_to_envd_p50", pct(fs["envd"], 50))
        figures.record("fs_resume_to_code_p50", pct(fs["code"], 50))
        figures.record("cold_create_to_code_p50", pct(create_code, 50))
    figures.dump(args.json)


if __name__ == "__main__":
    main()
