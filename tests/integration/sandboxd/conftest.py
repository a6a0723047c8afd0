from __future__ import annotations

from collections.abc import Iterator

import pytest
from e2b_code_interpreter import Sandbox

from tests.procs import SandboxHostProcess


@pytest.fixture
def sandbox(sdk_env: SandboxHostProcess) -> Iterator[Sandbox]:
    """A fresh sandbox created through the SDK, killed after the test."""
    sbx = Sandbox.create(timeout=300)
    try:
        yield sbx
    finally:
        sbx.kill()
