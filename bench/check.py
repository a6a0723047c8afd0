"""``make bench-check``: the short benchmarks, then every hot-path target; exits 1 when one is missed.

Timings on a shared machine move from run to run: this is not part of ``make test``. Run it before
and after a change to the hot path (client, workers, sandboxd, the agent) and compare; the targets
are those of ``targets.py``, each a bound against a baseline measured in the same run.

    python bench/check.py [--keep FIGURES.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from targets import report

HERE = Path(__file__).resolve().parent
SHORT = (
    ("layers_bench.py", "--runs", "100"),
    ("queue_bench.py", "--jobs", "200", "--kills", "1", "--fanout", "1"),
    ("sandboxd_bench.py", "--creates", "8", "--many", "60", "--burst", "50"),
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keep", default=None, help="also write the figures to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        figures_file = Path(tmp) / "figures.json"
        for script, *options in SHORT:
            subprocess.run(
                [sys.executable, str(HERE / script), *options, "--json", str(figures_file)], check=True
            )
        figures = json.loads(figures_file.read_text())
    if args.keep:
        Path(args.keep).write_text(json.dumps(figures, indent=2, sort_keys=True))
    sys.exit(0 if report(figures) else 1)


if __name__ == "__main__":
    main()
