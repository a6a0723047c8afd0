"""`e2bq mcp --transport http` with a token refuses every request that does not carry it."""

from __future__ import annotations

import httpx
import pytest
from click.testing import CliRunner

from e2bq.cli import cli
from tests.integration.mcp.conftest import HttpServer

pytestmark = pytest.mark.timeout(120)

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "0"},
    },
}
HEADERS = {"Accept": "application/json, text/event-stream"}


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong-token", "test-token"], ids=["none", "wrong", "no-scheme"]
)
def test_a_request_without_the_token_gets_401(http_server: HttpServer, authorization: str | None) -> None:
    headers = HEADERS if authorization is None else {**HEADERS, "Authorization": authorization}

    response = httpx.post(http_server.url, json=INITIALIZE, headers=headers, timeout=30)

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_request_with_the_token_is_served(http_server: HttpServer) -> None:
    headers = {**HEADERS, "Authorization": f"Bearer {http_server.token}"}

    response = httpx.post(http_server.url, json=INITIALIZE, headers=headers, timeout=30)

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("options", "warned"), [([], True), (["--token", "s3cret"], False)], ids=["no-token", "token"]
)
def test_listening_beyond_loopback_without_a_token_warns(options: list[str], warned: bool) -> None:
    unreachable = {"E2BQ_REDIS_URL": "redis://127.0.0.1:1/0"}  # the command stops at Redis, after the check

    result = CliRunner().invoke(
        cli, ["mcp", "--transport", "http", "--host", "0.0.0.0", *options], env=unreachable
    )

    assert result.exit_code == 1
    assert ("without a token" in result.output) is warned
    assert "cannot reach Redis" in result.output
