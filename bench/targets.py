"""The hot path's targets, each a ratio or bound against a baseline measured in the same run.

Every benchmark records its figures (``Figures.record``) under the names used here; ``--json PATH``
writes them out. ``bench/check.py`` (``make bench-check``) runs the short benchmarks and fails when
a figure falls past its target. A target not met yet has a second bound, ``holds``: the level it is
at today (README, "Benchmarks") with room for the machine's noise, so a change that makes it worse
still fails the check. A target whose figures were not measured in the run fails too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


class Figures:
    """Named figures of one benchmark run (seconds, counts, ratios, MiB)."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {}

    def record(self, name: str, value: float) -> float:
        self.values[name] = value
        return value

    def dump(self, path: str | None) -> None:
        if path:
            merged = json.loads(Path(path).read_text()) if Path(path).exists() else {}
            merged.update(self.values)
            Path(path).write_text(json.dumps(merged, indent=2, sort_keys=True))


@dataclass(frozen=True)
class Target:
    name: str
    goal: str
    needs: tuple[str, ...]
    value: Callable[[dict[str, float]], str]
    met: Callable[[dict[str, float]], bool]
    holds: Callable[[dict[str, float]], bool] | None = None  # today's level, while not met
    today: str = ""


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


TARGETS = (
    Target(
        'run_code("1+1"), SDK → sandboxd, above the kernel reached straight',
        "≤ +1.0 ms",
        ("sdk_run_code_p50", "kernel_direct_p50"),
        lambda f: "+" + _ms(f["sdk_run_code_p50"] - f["kernel_direct_p50"]),
        lambda f: f["sdk_run_code_p50"] - f["kernel_direct_p50"] <= 0.0010,
        lambda f: f["sdk_run_code_p50"] - f["kernel_direct_p50"] <= 0.0030,
        "≤ +3.0 ms (+2.0 ms measured)",
    ),
    Target(
        'commands.run("true"), SDK → sandboxd, above a fork-exec of true',
        "≤ +1.5 ms",
        ("sdk_command_p50", "fork_exec_p50"),
        lambda f: "+" + _ms(f["sdk_command_p50"] - f["fork_exec_p50"]),
        lambda f: f["sdk_command_p50"] - f["fork_exec_p50"] <= 0.0015,
        lambda f: f["sdk_command_p50"] - f["fork_exec_p50"] <= 0.0035,
        "≤ +3.5 ms (+2.7 ms measured)",
    ),
    Target(
        'run_python_code("1+1") through the queue, above the SDK call',
        "≤ one Celery no-op round trip + 1 ms",
        ("queue_run_code_p50", "sdk_run_code_p50", "celery_noop_p50"),
        lambda f: (
            "+"
            + _ms(f["queue_run_code_p50"] - f["sdk_run_code_p50"])
            + f" (no-op round trip {_ms(f['celery_noop_p50'])})"
        ),
        lambda f: f["queue_run_code_p50"] - f["sdk_run_code_p50"] <= f["celery_noop_p50"] + 0.0010,
        lambda f: f["queue_run_code_p50"] - f["sdk_run_code_p50"] <= f["celery_noop_p50"] + 0.0045,
        "≤ no-op + 4.5 ms (no-op + 3.3 ms measured)",
    ),
    Target(
        "background jobs (run_code 1+1) per second",
        "≥ 60 % of Celery no-op tasks/s and ≥ 200/s",
        ("jobs_per_s", "noop_tasks_per_s", "sdk_run_code_per_s"),
        lambda f: (
            f"{f['jobs_per_s']:.0f}/s = {100 * f['jobs_per_s'] / f['noop_tasks_per_s']:.0f} % "
            f"of {f['noop_tasks_per_s']:.0f}/s"
        ),
        lambda f: f["jobs_per_s"] >= 0.6 * f["noop_tasks_per_s"] and f["jobs_per_s"] >= 200,
        lambda f: f["jobs_per_s"] >= 0.4 * f["sdk_run_code_per_s"],
        "≥ 40 % of the SDK alone on the same kernel (49-55 % measured since code jobs run as keyed "
        "executions, to be re-attached; 72 % through the SDK's /execute in the same run)",
    ),
    Target(
        "cold create, p50",
        "≤ 120 ms",
        ("cold_create_p50",),
        lambda f: _ms(f["cold_create_p50"]),
        lambda f: f["cold_create_p50"] <= 0.120,
    ),
    Target(
        "creates per second, 20 at a time",
        "≥ 10/s",
        ("creates_per_s",),
        lambda f: f"{f['creates_per_s']:.1f}/s",
        lambda f: f["creates_per_s"] >= 10,
    ),
    Target(
        "50 concurrent creates with a warm pool, p95",
        "≤ 60 ms",
        ("warm_burst_p95",),
        lambda f: _ms(f["warm_burst_p95"]),
        lambda f: f["warm_burst_p95"] <= 0.060,
    ),
    Target(
        "idle memory per sandbox (PSS: agent, kernel, share of the fork server)",
        "≤ 40 MiB",
        ("idle_pss_mib",),
        lambda f: f"{f['idle_pss_mib']:.0f} MiB",
        lambda f: f["idle_pss_mib"] <= 40,
    ),
)


def report(figures: dict[str, float]) -> bool:
    """Print every target against the figures; True when each is met, or holds today's level."""
    print("\n### targets\n\n| figure | measured | target | met | today's level (while not met) |")
    print("|---|---|---|---|---|")
    passed = True
    for target in TARGETS:
        if not all(name in figures for name in target.needs):
            print(f"| {target.name} | not measured | {target.goal} | no | |")
            passed = False
            continue
        met = target.met(figures)
        holds = target.holds is not None and target.holds(figures)
        level = "" if target.holds is None else f"{target.today}: {'holds' if holds else 'WORSE'}"
        passed &= met or holds
        answer = "yes" if met else "no"
        print(f"| {target.name} | {target.value(figures)} | {target.goal} | {answer} | {level} |")
    return passed


if __name__ == "__main__":
    import sys

    report(json.loads(Path(sys.argv[1]).read_text()))  # `make bench` shows it; bench-check judges
