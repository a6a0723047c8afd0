"""The locks match pyproject.toml and runtime-requirements.in, and the check says so when they don't."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FILES = (
    "pyproject.toml",
    "requirements/check_lock.py",
    "requirements/build.in",
    "requirements/dev.txt",
    "requirements/lowest.txt",
    "requirements/main.txt",
    "e2bq/sandboxd/runtime-requirements.in",
    "e2bq/sandboxd/runtime-requirements.txt",
)


def copy_of_the_inputs(tmp_path: Path) -> Path:
    for name in FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, tmp_path / name)
    return tmp_path


def check(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(root / "requirements/check_lock.py")], capture_output=True, text=True
    )


def test_the_checked_in_locks_match(tmp_path: Path) -> None:
    done = check(copy_of_the_inputs(tmp_path))
    assert done.returncode == 0, done.stderr


def test_a_raised_lower_bound_that_the_lock_does_not_meet_fails(tmp_path: Path) -> None:
    root = copy_of_the_inputs(tmp_path)
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"click>=8.1.2"', '"click>=99"'))
    done = check(root)
    assert done.returncode == 1
    assert "click>=99 does not allow the locked click==" in done.stderr


def test_a_new_dependency_missing_from_the_lock_fails(tmp_path: Path) -> None:
    root = copy_of_the_inputs(tmp_path)
    runtime_in = root / "e2bq/sandboxd/runtime-requirements.in"
    runtime_in.write_text(runtime_in.read_text() + "scikit-learn>=1.5\n")
    done = check(root)
    assert done.returncode == 1
    assert "scikit-learn>=1.5 is not in the lock" in done.stderr


def test_a_dependency_dropped_from_pyproject_but_still_locked_fails(tmp_path: Path) -> None:
    root = copy_of_the_inputs(tmp_path)
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('    "honcho>=2",\n', ""))
    done = check(root)
    assert done.returncode == 1
    assert "honcho is locked as a direct requirement but nothing requires it" in done.stderr


def test_a_lower_bound_older_than_the_lowest_tested_release_fails(tmp_path: Path) -> None:
    root = copy_of_the_inputs(tmp_path)
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"click>=8.1.2"', '"click>=7.0"'))
    done = check(root)
    assert done.returncode == 1
    claim = "click>=7.0 claims 7.0 but the lowest release that resolves is 8.1.2: raise the bound"
    assert claim in done.stderr
