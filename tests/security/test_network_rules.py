"""Outbound rules (``network=``, ``update_network``) under attack: they cannot be lifted from inside,
and no allow_out opens the host, its Redis, its private networks or cloud metadata.

The rules live in the sandbox's network namespace, which belongs to the host's user namespace; the
jail has no capability there, so iptables inside fails whatever user it runs as. The host's own
chain stays underneath every sandbox's rules, so even an allow of all traffic reaches none of the
host's listeners.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest
from e2b import ALL_TRAFFIC, SandboxException
from e2b_code_interpreter import Sandbox

from tests.procs import SandboxHostProcess
from tests.security.harness import run
from tests.security.probes import Listener, host_addresses
from tests.security.test_network import SLIRP_GATEWAY, probe, redis_like

__all__ = ["redis_like"]  # the fixture, used by name below

REGISTRY = "pypi.org"
METADATA = "169.254.169.254"
LIFT_ATTEMPTS = (  # each binary is there (/usr is the host's): refused for want of permission
    "/usr/sbin/iptables -w -F OUTPUT",
    "/usr/sbin/iptables -w -P OUTPUT ACCEPT",
    "printf '*filter\\nCOMMIT\\n' | /usr/sbin/iptables-restore",
    "/usr/sbin/iptables-nft -F OUTPUT",
    "/usr/sbin/iptables-legacy -F OUTPUT",
)
REACH = (
    'python -c "import socket, sys\n'
    "try:\n"
    f"    socket.create_connection(('{REGISTRY}', 443), timeout=5); print('connected')\n"
    "except OSError as exc:\n"
    '    print(type(exc).__name__)"'
)


def reach_registry(sandbox: Sandbox) -> str:
    result = run(sandbox, REACH, timeout=60)
    return result.stdout.strip()


@pytest.mark.parametrize("user", ["user", "root"])
def test_rules_cannot_be_lifted_from_inside(make_sandbox: Callable[..., Sandbox], user: str) -> None:
    sandbox = make_sandbox(network={"deny_out": [REGISTRY]})
    if reach_registry(sandbox) == "gaierror":
        pytest.skip(f"{REGISTRY} does not resolve on this machine")
    assert reach_registry(sandbox) == "ConnectionRefusedError"

    outcomes = {attempt: run(sandbox, attempt, user=user) for attempt in LIFT_ATTEMPTS}

    seen = {attempt: (result.exit_code, result.stderr) for attempt, result in outcomes.items()}
    assert all(code != 0 and "not found" not in err for code, err in seen.values()), seen
    assert reach_registry(sandbox) == "ConnectionRefusedError"


def host_addresses_v4() -> list[str]:
    return [address for address in host_addresses() if ":" not in address]


@pytest.mark.parametrize("where", ["create", "update"])
def test_allow_out_cannot_name_the_host_or_private_ranges(
    make_sandbox: Callable[..., Sandbox], where: str
) -> None:
    for target in ["127.0.0.1", METADATA, "10.0.0.1", "192.168.1.1", *host_addresses_v4()]:
        network = {"allow_out": [target], "deny_out": [ALL_TRAFFIC]}
        with pytest.raises(SandboxException, match="400") as raised:
            if where == "create":
                make_sandbox(network=network)
            else:
                make_sandbox().update_network(network)
        assert "stays closed" in str(raised.value), target


def test_allowing_all_traffic_still_reaches_nothing_of_the_host(
    make_sandbox: Callable[..., Sandbox], host: SandboxHostProcess, redis_like: Listener
) -> None:
    sandbox = make_sandbox(network={"allow_out": [ALL_TRAFFIC], "deny_out": [ALL_TRAFFIC]})
    sandbox.update_network({"allow_out": [ALL_TRAFFIC, "8.0.0.0/5"]})
    sandboxd_port = urlsplit(host.url).port
    assert sandboxd_port is not None
    targets = [
        ("127.0.0.1", redis_like.port),
        ("127.0.0.1", sandboxd_port),
        (SLIRP_GATEWAY, redis_like.port),
        (METADATA, 80),
        *[(address, redis_like.port) for address in host_addresses_v4()],
        *[(address, sandboxd_port) for address in host_addresses_v4()],
    ]

    outcomes = probe(sandbox, targets)

    reached = {target: outcome for target, outcome in outcomes.items() if outcome.startswith("connected")}
    assert reached == {}, json.dumps(outcomes)
    assert redis_like.accepted == []
