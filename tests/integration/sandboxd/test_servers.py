"""Servers started inside a sandbox answer at a URL sandboxd publishes for their port.

The SDK's ``get_host`` cannot know a local host's addresses, so sandboxd hands them out on its
control plane: ``GET /sandboxes/{id}/ports/{port}`` → ``{"url": ...}``.
"""

from __future__ import annotations

import os
import socket
import uuid
from urllib.parse import urlsplit

import httpx
import pytest
from e2b_code_interpreter import Sandbox

from tests.procs import wait_for

ECHO_SERVER = """
import socket
server = socket.create_server(("127.0.0.1", 9000))
while True:
    conn, _ = server.accept()
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)
"""


def published_url(sandbox: Sandbox, port: int) -> str:
    answer = httpx.get(
        f"{os.environ['E2B_API_URL']}/sandboxes/{sandbox.sandbox_id}/ports/{port}",
        headers={"X-API-KEY": os.environ["E2B_API_KEY"]},
    )
    answer.raise_for_status()
    return str(answer.json()["url"])


def _answers(url: str) -> bool:
    return httpx.get(url, timeout=2).status_code == 200


def test_an_http_server_in_the_sandbox_answers_at_its_published_url(sandbox: Sandbox) -> None:
    name = f"hello-{uuid.uuid4().hex[:8]}.txt"
    sandbox.files.write(f"/home/user/site/{name}", "served from the sandbox")
    server = sandbox.commands.run(
        "python -m http.server 8000", background=True, timeout=0, cwd="/home/user/site"
    )
    try:
        url = published_url(sandbox, 8000)
        assert urlsplit(url).scheme == "http"
        wait_for(lambda: _answers(url), 30, "the sandbox's http.server to answer")

        listing = httpx.get(url + "/")
        assert listing.status_code == 200
        assert name in listing.text
        assert httpx.get(f"{url}/{name}").text == "served from the sandbox"
        # the same port is published at the same URL every time
        assert published_url(sandbox, 8000) == url
    finally:
        sandbox.commands.kill(server.pid)


def test_raw_tcp_passes_through_a_published_port(sandbox: Sandbox) -> None:
    sandbox.files.write("/home/user/echo.py", ECHO_SERVER)
    server = sandbox.commands.run("python /home/user/echo.py", background=True, timeout=0)
    try:
        address = urlsplit(published_url(sandbox, 9000))
        assert address.hostname is not None and address.port is not None

        def echoes() -> bytes:
            with socket.create_connection((address.hostname, address.port), timeout=5) as conn:
                payload = b"ping \x00\xff through the tunnel\n" * 1000
                conn.sendall(payload)
                conn.shutdown(socket.SHUT_WR)
                received = b""
                while chunk := conn.recv(65536):
                    received += chunk
                return received if received == payload else b""

        wait_for(echoes, 30, "the sandbox's echo server to echo through the published port")
    finally:
        sandbox.commands.kill(server.pid)


def test_a_published_port_with_nothing_listening_refuses_the_connection(sandbox: Sandbox) -> None:
    url = published_url(sandbox, 8765)
    with pytest.raises(httpx.TransportError):
        httpx.get(url, timeout=5)
