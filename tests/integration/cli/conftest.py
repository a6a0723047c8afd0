"""The command line against a real stack: the queue suites' Redis, sandboxd and `e2bq worker`."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys

from click.testing import CliRunner, Result

from e2bq.cli import cli
from tests.integration.queue.conftest import (  # noqa: F401
    bare_toolkit,
    client_env,
    queue_worker,
    redis_url,
    stack_env,
    toolkit,
)


def runner() -> CliRunner:
    """A runner that keeps stdout and stderr apart (click before 8.2 mixes them by default)."""
    if "mix_stderr" in inspect.signature(CliRunner.__init__).parameters:
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    return CliRunner()


def e2bq(*args: str, input: str | bytes | None = None) -> Result:
    """``e2bq ARGS`` in this process, with the environment's settings (``client_env``)."""
    return runner().invoke(cli, list(args), input=input, catch_exceptions=False)


def e2bq_process(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """``python -m e2bq.cli ARGS`` as a subprocess with the stack's environment."""
    return subprocess.Popen(
        [sys.executable, "-m", "e2bq.cli", *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

