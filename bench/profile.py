"""Flame graphs of the hot path: py-spy on every process one call passes through.

Starts the embedded default (private Redis, one sandboxd, one threads-pool worker), then, while a
client loops over ``run_python_code("1+1")`` and ``run_command("true")`` for ``--seconds``, records
py-spy flame graphs of the worker, sandboxd, the sandbox's agent and its kernel, and of this client.
Writes ``<name>.svg`` (and a ``speedscope`` JSON with ``--format speedscope``) under ``--out``:

    make profile                       # writes under $TMPDIR/e2bq-profile
    python bench/profile.py --out DIR --seconds 20 [--format speedscope]

py-spy reads other processes' memory: run it as root (as ``make`` on the development machine is).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common  # noqa: F401 - puts this checkout's e2bq first on sys.path

from e2bq.embedded import embedded


def jail_pids(state_dir: Path, sandbox_id: str) -> dict[str, int]:
    """The agent's and the default kernel's host PIDs, found by their command lines."""
    found: dict[str, int] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "from agent.server import main" in cmdline and "bwrap" not in cmdline.split()[0]:
            found.setdefault("agent", int(proc.name))
        elif "ipykernel_launcher" in cmdline:
            found.setdefault("kernel", int(proc.name))
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "e2bq-profile"))
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--rate", type=int, default=500, help="samples per second")
    parser.add_argument("--format", default="flamegraph", choices=["flamegraph", "speedscope", "raw"])
    args = parser.parse_args()
    pyspy = shutil.which("py-spy", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    if pyspy is None:
        sys.exit("py-spy is not installed: `make install` puts it in .venv (it is in the dev extra)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    suffix = {"flamegraph": "svg", "speedscope": "json", "raw": "txt"}[args.format]

    with embedded(worker_args=("--pool", "threads", "--concurrency", "8")) as stack:
        os.environ.update(stack.env)
        from e2bq import E2BToolkit, SandboxManager

        toolkit = E2BToolkit(SandboxManager(default_timeout=900), auto_create_default=True)
        sid = toolkit.list_managed_sandboxes()["default_sandbox_id"]
        toolkit.run_python_code("1+1")
        targets = {"worker": stack.workers[0].pid, "sandboxd": stack.host.pid, "client": os.getpid()}
        targets.update(jail_pids(stack.host.state_dir, sid))
        recorders = [
            subprocess.Popen(
                [
                    pyspy,
                    "record",
                    "--pid",
                    str(pid),
                    "--rate",
                    str(args.rate),
                    "--duration",
                    str(args.seconds),
                    "--subprocesses",
                    "--format",
                    args.format,
                    "--output",
                    str(out / f"{name}.{suffix}"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for name, pid in targets.items()
        ]
        deadline = time.monotonic() + args.seconds
        calls = 0
        while time.monotonic() < deadline:
            toolkit.run_python_code("1+1")
            toolkit.run_command("true")
            calls += 2
        for recorder in recorders:
            _, err = recorder.communicate(timeout=args.seconds + 60)
            if recorder.returncode:
                print(f"py-spy failed: {err.decode()[-500:]}", file=sys.stderr)
        toolkit.shutdown_all_sandboxes()
    print(f"{calls} calls profiled over {args.seconds} s; flame graphs:")
    for name in targets:
        print(f"  {name}: {out / f'{name}.{suffix}'}")


if __name__ == "__main__":
    main()
