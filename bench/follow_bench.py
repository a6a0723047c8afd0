"""`e2bq job ID --follow`: how long after a line is printed in the sandbox the follower prints it.

Against the embedded default (``toolkit_stack``), all in this run: a background command prints its
clock (``date +%s.%N``) every 0.1 s, 40 times, after a 2 s pause (so the follower's own start is
not counted); the lag of a line is the moment the reader got it minus the time in it (the jail
shares the host's clock). Measured for ``python -m e2bq.cli job ID --follow`` in a subprocess, and
for a baseline that polls ``get_job_output`` every 20 ms; rounds alternate.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from common import toolkit_stack

from e2bq import E2BToolkit

COMMAND = "sleep 2; for i in $(seq 40); do date +%s.%N; sleep 0.1; done"


def follow_cli(toolkit: E2BToolkit) -> list[float]:
    job_id = toolkit.run_command_background(COMMAND)["job_id"]
    follower = subprocess.Popen(
        [sys.executable, "-m", "e2bq.cli", "job", job_id, "--follow"], stdout=subprocess.PIPE, text=True
    )
    assert follower.stdout is not None
    lags = [time.time() - float(line) for line in follower.stdout]
    follower.wait()
    return lags


def follow_poll(toolkit: E2BToolkit) -> list[float]:
    job_id = toolkit.run_command_background(COMMAND)["job_id"]
    lags: list[float] = []
    offset, partial = 0, ""
    while True:
        page = toolkit.get_job_output(job_id, "stdout", offset)
        assert page["status"] == "success", page
        now = time.time()
        *lines, partial = (partial + page["data"]).split("\n")
        lags += [now - float(line) for line in lines if line]
        offset = page["next_offset"]
        if page["complete"]:
            return lags
        time.sleep(0.02)


def main() -> None:
    with toolkit_stack() as (_, toolkit, _):
        for round_ in range(3):
            for name, follow in (("e2bq job --follow", follow_cli), ("poll every 20 ms", follow_poll)):
                lags = sorted(follow(toolkit))
                median, p90 = statistics.median(lags), lags[int(len(lags) * 0.9)]
                print(
                    f"round {round_} {name:18} lines={len(lags)} median={median * 1000:.0f} ms "
                    f"p90={p90 * 1000:.0f} ms max={lags[-1] * 1000:.0f} ms"
                )


if __name__ == "__main__":
    main()
