"""sandboxd never follows a path a sandbox controls on the host.

sandboxd reaches each jail through unix sockets in a folder the jail can write (``/run/e2bq``:
the agent's socket and the port-forwarding socket). It connects to them as root, in the host's
mount namespace: if a sandbox swaps a socket for a symlink, sandboxd must not follow it to a host
socket of the sandbox's choosing (Docker's, Redis's, another sandbox's agent). A relative symlink
with enough ``../`` names any host path without knowing where sandboxd keeps its state.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from e2b_code_interpreter import Sandbox

from tests.procs import SandboxHostProcess
from tests.security.harness import assert_host_and_neighbour_answer, run
from tests.security.probes import UnixListener, host_unix_listener

UP = "../" * 16
CONCURRENT = 8


@pytest.fixture
def host_socket() -> Iterator[UnixListener]:
    """A unix socket on the host, as Docker's or a Redis's would be."""
    with host_unix_listener(Path(f"/tmp/e2bq-host-{uuid.uuid4().hex[:12]}.sock")) as listener:
        yield listener


def swap_for_symlink(sandbox: Sandbox, name: str, target: Path) -> None:
    """Inside the sandbox: replace /run/e2bq/<name> with a relative symlink to ``target`` on the host.
    A jail whose /run/e2bq is not writable simply fails here, which is containment too."""
    run(sandbox, f"cd /run/e2bq && rm -f {name} && ln -s {UP}{str(target).lstrip('/')} {name}; ls -la")


def attempt(sandbox: Sandbox) -> None:
    """A request that holds a connection to the agent for a second (or fails: no matter)."""
    with contextlib.suppress(Exception):
        sandbox.commands.run("sleep 1", timeout=30, request_timeout=30)


def test_the_port_forwarding_socket_cannot_be_pointed_at_a_host_socket(
    make_sandbox: Callable[..., Sandbox],
    host: SandboxHostProcess,
    neighbour: Sandbox,
    host_socket: UnixListener,
) -> None:
    sandbox = make_sandbox()
    swap_for_symlink(sandbox, "forward.sock", host_socket.path)

    with host.control() as control:
        answer = control.get(f"/sandboxes/{sandbox.sandbox_id}/ports/8000")
    if answer.status_code == 200:
        url = answer.json()["url"]
        assert answer.json().get("open") is not True
        try:
            reply = httpx.get(url, timeout=5)
        except httpx.HTTPError:
            reply = None
        assert reply is None or b"the host answers" not in reply.content

    assert host_socket.received == [], "sandboxd connected to a host socket the sandbox chose"
    assert_host_and_neighbour_answer(host, neighbour)


def test_the_agent_socket_cannot_be_pointed_at_a_host_socket(
    make_sandbox: Callable[..., Sandbox],
    host: SandboxHostProcess,
    neighbour: Sandbox,
    host_socket: UnixListener,
) -> None:
    sandbox = make_sandbox()
    swap_for_symlink(sandbox, "agent.sock", host_socket.path)

    # requests at once: sandboxd's pool to the agent must open new connections for them
    with ThreadPoolExecutor(max_workers=CONCURRENT) as pool:
        list(pool.map(lambda _: attempt(sandbox), range(CONCURRENT)))

    assert host_socket.received == [], "sandboxd connected to a host socket the sandbox chose"
    assert_host_and_neighbour_answer(host, neighbour)


def test_a_sandbox_cannot_take_over_its_neighbours_agent(
    make_sandbox: Callable[..., Sandbox], host: SandboxHostProcess, neighbour: Sandbox
) -> None:
    """The same swap, aimed at the neighbour's agent socket (a relative link: ../../<id>/run/...):
    the attacker's own requests, made with its own token, must not be served by the neighbour."""
    secret = f"neighbour-secret-{uuid.uuid4().hex}"
    neighbour.files.write("/home/user/secret.txt", secret)
    attacker = make_sandbox()
    attacker.files.write("/home/user/secret.txt", "the attacker's own file")
    link = f"../../{neighbour.sandbox_id}/run/agent.sock"
    run(attacker, f"cd /run/e2bq && rm -f agent.sock && ln -s {link} agent.sock")

    def read_through(_: int) -> str:
        try:
            return str(attacker.files.read("/home/user/secret.txt", request_timeout=30))
        except Exception as exc:
            return repr(exc)

    with ThreadPoolExecutor(max_workers=CONCURRENT) as pool:
        answers = list(pool.map(read_through, range(2 * CONCURRENT)))

    assert [a for a in answers if secret in a] == [], "the attacker read the neighbour's file"
    assert neighbour.files.read("/home/user/secret.txt") == secret
    assert_host_and_neighbour_answer(host, neighbour)
