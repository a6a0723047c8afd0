"""The processes tests need, started through e2bq's launcher (``e2bq.launch``), and ``wait_for``.

Every helper here starts its process for a ``with`` block in a folder of the test's, on a free port
unless told otherwise, and stops it by PID at the end (see ``e2bq.launch``). Sandbox hosts share one
API key, so a host restarted on the same port answers the clients of the earlier one.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from e2bq.launch import (
    SandboxHostProcess,
    WorkerProcess,
    free_port,
    start_redis,
    start_sandboxd,
    stop,
    unmount_under,
)
from e2bq.launch import start_worker as launch_worker
from e2bq.sandboxd.settings import DEFAULT_TEMPLATES_DIR

__all__ = [
    "API_KEY",
    "SandboxHostProcess",
    "WorkerProcess",
    "free_port",
    "redis_server",
    "sandbox_host",
    "start_worker",
    "stop",
    "unmount_under",
    "wait_for",
    "worker",
]

API_KEY = "e2b_" + "5e" * 20


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> object:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            result = condition()
            if result:
                return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


# Read at import, before each test clears E2BQ_* from its environment. The tests' hosts serve the
# templates `make install` builds, as a host does by default; E2BQ_TEST_TEMPLATES_DIR names another
# folder, or, empty, none (code-interpreter-v1 and base then run on the host's system folders).
TEMPLATES_DIR = os.environ.get("E2BQ_TEST_TEMPLATES_DIR", DEFAULT_TEMPLATES_DIR)
# The root filesystem a default create (code-interpreter-v1) runs on; None: the host's.
_DEFAULT_ROOTFS = Path(TEMPLATES_DIR) / "code-interpreter-v1" / "rootfs" if TEMPLATES_DIR else None
DEFAULT_ROOTFS = _DEFAULT_ROOTFS.resolve() if _DEFAULT_ROOTFS and _DEFAULT_ROOTFS.exists() else None


@contextlib.contextmanager
def sandbox_host(
    tmp: Path, *extra: str, env: dict[str, str] | None = None, port: int | None = None
) -> Iterator[SandboxHostProcess]:
    """A running sandboxd with the tests' API key, logging to ``tmp/sandboxd-<port>.log``.

    ``extra`` are sandboxd options and ``env`` adds to its environment. ``port`` is a free one by
    default: pass the port of a stopped host to restart it at the same address.
    """
    if TEMPLATES_DIR and DEFAULT_ROOTFS is None:
        raise RuntimeError(
            f"code-interpreter-v1 is not built in {TEMPLATES_DIR}: run `make install` (it builds the "
            "shipped templates), or set E2BQ_TEST_TEMPLATES_DIR= to test on the host's system folders"
        )
    if TEMPLATES_DIR:  # sandboxes on a template trust what the host trusts (a proxy's CA, say)
        env = {"E2BQ_SANDBOXD_TEMPLATES_DIR": TEMPLATES_DIR, **(env or {})}
        env.setdefault("E2BQ_SANDBOX_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    else:
        templates = {"E2BQ_SANDBOXD_TEMPLATES_DIR": str(tmp / "no-templates"), "E2BQ_SANDBOXD_HOST_ROOT": "1"}
        env = {**templates, **(env or {})}
    with start_sandboxd(tmp, *extra, port=port, api_key=API_KEY, env=env) as host:
        yield host


@contextlib.contextmanager
def redis_server(tmp: Path, *extra: str, port: int | None = None) -> Iterator[str]:
    """A private redis-server on ``port`` (a free one by default); yields its URL.

    Its folder is ``tmp/redis-<port>``: a server started again with the same ``tmp`` and ``port``
    reads what an earlier one persisted there (with ``--appendonly yes`` among ``extra``).
    """
    port = port or free_port()
    with start_redis(tmp / f"redis-{port}", *extra, port=port) as server:
        yield server.url


def start_worker(tmp: Path, env: dict[str, str], *args: str, name: str | None = None) -> WorkerProcess:
    """A real ``e2bq worker`` subprocess, ready to take tasks; the caller stops it (``.stop()``, or
    as a context manager). ``env`` adds to its environment; ``args`` are Celery worker options."""
    return launch_worker(tmp, *args, name=name, env=env)


@contextlib.contextmanager
def worker(tmp: Path, env: dict[str, str], *args: str, name: str | None = None) -> Iterator[WorkerProcess]:
    """:func:`start_worker` for the ``with`` block."""
    with start_worker(tmp, env, *args, name=name) as running:
        yield running


def queue_env(redis_url: str, host: SandboxHostProcess, prefix: str) -> dict[str, str]:
    """What points clients and workers at ``redis_url`` and ``host``, with a queue and a registry
    namespace of their own (named ``prefix-<random>``), so that suites never see each other's work."""
    suffix = f"{prefix}-{uuid.uuid4().hex[:8]}"
    return {"E2BQ_REDIS_URL": redis_url, "E2BQ_QUEUE": suffix, "E2BQ_NAMESPACE": suffix, **host.env}
