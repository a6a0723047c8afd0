"""E2B's outbound rules on the wire: ``network`` of a create, ``PUT /sandboxes/{id}/network``.

The rules themselves, and how they are enforced, are in ``jail.egress``. Here: reading what the SDK
sends (camelCase inside ``network``; ``allow_internet_access`` in an update), refusing what this
host does not serve with a message naming the field, and setting a running or paused sandbox's
rules at once.
"""

from __future__ import annotations

import asyncio
import ipaddress
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from ..errors import HostError
from ..jail import egress
from ..jail.egress import EgressRules, ResolvedEgress

if TYPE_CHECKING:
    from ..lifecycle.sandboxes import Sandbox, SandboxHost

# Fields of ``network`` this host does not serve: (wire name, SDK name, why).
_NOT_SERVED = (
    ("egressProxy", "egress_proxy", "a SOCKS5 egress proxy"),
    ("maskRequestHost", "mask_request_host", "a custom host mask for sandbox URLs"),
    ("httpsPorts", "https_ports", "HTTPS to ports inside the sandbox"),
    ("rules", "rules", "per-host request transforms"),
)


def _refuse_unserved(network: dict[str, Any]) -> None:
    for wire, name, what in _NOT_SERVED:
        if network.get(wire):  # absent, null, empty: nothing asked
            raise HostError(501, f"network.{name} ({what}) is not served by this host; leave it out")
    if network.get("allowPublicTraffic") is False:
        raise HostError(
            501,
            "network.allow_public_traffic=False is not served by this host: its published ports "
            "take no traffic token; leave it out",
        )


def _dns_servers(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > egress.MAX_DNS_SERVERS:
        raise ValueError(f"dns_servers must be a list of at most {egress.MAX_DNS_SERVERS} IPv4 addresses")
    for entry in value:
        try:
            ipaddress.IPv4Address(entry)
        except ValueError as exc:
            raise ValueError(f"dns_servers: {entry!r} is not an IPv4 address") from exc
    return tuple(value)


def parse(network: object, *, internet: bool = True) -> EgressRules:
    """The rules of a create's ``network`` or an update's body. Raises HostError(400/501).

    ``internet=False`` (``allow_internet_access`` false) is E2B's ``deny_out=["0.0.0.0/0"]``."""
    if not isinstance(network, dict):
        raise HostError(400, "network must be an object")
    _refuse_unserved(network)
    try:
        allow = egress.check_list(network.get("allowOut") or [], "allow_out")
        deny = egress.check_list(network.get("denyOut") or [], "deny_out")
        dns = _dns_servers(network.get("dnsServers"))
    except ValueError as exc:
        raise HostError(400, str(exc)) from exc
    if not internet and egress.ALL_TRAFFIC not in deny:
        deny = (*deny, egress.ALL_TRAFFIC)
    return EgressRules(allow_out=allow, deny_out=deny, dns_servers=dns)


async def resolve(host: SandboxHost, rules: EgressRules) -> ResolvedEgress:
    """The rules as addresses (DNS in a thread). Raises HostError(400)."""
    try:
        return await asyncio.to_thread(egress.resolve, rules, host.settings.block_private_networks)
    except ValueError as exc:
        raise HostError(400, str(exc)) from exc


async def for_create(host: SandboxHost, body: dict[str, Any], internet: bool) -> ResolvedEgress | None:
    """A create's rules resolved, or None when it asks for none. Raises HostError(400/501)."""
    if body.get("network") is None:
        return None
    rules = parse(body["network"])
    if not rules.allow_out and not rules.deny_out:
        return None
    if not internet and rules.allow_out:
        raise HostError(
            400,
            "allow_out needs the internet: a sandbox made with allow_internet_access=False has "
            'no outbound path; leave that out and put "0.0.0.0/0" (ALL_TRAFFIC) in deny_out instead',
        )
    return await resolve(host, rules)


def remember(sandbox: Sandbox, body: dict[str, Any]) -> None:
    """Keep what a create asked for, for get_info (rules checked by ``for_create`` already)."""
    if isinstance(body.get("network"), dict):
        sandbox.network = parse(body["network"])


async def update(host: SandboxHost, request: Request, body: dict[str, Any]) -> Response:
    """``PUT /sandboxes/{id}/network``: replace the sandbox's rules at once (204).

    Omitted fields are cleared, as E2B's update does. A paused sandbox's table is changed too
    and holds when it resumes. 409 for a sandbox made without internet (it has no path to open)."""
    sandbox = host.get(request.path_params["sandbox_id"])
    internet = body.get("allow_internet_access", body.get("allowInternetAccess", True))
    if not isinstance(internet, bool):
        raise HostError(400, "allow_internet_access must be true or false")
    rules = parse(body, internet=internet)
    resolved = await resolve(host, rules)
    uplink = sandbox.jail.uplink  # None also while paused to disk: the rules apply on resume
    if not sandbox.jail.internet and (rules.allow_out or egress.ALL_TRAFFIC not in rules.deny_out):
        raise HostError(
            409,
            f"sandbox {sandbox.sandbox_id} has no internet (made with allow_internet_access="
            "False, or this host gives none): its network cannot be opened; create a new one",
        )
    # Under the sandbox's transition lock: two updates land in the order they recorded, and a
    # kill (which takes it too) does not remove the namespace half-way through.
    async with sandbox.transition:
        if sandbox.state == "killed":
            raise HostError(404, f"sandbox {sandbox.sandbox_id} not found")
        if uplink is not None:
            try:
                await asyncio.to_thread(egress.apply, uplink.path, resolved)
            except OSError as exc:
                raise HostError(500, str(exc)) from exc
        sandbox.network = rules
    return Response(status_code=204)
