"""A sandbox's network: the internet if allowed (E2B's ``allow_internet_access``), never the host.

Whatever the policy, nothing of the host is reachable from inside: not its loopback (a Redis-like
listener, sandboxd's own port), not its other addresses, not through slirp4netns's gateway. Nothing
inside is reachable from outside except through a port sandboxd publishes.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from e2b_code_interpreter import Sandbox

from tests.procs import SandboxHostProcess, sandbox_host, wait_for
from tests.security.harness import assert_host_and_neighbour_answer, run
from tests.security.probes import Listener, descendants, host_addresses, host_listener, host_listeners_of

SLIRP_GATEWAY = "10.0.2.2"  # slirp4netns's address of the host
INSIDE_PORT = 7000

CONNECT_PROBE = """
import json, socket, sys
outcomes = {}
for host, port in json.loads(sys.argv[1]):
    try:
        conn = socket.create_connection((host, port), timeout=3)
    except OSError as exc:
        outcomes[f"{host}:{port}"] = type(exc).__name__
        continue
    with conn:  # connected: what the other end says, if it speaks first, is a bonus
        try:
            conn.settimeout(1)
            outcomes[f"{host}:{port}"] = "connected: " + repr(conn.recv(64))
        except OSError:
            outcomes[f"{host}:{port}"] = "connected"
print(json.dumps(outcomes))
"""
INSIDE_SERVER = (
    "python -c \"import socket; s = socket.create_server(('127.0.0.1', 7000)); "
    "[c.sendall(b'inside') or c.close() for c, _ in iter(s.accept, None)]\""
)


@pytest.fixture
def redis_like() -> Iterator[Listener]:
    """A Redis-like server on every address of the host (127.0.0.1 and the others)."""
    with host_listener() as listener:
        yield listener


def probe(sandbox: Sandbox, targets: list[tuple[str, int]]) -> dict[str, str]:
    """Connect from inside to each target; the in-sandbox server is the control that shows the
    probe itself works."""
    sandbox.files.write("/tmp/connect.py", CONNECT_PROBE)
    server = sandbox.commands.run(INSIDE_SERVER, background=True, timeout=0)
    everything = [("127.0.0.1", INSIDE_PORT), *targets]

    def outcomes() -> dict[str, str] | None:
        result = run(sandbox, f"python /tmp/connect.py '{json.dumps(everything)}'", timeout=120)
        found: dict[str, str] = json.loads(result.stdout)
        return found if found.pop(f"127.0.0.1:{INSIDE_PORT}").startswith("connected") else None

    try:
        found = wait_for(outcomes, 120, "the probe to reach the in-sandbox server")
    finally:
        sandbox.commands.kill(server.pid)
    assert isinstance(found, dict)
    return found


@pytest.mark.parametrize("internet", [True, False], ids=["internet", "no-internet"])
def test_nothing_of_the_host_is_reachable_from_inside(
    internet: bool,
    make_sandbox: Callable[..., Sandbox],
    host: SandboxHostProcess,
    neighbour: Sandbox,
    redis_like: Listener,
) -> None:
    sandbox = make_sandbox(allow_internet_access=internet)
    sandboxd_port = urlsplit(host.url).port
    assert sandboxd_port is not None
    targets = [
        ("127.0.0.1", redis_like.port),
        ("127.0.0.1", sandboxd_port),
        (SLIRP_GATEWAY, redis_like.port),
        (SLIRP_GATEWAY, sandboxd_port),
        *[(address, redis_like.port) for address in host_addresses()],
        *[(address, sandboxd_port) for address in host_addresses()],
    ]

    outcomes = probe(sandbox, targets)

    reached = {target: outcome for target, outcome in outcomes.items() if outcome.startswith("connected")}
    assert reached == {}
    assert redis_like.accepted == []
    assert_host_and_neighbour_answer(host, neighbour)


def test_the_hosts_own_addresses_answer_from_the_host(redis_like: Listener) -> None:
    """The control for the test above: the host has other addresses, and from the host itself
    they reach the listener."""
    addresses = host_addresses()
    assert addresses, "hostname -I listed no address but loopback"
    for address in addresses:
        with socket.create_connection((address, redis_like.port), timeout=5) as conn:
            assert conn.recv(64) == b"+PONG\r\n"
    assert len(redis_like.accepted) == len(addresses)


def _pypi_reachable() -> bool:
    try:
        return httpx.get("https://pypi.org/simple/six/", timeout=15).status_code == 200
    except httpx.HTTPError:
        return False


FETCH_INSIDE = "python -c \"import urllib.request as u; print(u.urlopen('http://127.0.0.1:8000/').status)\""
PIP_DOWNLOAD = "pip download --no-deps --no-cache-dir --retries 0 --timeout 15 -d /tmp/x six"


@pytest.mark.network
@pytest.mark.parametrize("internet", [True, False], ids=["internet", "no-internet"])
def test_outbound_traffic_follows_allow_internet_access(
    internet: bool, make_sandbox: Callable[..., Sandbox]
) -> None:
    if not _pypi_reachable():
        pytest.skip("this host itself cannot reach https://pypi.org: nothing to compare against")
    sandbox = make_sandbox(allow_internet_access=internet)

    result = run(sandbox, PIP_DOWNLOAD, timeout=180)

    wheels = run(sandbox, "ls /tmp/x 2>/dev/null").stdout.split()
    if internet:
        assert result.exit_code == 0, result.stderr
        assert any(name.startswith("six-") for name in wheels)
    else:
        assert result.exit_code != 0
        assert wheels == []


def test_the_default_is_internet_access(make_sandbox: Callable[..., Sandbox]) -> None:
    """Without the option a sandbox has a network interface besides loopback (E2B's default)."""
    sandbox = make_sandbox()
    interfaces = run(sandbox, "ls /proc/sys/net/ipv4/conf 2>/dev/null || cat /proc/net/dev").stdout
    assert set(interfaces.split()) - {"all", "default", "lo"}, interfaces


def test_without_internet_only_loopback_exists(make_sandbox: Callable[..., Sandbox]) -> None:
    sandbox = make_sandbox(allow_internet_access=False)
    interfaces = run(sandbox, "ls /proc/sys/net/ipv4/conf").stdout
    assert set(interfaces.split()) == {"all", "default", "lo"}


def test_a_server_inside_is_reachable_only_through_its_published_port(
    make_sandbox: Callable[..., Sandbox], host: SandboxHostProcess
) -> None:
    sandbox = make_sandbox()
    sandbox.files.write("/home/user/site/index.html", "inside")
    server = sandbox.commands.run(
        "python -m http.server 8000 --bind 0.0.0.0", background=True, timeout=0, cwd="/home/user/site"
    )
    try:
        wait_for(lambda: run(sandbox, FETCH_INSIDE).stdout == "200\n", 30, "the server to answer inside")
        # no process of sandboxd's (jails, slirp4netns, anything they started) listens on the host
        assert host_listeners_of(descendants(host.proc.pid)) == set()

        with host.control() as control:
            answer = control.get(f"/sandboxes/{sandbox.sandbox_id}/ports/8000")
        answer.raise_for_status()
        url = answer.json()["url"]
        assert wait_for(lambda: httpx.get(url + "/index.html", timeout=5).text == "inside", 30, "the port")
        # the published port is sandboxd's own listener, on the address it was told to use
        assert urlsplit(url).hostname == urlsplit(host.url).hostname
        assert host_listeners_of(descendants(host.proc.pid)) == set()
    finally:
        sandbox.commands.kill(server.pid)


METADATA = ("169.254.169.254", 80)  # the link-local address of cloud instance metadata


def _host_reaches_metadata() -> bool:
    try:
        socket.create_connection(METADATA, timeout=3).close()
        return True
    except OSError:
        return False


def test_the_instance_metadata_address_is_unreachable(
    make_sandbox: Callable[..., Sandbox], host: SandboxHostProcess
) -> None:
    """On a cloud VM, 169.254.169.254 hands out the host's credentials: the host's secrets."""
    if not _host_reaches_metadata():
        pytest.skip("this host reaches no metadata service at 169.254.169.254: nothing to hide")
    sandbox = make_sandbox()

    outcomes = probe(sandbox, [METADATA])

    assert not outcomes[f"{METADATA[0]}:{METADATA[1]}"].startswith("connected"), outcomes


def test_another_sandboxd_stopping_leaves_this_ones_sandboxes_fenced_in(
    make_sandbox: Callable[..., Sandbox],
    host: SandboxHostProcess,
    redis_like: Listener,
    tmp_path: Path,
) -> None:
    """Several sandboxds may share a machine (tests, a restart overlapping the old process): what
    keeps one's sandboxes away from the host must not be undone when another one stops."""
    with sandbox_host(tmp_path) as other:
        assert httpx.get(other.url + "/health").status_code == 200
    sandbox = make_sandbox()

    outcomes = probe(sandbox, [(address, redis_like.port) for address in host_addresses()])

    assert [target for target, outcome in outcomes.items() if outcome.startswith("connected")] == []
    assert redis_like.accepted == []
