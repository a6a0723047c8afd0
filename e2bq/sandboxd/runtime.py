"""The sandbox runtime: a Python environment every sandbox sees read-only at /opt/e2bq/runtime.

It is made from the system's Python (readable by the sandbox's unprivileged user, unlike a Python
under /root) with system site-packages visible, so ``pip install`` inside a sandbox falls back to a
user install in the sandbox's home.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from .jail import SECCOMP_FILE

REQUIREMENTS = Path(__file__).with_name("runtime-requirements.txt")
SYSTEM_PYTHONS = ("/usr/bin/python3", "/usr/local/bin/python3")


def system_python() -> str:
    for candidate in SYSTEM_PYTHONS:
        if Path(candidate).exists():
            return candidate
    raise RuntimeError("no system Python found: apt-get install -y python3 python3-venv")


def install_runtime(target: Path, *, python: str | None = None, upgrade: bool = False) -> None:
    """Create (or update) the runtime at ``target``; safe to run again."""
    if upgrade and target.exists():
        shutil.rmtree(target)
    if not (target / "bin" / "python").exists():
        base = python or system_python()
        subprocess.run([base, "-m", "venv", "--system-site-packages", str(target)], check=True)
    pip = [
        str(target / "bin" / "python"),
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
    ]
    subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True, stdout=sys.stderr)
    policy = Path(__file__).with_name("seccomp_policy.py")
    subprocess.run(
        [str(target / "bin" / "python"), str(policy), str(target / SECCOMP_FILE)], check=True
    )
    subprocess.run(["chmod", "-R", "a+rX", str(target)], check=True)
