"""Outbound rules, as E2B's SDK sets them: ``network={"allow_out": ..., "deny_out": ...}`` at create
and ``update_network`` at run time (sync and async).

The only outside hosts this machine reaches are the package registries (one proxy address serves
them all), so the tests use pypi.org: reachable from a sandbox without rules (the control), refused
when denied by name or by address, reachable again when allowed over a deny of all traffic.
A refused connection fails at once with ECONNREFUSED (the rules answer with a reset).
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from e2b import ALL_TRAFFIC, SandboxException
from e2b_code_interpreter import AsyncSandbox, Sandbox

from tests.integration.sandboxd.test_warm_pool import pooled_ids, wait_until_filled
from tests.procs import SandboxHostProcess, sandbox_host, wait_for
from tests.security.harness import run

REGISTRY = "pypi.org"
ELSEWHERE = "1.1.1.1"  # not reachable from here at all: without rules a connect times out
REFUSED = "ConnectionRefusedError"
# With all traffic denied and no name allowed, DNS is closed too (as on E2B): the name fails first.
BLOCKED = (REFUSED, "gaierror")

REACH = """
import json, socket, sys
outcomes = {}
for host in sys.argv[1:]:
    try:
        socket.create_connection((host, 443), timeout=4).close()
        outcomes[host] = "connected"
    except OSError as exc:
        outcomes[host] = type(exc).__name__
print(json.dumps(outcomes))
"""

# Opens a TLS connection, waits for /tmp/go, then asks for a page on it: "answered", "closed" or
# the error.
HOLD_CONNECTION = """
import os, socket, ssl, sys, time
tls = ssl.create_default_context()
tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE
conn = tls.wrap_socket(socket.create_connection((sys.argv[1], 443), timeout=10), server_hostname=sys.argv[1])
open("/tmp/opened", "w").close()
while not os.path.exists("/tmp/go"):
    time.sleep(0.05)
try:
    conn.sendall(f"HEAD / HTTP/1.1\\r\\nHost: {sys.argv[1]}\\r\\n\\r\\n".encode())
    answer = conn.recv(16)
    print("answered" if answer.startswith(b"HTTP/") else "closed" if not answer else repr(answer))
except OSError as exc:
    print(type(exc).__name__)
"""


def reach(sandbox: Sandbox, *hosts: str) -> dict[str, str]:
    """From inside ``sandbox``: how a TCP connect to port 443 of each host ends."""
    sandbox.files.write("/tmp/reach.py", REACH)
    result = run(sandbox, f"python /tmp/reach.py {' '.join(hosts)}", timeout=60)
    assert result.exit_code == 0, result.stderr
    outcomes: dict[str, str] = json.loads(result.stdout)
    return outcomes


@pytest.fixture
def make(sdk_env: SandboxHostProcess) -> Iterator[Callable[..., Sandbox]]:
    made: list[Sandbox] = []

    def create(**options: Any) -> Sandbox:
        sandbox = Sandbox.create(timeout=120, **options)
        made.append(sandbox)
        return sandbox

    yield create
    for sandbox in made:
        sandbox.kill()


@pytest.fixture
def registry_reachable(make: Callable[..., Sandbox]) -> None:
    """The control: a sandbox without rules connects to the registry (else the machine has no way
    out at all, and nothing here can be shown)."""
    try:
        socket.getaddrinfo(REGISTRY, 443)
    except OSError:
        pytest.skip(f"{REGISTRY} does not resolve on this machine")
    if reach(make(), REGISTRY)[REGISTRY] != "connected":
        pytest.skip(f"{REGISTRY} is not reachable from a sandbox with internet on this machine")


@pytest.mark.usefixtures("registry_reachable")
class TestRulesAtCreate:
    def test_a_denied_name_is_refused(self, make: Callable[..., Sandbox]) -> None:
        sandbox = make(network={"deny_out": [REGISTRY]})
        assert reach(sandbox, REGISTRY) == {REGISTRY: REFUSED}

    def test_a_denied_address_is_refused(self, make: Callable[..., Sandbox]) -> None:
        address = socket.getaddrinfo(REGISTRY, 443, socket.AF_INET)[0][4][0]
        sandbox = make(network={"deny_out": [f"{address}/32"]})
        assert reach(sandbox, REGISTRY) == {REGISTRY: REFUSED}

    def test_allow_wins_over_a_deny_of_all_traffic(self, make: Callable[..., Sandbox]) -> None:
        sandbox = make(network={"allow_out": [REGISTRY], "deny_out": [ALL_TRAFFIC]})
        assert reach(sandbox, REGISTRY, ELSEWHERE) == {REGISTRY: "connected", ELSEWHERE: REFUSED}

    def test_an_allow_list_blocks_what_it_does_not_name(self, make: Callable[..., Sandbox]) -> None:
        sandbox = make(network={"allow_out": [ELSEWHERE], "deny_out": [ALL_TRAFFIC]})
        assert reach(sandbox, REGISTRY)[REGISTRY] in BLOCKED

    def test_allow_out_alone_leaves_everything_open(self, make: Callable[..., Sandbox]) -> None:
        sandbox = make(network={"allow_out": [ELSEWHERE]})
        assert reach(sandbox, REGISTRY) == {REGISTRY: "connected"}

    def test_get_info_returns_the_rules(self, make: Callable[..., Sandbox]) -> None:
        sandbox = make(network={"allow_out": [REGISTRY], "deny_out": [ALL_TRAFFIC]})
        info = Sandbox.get_info(sandbox.sandbox_id)
        assert info.network is not None
        assert info.network.get("allow_out") == [REGISTRY]
        assert info.network.get("deny_out") == [ALL_TRAFFIC]
        assert make().get_info().network is None  # none asked: none shown, as E2B


@pytest.mark.usefixtures("registry_reachable")
class TestUpdateNetwork:
    def test_rules_change_at_once(self, make: Callable[..., Sandbox]) -> None:
        sandbox = make()
        sandbox.update_network({"deny_out": [ALL_TRAFFIC]})
        assert reach(sandbox, REGISTRY)[REGISTRY] in BLOCKED
        info = sandbox.get_info().network
        assert info is not None and info.get("deny_out") == [ALL_TRAFFIC]

        sandbox.update_network({})  # omitted fields are cleared: nothing denied any more
        assert reach(sandbox, REGISTRY) == {REGISTRY: "connected"}

    def test_allow_internet_access_false_denies_all(self, make: Callable[..., Sandbox]) -> None:
        sandbox = make()
        Sandbox.update_network(sandbox.sandbox_id, {"allow_internet_access": False})
        assert reach(sandbox, REGISTRY)[REGISTRY] in BLOCKED

    @pytest.mark.parametrize("deny", [False, True], ids=["control", "denied"])
    def test_an_open_connection_to_a_denied_address_stops(
        self, make: Callable[..., Sandbox], deny: bool
    ) -> None:
        """Rules are stateless: the next packet of a connection opened before the deny is refused
        (the control, without the update, gets its answer on the same connection)."""
        sandbox = make()
        sandbox.files.write("/tmp/hold.py", HOLD_CONNECTION)
        handle = sandbox.commands.run(f"python /tmp/hold.py {REGISTRY}", background=True, timeout=0)
        wait_for(lambda: sandbox.files.exists("/tmp/opened"), 30, "the connection to open")
        if deny:
            sandbox.update_network({"deny_out": [REGISTRY]})
        sandbox.files.write("/tmp/go", "")
        outcome = handle.wait().stdout.strip()
        if deny:  # the reset ends it: an error, or the end of the stream (ssl reads it as such)
            assert outcome in ("ConnectionResetError", "ConnectionRefusedError", "closed")
        else:
            assert outcome == "answered"

    def test_rules_hold_across_pause_and_resume(self, make: Callable[..., Sandbox]) -> None:
        sandbox = make(network={"deny_out": [REGISTRY]})
        sandbox.pause()
        resumed = Sandbox.connect(sandbox.sandbox_id)
        assert reach(resumed, REGISTRY) == {REGISTRY: REFUSED}
        resumed.update_network({})
        assert reach(resumed, REGISTRY) == {REGISTRY: "connected"}

    def test_a_sandbox_without_internet_cannot_be_opened(self, make: Callable[..., Sandbox]) -> None:
        sandbox = make(allow_internet_access=False)
        sandbox.update_network({"deny_out": [ALL_TRAFFIC]})  # closing what is closed: fine
        with pytest.raises(SandboxException, match="409") as raised:
            sandbox.update_network({"allow_out": [REGISTRY]})
        assert "no internet" in str(raised.value)

    def test_an_unknown_sandbox_is_not_found(self, make: Callable[..., Sandbox]) -> None:
        from e2b import SandboxNotFoundException

        with pytest.raises(SandboxNotFoundException):
            Sandbox.update_network("inotthere0000000000", {"deny_out": [ALL_TRAFFIC]})


def test_async_sdk_sets_and_updates_rules(sdk_env: SandboxHostProcess, registry_reachable: None) -> None:
    async def scenario() -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        sandbox = await AsyncSandbox.create(timeout=120, network={"deny_out": [REGISTRY]})
        try:
            first = (await sandbox.get_info()).network
            await sandbox.update_network({"allow_out": [REGISTRY], "deny_out": [ALL_TRAFFIC]})
            second = (await AsyncSandbox.get_info(sandbox.sandbox_id)).network
            connect = f"import socket; socket.create_connection(('{REGISTRY}', 443), timeout=5); print('ok')"
            result = await sandbox.commands.run(f'python -c "{connect}"')
            assert result.stdout.strip() == "ok"
        finally:
            await sandbox.kill()
        return dict(first or {}), dict(second or {})

    first, second = asyncio.run(scenario())
    assert first == {"allow_out": [], "deny_out": [REGISTRY]}
    assert second == {"allow_out": [REGISTRY], "deny_out": [ALL_TRAFFIC]}


BAD_RULES = [
    ({"allow_out": ["not a host!"]}, "400", "neither an IPv4 address"),
    ({"deny_out": ["::1/128"]}, "400", "no IPv6"),
    ({"allow_out": ["*.example.com"]}, "400", "wildcard"),
    ({"deny_out": [f"10.0.{i // 250}.{i % 250}" for i in range(300)]}, "400", "at most 256"),
    ({"allow_out": ["no-such-host.invalid"]}, "400", "does not resolve"),
    ({"allow_out": ["127.0.0.1"]}, "400", "stays closed"),
    ({"allow_out": ["localhost"]}, "400", "stays closed"),
    ({"allow_out": ["169.254.169.254"]}, "400", "stays closed"),
    ({"allow_out": ["10.1.0.0/16"]}, "400", "stays closed"),
    ({"dns_servers": ["dns.google"], "allow_out": [REGISTRY]}, "400", "not an IPv4 address"),
    ({"egress_proxy": {"address": "proxy.example.com:1080"}}, "501", "egress_proxy"),
    ({"mask_request_host": "${PORT}-x.example.com"}, "501", "mask_request_host"),
    ({"allow_public_traffic": False}, "501", "allow_public_traffic"),
]


@pytest.mark.parametrize(("network", "status", "message"), BAD_RULES, ids=[m for _, _, m in BAD_RULES])
def test_bad_rules_are_refused_with_what_to_change(
    make: Callable[..., Sandbox], network: dict[str, Any], status: str, message: str
) -> None:
    with pytest.raises(SandboxException, match=status) as at_create:
        make(network=network)
    assert message in str(at_create.value)
    if "egress_proxy" in network or "allow_out" in network or "deny_out" in network:
        sandbox = make()
        with pytest.raises(SandboxException, match=status) as at_update:
            sandbox.update_network(network)
        assert message in str(at_update.value)


def test_allow_out_needs_internet(make: Callable[..., Sandbox]) -> None:
    with pytest.raises(SandboxException, match="400") as raised:
        make(allow_internet_access=False, network={"allow_out": [REGISTRY]})
    assert "ALL_TRAFFIC" in str(raised.value)


def test_a_pooled_sandbox_gets_its_rules_before_it_is_handed_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A warm pool's jail was launched with no rules: a create that takes it sets them first."""
    with sandbox_host(tmp_path, "--warm-pool", "1") as host:
        for name, value in host.env.items():
            monkeypatch.setenv(name, value)
        wait_until_filled(host, 1)
        waiting = pooled_ids(host, set())
        sandbox = Sandbox.create(timeout=120, network={"deny_out": [REGISTRY]})
        try:
            assert sandbox.sandbox_id in waiting
            assert reach(sandbox, REGISTRY)[REGISTRY] in BLOCKED
        finally:
            sandbox.kill()
