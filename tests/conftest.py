"""Fixtures shared by every test: a clean environment, and a real sandboxd per test session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.procs import SandboxHostProcess, sandbox_host


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No E2B_*/E2BQ_* variable of the machine leaks into a test."""
    for name in list(os.environ):
        if name.startswith(("E2B_", "E2BQ_")):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def sandboxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHostProcess]:
    """One real ``e2bq sandboxd`` for the whole session, on a free port, stopped at the end."""
    with sandbox_host(Path(tmp_path_factory.mktemp("host"))) as host:
        yield host


@pytest.fixture
def sdk_env(sandboxd: SandboxHostProcess, monkeypatch: pytest.MonkeyPatch) -> SandboxHostProcess:
    """Point the unmodified e2b SDK at the test's sandboxd through its environment variables."""
    for name, value in sandboxd.env.items():
        monkeypatch.setenv(name, value)
    return sandboxd
