"""The sandbox runtime: a Python environment every sandbox sees read-only at /opt/e2bq/runtime.

It is made from the system's Python (readable by the sandbox's unprivileged user, unlike a Python
under /root) with system site-packages visible, so ``pip install`` inside a sandbox falls back to a
user install in the sandbox's home. It holds exactly ``runtime-requirements.txt``, a lock with hashes
compiled from ``runtime-requirements.in``; a runtime built from another lock is rebuilt. The
JavaScript and TypeScript kernels' npm packages go into its ``node_modules`` from the lock in
``runtime-npm/`` (when npm is installed; the agent refuses those languages with a clear message
otherwise): see ``agent/interpreter/languages.py`` for every language and where its kernel comes from.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

from .errors import SetupError
from .jail.bwrap import SECCOMP_FILE

REQUIREMENTS = Path(__file__).with_name("runtime-requirements.txt")
NPM_LOCK = Path(__file__).with_name("runtime-npm") / "package-lock.json"
LOCK_STAMP = ".e2bq-lock-sha256"  # in the runtime folder: the lock it was built from
SYSTEM_PYTHONS = ("/usr/bin/python3", "/usr/local/bin/python3")


def system_python() -> str:
    for candidate in SYSTEM_PYTHONS:
        if Path(candidate).exists():
            return candidate
    raise SetupError("no system Python found: apt-get install -y python3 python3-venv")


POLICY = Path(__file__).with_name("jail") / "seccomp_policy.py"


def lock_digest() -> str:
    """What a runtime is built from: the lock and the seccomp policy."""
    return hashlib.sha256(REQUIREMENTS.read_bytes() + POLICY.read_bytes() + NPM_LOCK.read_bytes()).hexdigest()


def runtime_is_current(target: Path) -> bool:
    """True when ``target`` was built from this e2bq's runtime lock and seccomp policy."""
    stamp = target / LOCK_STAMP
    return stamp.is_file() and stamp.read_text().strip() == lock_digest()


def install_runtime(target: Path, *, python: str | None = None, upgrade: bool = False) -> None:
    """Create the runtime at ``target`` from the lock; rebuild it when it was made from another lock
    (or always, with ``upgrade``). Safe to run again: a current runtime is left as it is."""
    if target.exists() and (upgrade or not runtime_is_current(target)):
        shutil.rmtree(target)
    if runtime_is_current(target):
        return
    base = python or system_python()
    subprocess.run([base, "-m", "venv", "--system-site-packages", str(target)], check=True)
    pip = [
        str(target / "bin" / "python"),
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--require-hashes",
        "--no-deps",
    ]
    subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True, stdout=sys.stderr)
    subprocess.run(
        [str(target / "bin" / "python"), str(POLICY), str(target / SECCOMP_FILE)], check=True
    )
    install_npm_packages(target)
    (target / LOCK_STAMP).write_text(lock_digest() + "\n")
    subprocess.run(["chmod", "-R", "a+rX", str(target)], check=True)


def install_npm_packages(target: Path) -> None:
    """The runtime's npm packages, exactly as their lock says, into ``target/node_modules``.

    Install scripts are not run: the one package that has any (zeromq) ships prebuilt binaries.
    The lock is laid out nested (``make lock``), since tslab looks for @types/node only under its
    own ``node_modules``.
    Without npm this prints why and leaves JavaScript and TypeScript out.
    """
    npm = shutil.which("npm")
    if npm is None:
        print("npm not found: no JavaScript/TypeScript kernels (apt-get install nodejs npm)", file=sys.stderr)
        return
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(NPM_LOCK.with_name(name), target / name)
    subprocess.run(
        [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=target,
        check=True,
        stdout=sys.stderr,
    )
