"""examples/example_usage.py — the API reference's example — runs as written against a real stack."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.procs import WorkerProcess

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "example_usage.py"


def test_the_reference_example_runs(
    stack_env: dict[str, str], queue_worker: WorkerProcess, tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        cwd=tmp_path,
        env={**os.environ, **stack_env},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    printed = "\n".join(lines)
    assert lines[0].startswith("Server URL: http://127.0.0.1:"), printed
    assert "run_python_code: success" in lines, printed
    assert any(line.startswith("chart.png saved locally: success, ") for line in lines), printed
    assert any(line.endswith("-> 200, lists chart.png: True") for line in lines), printed
    assert any(line.startswith("background job ended: done;") for line in lines), printed
    assert "kill server job: cancelled" in lines, printed
    assert "shutdown: success" in lines, printed
    assert (tmp_path / "chart.png").read_bytes().startswith(b"\x89PNG")
