"""The Procfile under honcho: every port and key comes from .env, the API's example runs against it end
to end, and stopping honcho leaves no process of it behind."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest

from tests.procs import API_KEY, free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
PROCFILE = ROOT / "Procfile"
EXAMPLE = ROOT / "examples" / "example_usage.py"
FLOWER_LOGIN = ("e2bq", "procfile-test")
WORKER_READY = re.compile(r"^\S+ worker\.1\s+\|.* ready\.$", re.MULTILINE)

Process = tuple[int, str]  # pid and start time: a pid reused by another process is not the same one


def _stat(pid: int) -> list[str] | None:
    with contextlib.suppress(OSError):
        text = Path(f"/proc/{pid}/stat").read_text()
        # Fields after the command name, which is in parentheses and may hold anything.
        return text[text.rindex(")") + 2 :].split()
    return None


def descendants(root: int) -> set[Process]:
    """Every live process below ``root`` in the process tree, found through /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))):
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: set[Process] = set()
    pending = [root]
    while pending:
        for child in children.get(pending.pop(), []):
            if (fields := _stat(child)) and fields[0] != "Z":
                found.add((child, fields[19]))
                pending.append(child)
    return found


def alive(processes: set[Process]) -> set[Process]:
    return {(pid, start) for pid, start in processes if (f := _stat(pid)) and f[0] != "Z" and f[19] == start}


def procfile_env(state_dir: Path) -> dict[str, str]:
    """What a developer's .env holds, with free ports: the Procfile reads every port and key from it."""
    redis, sandboxd, flower = free_port(), free_port(), free_port()
    return {
        "REDIS_PORT": str(redis),
        "SANDBOXD_PORT": str(sandboxd),
        "FLOWER_PORT": str(flower),
        "E2BQ_REDIS_URL": f"redis://127.0.0.1:{redis}/0",
        "E2BQ_SANDBOXD_API_KEY": API_KEY,
        "E2BQ_SANDBOXD_STATE_DIR": str(state_dir),
        "E2B_API_KEY": API_KEY,
        "E2B_API_URL": f"http://127.0.0.1:{sandboxd}",
        "E2B_SANDBOX_URL": f"http://127.0.0.1:{sandboxd}",
        "FLOWER_BASIC_AUTH": ":".join(FLOWER_LOGIN),
        "E2BQ_WORKER_GRACE": "3",
    }


def test_procfile_names_its_processes_and_takes_ports_from_the_environment() -> None:
    processes = dict(line.split(":", 1) for line in PROCFILE.read_text().splitlines() if line.strip())

    assert set(processes) == {"redis", "sandboxd", "worker", "flower"}
    assert "${REDIS_PORT" in processes["redis"]
    assert "${SANDBOXD_PORT" in processes["sandboxd"]
    assert "${FLOWER_PORT" in processes["flower"]
    assert "--api-key" not in processes["sandboxd"], "the key comes from E2BQ_SANDBOXD_API_KEY"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_honcho_runs_the_procfile_and_the_example_works_against_it(tmp_path: Path) -> None:
    # Jails are set up as an unprivileged uid, which cannot enter pytest's private tmp folders.
    state_dir = Path(tempfile.mkdtemp(prefix="e2bq-test-procfile-"))
    env = procfile_env(state_dir)
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{name}={value}\n" for name, value in env.items()))
    log = tmp_path / "honcho.log"
    # The Procfile says `python`: this interpreter, the one e2bq is installed in.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    with log.open("wb") as out:
        honcho = subprocess.Popen(
            [sys.executable, "-m", "honcho", "--no-colour", "-f", str(PROCFILE), "-e", str(env_file),
             "start"],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "PATH": path, "PYTHONUNBUFFERED": "1"},
        )
    started: set[Process] = set()
    try:
        sandboxd = env["E2B_API_URL"]
        flower = f"http://127.0.0.1:{env['FLOWER_PORT']}"
        wait_for(
            lambda: honcho.poll() is None and httpx.get(f"{sandboxd}/health").status_code == 200,
            120, f"sandboxd's /health (log: {log})",
        )
        wait_for(lambda: WORKER_READY.search(log.read_text(errors="replace")), 120, f"a worker (log: {log})")
        wait_for(lambda: httpx.get(f"{flower}/healthcheck").status_code == 200, 60, f"Flower (log: {log})")

        # Flower takes its login from FLOWER_BASIC_AUTH in .env.
        assert httpx.get(f"{flower}/workers").status_code == 401
        assert httpx.get(f"{flower}/workers", auth=FLOWER_LOGIN).status_code == 200

        example = subprocess.run(
            [sys.executable, str(EXAMPLE)], cwd=tmp_path, env={**os.environ, **env},
            capture_output=True, text=True, timeout=300, check=False,
        )
        printed = example.stdout + example.stderr
        assert example.returncode == 0, printed
        assert re.search(r"^GET http://\S+ -> 200, lists chart\.png: True$", example.stdout, re.M), printed
        assert re.search(r"^background job ended: done;", example.stdout, re.M), printed

        started = descendants(honcho.pid)
        assert len(started) >= 4, started  # at least the four processes, each under its shell
        os.killpg(honcho.pid, signal.SIGTERM)
        honcho.wait(timeout=60)
        wait_for(lambda: not alive(started), 30, f"honcho's processes to end (log: {log})")
        assert alive(started) == set()
    finally:
        leftovers = alive(started | descendants(honcho.pid))
        for pid, _ in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if honcho.poll() is None:
            os.killpg(honcho.pid, signal.SIGKILL)
            honcho.wait()
        shutil.rmtree(state_dir, ignore_errors=True)
