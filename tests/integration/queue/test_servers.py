"""Servers in a sandbox: run_server starts one as a job and answers with a URL this machine can open."""

from __future__ import annotations

import httpx
import pytest

from e2bq import E2BToolkit
from tests.procs import wait_for


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def test_run_server_serves_http_at_its_url(toolkit: E2BToolkit) -> None:
    made = toolkit.run_command("mkdir -p site && echo 'hello from the sandbox' > site/index.html")
    assert made["status"] == "success", made

    server = toolkit.run_server("cd site && python -m http.server 8000", 8000)

    assert server["status"] == "success", server
    assert server["port"] == 8000
    assert server["result"] is True
    page = httpx.get(server["url"], timeout=10)
    assert page.status_code == 200
    assert page.text == "hello from the sandbox\n"
    assert toolkit.get_job_status(server["job_id"])["status"] == "running"


def test_get_public_url_names_the_same_server(toolkit: E2BToolkit) -> None:
    server = toolkit.run_server("python -m http.server 8000", 8000)
    assert server["status"] == "success", server

    public = toolkit.get_public_url(8000)

    assert public["status"] == "success"
    assert public["url"] == server["url"]
    assert httpx.get(public["url"], timeout=10).status_code == 200


def test_a_server_that_never_listens_is_reported(toolkit: E2BToolkit) -> None:
    server = toolkit.run_server("sleep 60", 8001, wait_seconds=1)

    assert server["status"] == "error"
    assert server["result"] is False
    assert "nothing accepted connections on port 8001 within 1 s" in server["message"]
    assert server["url"]  # should it come up later
    assert toolkit.get_job_status(server["job_id"])["status"] == "running"
    assert toolkit.kill_job(server["job_id"])["status"] == "cancelled"


def test_a_server_that_exits_is_an_error(toolkit: E2BToolkit) -> None:
    server = toolkit.run_server("echo no such server >&2; exit 2", 8002, wait_seconds=3)

    assert server["status"] == "error"
    assert "no such server" in server["message"]


def test_killing_the_server_job_stops_the_server(toolkit: E2BToolkit) -> None:
    server = toolkit.run_server("python -m http.server 8000", 8000)
    assert answers(server["url"])

    assert toolkit.kill_job(server["job_id"])["status"] == "cancelled"

    wait_for(lambda: not answers(server["url"]), 20, "the server to stop answering")
    assert toolkit.get_job_status(server["job_id"])["status"] == "cancelled"


@pytest.mark.parametrize("port", [0, 70000, "8000", None, True])
def test_a_bad_port_is_an_error_dict(bare_toolkit: E2BToolkit, port: object) -> None:
    assert bare_toolkit.get_public_url(port, sandbox_id="any")["status"] == "error"  # type: ignore[arg-type]
    refused = bare_toolkit.run_server("true", port, sandbox_id="any")  # type: ignore[arg-type]
    assert refused["status"] == "error"
    assert "port" in refused["message"]


def test_a_negative_wait_is_an_error_dict(bare_toolkit: E2BToolkit) -> None:
    result = bare_toolkit.run_server("python -m http.server 8000", 8000, sandbox_id="any", wait_seconds=-1)

    assert result["status"] == "error"
    assert "wait_seconds" in result["message"]
