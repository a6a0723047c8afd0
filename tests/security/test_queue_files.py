"""Through the queue too: a hostile ``sandbox_path`` in the toolkit's upload and download (carried
out by a real worker with the unmodified SDK) stays inside the sandbox."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2bq import E2BToolkit, SandboxManager
from tests.procs import SandboxHostProcess, WorkerProcess, queue_env, redis_server, worker
from tests.security.probes import sha256_of

UP = "../" * 12


@pytest.fixture(scope="module")
def stack_env(host: SandboxHostProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A Redis of this module's own, and the environment that points clients and workers at it."""
    with redis_server(Path(tmp_path_factory.mktemp("redis"))) as url:
        yield queue_env(url, host, "security")


@pytest.fixture(scope="module")
def queue_worker(
    stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    with worker(Path(tmp_path_factory.mktemp("worker")), stack_env) as running:
        yield running


@pytest.fixture
def toolkit(
    stack_env: dict[str, str], queue_worker: WorkerProcess, monkeypatch: pytest.MonkeyPatch
) -> Iterator[E2BToolkit]:
    for name, value in stack_env.items():
        monkeypatch.setenv(name, value)
    kit = E2BToolkit(SandboxManager(default_timeout=300), auto_create_default=True)
    try:
        yield kit
    finally:
        kit.shutdown_all_sandboxes()


def test_hostile_upload_paths_change_nothing_on_the_host(
    toolkit: E2BToolkit, host: SandboxHostProcess, canary: Path, tmp_path: Path
) -> None:
    payload = tmp_path / "payload.txt"
    payload.write_text("pwned")
    watched = [canary, Path("/etc/passwd")]
    before = {str(p): sha256_of(p) for p in watched}
    targets = [
        "../../etc/passwd",
        "/etc/passwd",
        UP + str(canary).lstrip("/"),
        str(canary),
        f"{host.state_dir}/etc/passwd",
    ]

    outcomes = {target: toolkit.upload_file(str(payload), sandbox_path=target) for target in targets}

    assert outcomes["/etc/passwd"]["status"] == "error"
    assert outcomes["../../etc/passwd"]["status"] == "error"
    assert {str(p): sha256_of(p) for p in watched} == before
    assert sha256_of(host.state_dir / "etc" / "passwd") != sha256_of(payload)
    # what did land, landed in the sandbox's own /tmp
    inside = toolkit.run_command(f"cat {canary}")
    assert inside["status"] == "success" and inside["stdout"] == "pwned"


def test_hostile_download_paths_bring_nothing_of_the_host(
    toolkit: E2BToolkit, host: SandboxHostProcess, canary: Path, tmp_path: Path
) -> None:
    for source in ["../../etc/shadow", "/etc/shadow", str(canary), UP + str(canary).lstrip("/"),
                   f"{host.state_dir}/etc/passwd"]:
        target = tmp_path / f"got-{uuid.uuid4().hex[:8]}"
        result = toolkit.download_file_from_sandbox(source, local_path=str(target))
        assert result["status"] == "error", (source, result)
        assert not target.exists()
