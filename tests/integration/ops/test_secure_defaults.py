"""Secure by default outside the embedded mode: keys, logins, Redis passwords and TLS."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2b_code_interpreter import Sandbox

from e2bq import E2BToolkit, SandboxManager
from tests.procs import SandboxHostProcess, free_port, stop, wait_for, worker


def test_sandboxd_refuses_to_start_without_an_api_key() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("E2B_", "E2BQ_"))}
    run = subprocess.run(
        [sys.executable, "-m", "e2bq.sandboxd", "--port", str(free_port())],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert run.returncode != 0
    assert "API key" in run.stderr and "--local" in run.stderr


def test_sandboxd_in_local_mode_makes_a_key_and_prints_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("E2B_", "E2BQ_"))}
    port = free_port()
    log = tmp_path / "sandboxd.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "e2bq.sandboxd", "--local", "--port", str(port), "--log-level", "warning"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: "E2B_API_KEY=e2b_" in log.read_text(), 60, "the printed key")
        key = log.read_text().split("E2B_API_KEY=", 1)[1].split()[0]
        wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200, 60, "health")
        listing = httpx.get(f"http://127.0.0.1:{port}/v2/sandboxes", headers={"X-API-KEY": key})
        assert listing.status_code == 200
        refused = httpx.get(f"http://127.0.0.1:{port}/v2/sandboxes", headers={"X-API-KEY": "e2b_" + "0" * 40})
        assert refused.status_code == 401
    finally:
        stop(proc)


def test_flower_refuses_to_serve_beyond_loopback_without_a_login() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("E2BQ_", "FLOWER_"))}
    run = subprocess.run(
        [sys.executable, "-m", "e2bq.cli", "flower", "--port", str(free_port()), "--address", "0.0.0.0"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert run.returncode != 0
    assert "authentication" in run.stderr


def test_sandboxd_metrics_count_creates_and_live_sandboxes(sdk_env: SandboxHostProcess) -> None:
    def value(name: str) -> float:
        text = httpx.get(sdk_env.url + "/metrics").text
        lines = [line for line in text.splitlines() if line.startswith(name + " ")]
        return float(lines[0].split()[1]) if lines else 0.0

    before = value("e2bq_sandboxd_sandboxes_created_total")
    sandbox = Sandbox.create(timeout=60)
    try:
        sandbox.run_code("1+1")
        assert value("e2bq_sandboxd_sandboxes_created_total") == before + 1
        assert value("e2bq_sandboxd_sandboxes") >= 1
        assert value("e2bq_sandboxd_executions_total") >= 1
    finally:
        sandbox.kill()


@pytest.fixture
def tls_files(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed: no certificate for a TLS Redis")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    yield cert, key


def _run_a_job_through(
    url: str, sandboxd: SandboxHostProcess, tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"E2BQ_REDIS_URL": url, "E2BQ_QUEUE": f"secure-{free_port()}", **sandboxd.env}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with worker(tmp, env):
        toolkit = E2BToolkit(SandboxManager(default_timeout=120))
        try:
            job = toolkit.run_command_background("echo over a protected link")
            wait_for(lambda: toolkit.get_job_status(job["job_id"])["status"] != "running", 60, "the job")
            status = toolkit.get_job_status(job["job_id"])
            assert status["status"] == "done"
            assert "over a protected link" in status["output"]
        finally:
            toolkit.shutdown_all_sandboxes()


def test_a_redis_with_a_password_works_and_refuses_strangers(
    tmp_path: Path, sandboxd: SandboxHostProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    import redis

    port = free_port()
    proc = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", "127.0.0.1",
         "--requirepass", "s3cret-pass", "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    protected = f"redis://:s3cret-pass@127.0.0.1:{port}/0"
    try:
        wait_for(lambda: redis.Redis.from_url(protected).ping(), 20, "the redis-server")
        with pytest.raises(redis.AuthenticationError):
            redis.Redis.from_url(url).set("x", "1")
        _run_a_job_through(protected, sandboxd, tmp_path, monkeypatch)
    finally:
        stop(proc)


def test_a_redis_over_tls_works_with_rediss_urls(
    tmp_path: Path,
    sandboxd: SandboxHostProcess,
    monkeypatch: pytest.MonkeyPatch,
    tls_files: tuple[Path, Path],
) -> None:
    cert, key = tls_files
    port = free_port()
    proc = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", "0", "--tls-port", str(port),
         "--bind", "127.0.0.1", "--tls-cert-file", str(cert), "--tls-key-file", str(key),
         "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no", "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"rediss://127.0.0.1:{port}/0?ssl_cert_reqs=required&ssl_ca_certs={cert}"
    try:
        import redis

        wait_for(lambda: redis.Redis.from_url(url).ping(), 20, "the TLS redis-server")
        _run_a_job_through(url, sandboxd, tmp_path, monkeypatch)
    finally:
        stop(proc)
