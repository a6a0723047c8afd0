"""Fixtures of the attack suite: a private sandboxd per module, sandboxes made through the SDK, and
a neighbour sandbox that must not notice the attacks.

Each module gets its own ``e2bq sandboxd`` (a module that needs other host limits overrides the
``host_args`` fixture), started with canary secrets in its environment. The SDK is pointed at it
with explicit options, so module-scoped sandboxes work beside the per-test clean environment.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from e2b_code_interpreter import Sandbox

from tests.procs import SandboxHostProcess, sandbox_host
from tests.security.harness import HOST_SECRETS, create_sandbox, kill_quietly


@pytest.fixture(scope="module")
def host_args() -> tuple[str, ...]:
    """Extra ``e2bq sandboxd`` options of this module's host (none: the defaults)."""
    return ()


@pytest.fixture(scope="module")
def host(
    host_args: tuple[str, ...], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SandboxHostProcess]:
    """This module's own sandboxd, with canary secrets in its environment."""
    with sandbox_host(Path(tmp_path_factory.mktemp("host")), *host_args, env=HOST_SECRETS) as running:
        yield running


@pytest.fixture
def make_sandbox(host: SandboxHostProcess) -> Iterator[Callable[..., Sandbox]]:
    """``make_sandbox(metadata=..., allow_internet_access=...)``; each is killed after the test."""
    made: list[Sandbox] = []

    def make(**options: Any) -> Sandbox:
        sandbox = create_sandbox(host, **options)
        made.append(sandbox)
        return sandbox

    yield make
    for sandbox in made:
        kill_quietly(sandbox)


@pytest.fixture
def canary() -> Iterator[Path]:
    """A world-readable file with known content in the host's /tmp, as a careless host process
    would leave one: a sandbox must neither read nor change it."""
    path = Path(f"/tmp/e2bq-canary-{uuid.uuid4().hex}.txt")
    path.write_text(f"host canary {uuid.uuid4().hex}")
    path.chmod(0o644)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def neighbour(host: SandboxHostProcess) -> Iterator[Sandbox]:
    """A sandbox beside the attacks, with the host's default limits."""
    sandbox = create_sandbox(host)
    try:
        yield sandbox
    finally:
        kill_quietly(sandbox)
