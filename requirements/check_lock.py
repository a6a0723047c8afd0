"""Fail when a lock no longer matches the requirements it was compiled from (run by ``make lint``).

Offline: it reads the files, it resolves nothing. A lock matches its inputs when every requirement
of the inputs is pinned in it at a version the requirement allows, and every package the lock names
as coming straight from an input is still required there. Refresh with ``make lock``.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
DEV_LOCK = ROOT / "requirements" / "dev.txt"
LOWEST_LOCK = ROOT / "requirements" / "lowest.txt"
MAIN_LOCK = ROOT / "requirements" / "main.txt"  # the container image's: no dev extra, the dev lock's pins
BUILD_IN = ROOT / "requirements" / "build.in"
RUNTIME_IN = ROOT / "e2bq" / "sandboxd" / "runtime-requirements.in"
RUNTIME_LOCK = ROOT / "e2bq" / "sandboxd" / "runtime-requirements.txt"

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def read_lock(path: Path) -> tuple[dict[str, Version], set[str]]:
    """The lock's pins, and the names it says come straight from an input (``# via`` an input)."""
    pins: dict[str, Version] = {}
    direct: set[str] = set()
    current = ""
    for line in path.read_text().splitlines():
        if match := _PIN.match(line):
            current = canonicalize_name(match[1])
            pins[current] = Version(match[2])
        elif current and re.search(r"#\s+(via\s+)?(-r .*\.in|e2bq \(pyproject\.toml\))\s*$", line):
            direct.add(current)
    return pins, direct


def read_inputs(path: Path) -> list[Requirement]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [Requirement(line) for line in lines if line and not line.startswith("-")]


def pyproject_requirements(*extras: str) -> tuple[list[Requirement], list[Requirement]]:
    """The project's requirements with ``extras``, and the build backend's."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = data["project"]
    runtime = [Requirement(text) for text in project["dependencies"]]
    chosen = [Requirement(text) for extra in extras for text in project["optional-dependencies"][extra]]
    build = [Requirement(text) for text in data["build-system"]["requires"]]
    return runtime + chosen, build


def pyproject_runtime_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(text) for text in project["dependencies"]]


def disagreements(lock: Path, reference: Path) -> list[str]:
    """Pins of ``lock`` that differ from the same packages' pins in ``reference``."""
    pins, _ = read_lock(lock)
    others, _ = read_lock(reference)
    return [
        f"{lock.relative_to(ROOT)}: {name}=={version} but {reference.relative_to(ROOT)} has {others[name]}"
        for name, version in sorted(pins.items())
        if name in others and others[name] != version
    ]


def mismatches(lock: Path, required: list[Requirement], inputs: list[Requirement]) -> list[str]:
    """What is wrong with ``lock`` for ``required`` (everything it must pin) and ``inputs`` (the
    requirements it was compiled from directly)."""
    pins, direct = read_lock(lock)
    problems = []
    for requirement in required:
        name = canonicalize_name(requirement.name)
        if name not in pins:
            problems.append(f"{requirement} is not in the lock")
        elif not requirement.specifier.contains(pins[name], prereleases=True):
            problems.append(f"{requirement} does not allow the locked {name}=={pins[name]}")
    wanted = {canonicalize_name(requirement.name) for requirement in inputs}
    for name in sorted(direct - wanted):
        problems.append(f"{name} is locked as a direct requirement but nothing requires it")
    return [f"{lock.relative_to(ROOT)}: {problem}" for problem in problems]


def lowest_mismatches(required: list[Requirement]) -> list[str]:
    """The lowest lock must pin each direct requirement at the lower bound its range claims."""
    pins, _ = read_lock(LOWEST_LOCK)
    problems = []
    for requirement in required:
        bounds = [Version(spec.version) for spec in requirement.specifier if spec.operator in (">=", "==")]
        pinned = pins.get(canonicalize_name(requirement.name))
        if bounds and pinned is not None and pinned != max(bounds):
            problems.append(
                f"{LOWEST_LOCK.relative_to(ROOT)}: {requirement} claims {max(bounds)} "
                f"but the lowest release that resolves is {pinned}: raise the bound"
            )
    return problems


def main() -> int:
    # The dev lock adds the agent frameworks' extra; the lowest lock leaves it out, since the
    # frameworks raise the lower bounds of e2bq's own requirements (pydantic, starlette, uvicorn).
    everything, build = pyproject_requirements("dev", "frameworks")
    project, _ = pyproject_requirements("dev")
    build_in = read_inputs(BUILD_IN)
    runtime_in = read_inputs(RUNTIME_IN)
    problems = mismatches(DEV_LOCK, everything + build + build_in, everything + build_in)
    problems += mismatches(LOWEST_LOCK, project + build + build_in, project + build_in)
    problems += lowest_mismatches(project)
    runtime_deps = pyproject_runtime_requirements()
    problems += mismatches(MAIN_LOCK, runtime_deps + build + build_in, runtime_deps + build_in)
    problems += disagreements(MAIN_LOCK, DEV_LOCK)
    problems += mismatches(RUNTIME_LOCK, runtime_in, runtime_in)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print("the locks do not match their inputs: run `make lock UPGRADE=`", file=sys.stderr)
        return 1
    locks = (DEV_LOCK, MAIN_LOCK, LOWEST_LOCK, RUNTIME_LOCK)
    names = ", ".join(str(lock.relative_to(ROOT)) for lock in locks)
    print(f"locks match their inputs ({names})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
