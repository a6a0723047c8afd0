"""A sandbox's outbound rules, E2B's ``network={"allow_out": ..., "deny_out": ...}``.

The rules are an iptables filter table inside the sandbox's own network namespace (the one
``network.Network.connect`` makes and slirp4netns serves), written by root with ``nsenter``. Why
there and not in the host's chain: every slirp4netns runs with the same group, so the host's chain
cannot tell one sandbox's traffic from another's, while a namespace's table is the sandbox's alone,
goes away with it, and is replaced in one ``iptables-restore`` (an update is atomic). The jail
cannot change it: the namespace belongs to the host's user namespace and the jail runs in a user
namespace of its own with every capability dropped, so it has no CAP_NET_ADMIN over it.

These rules only narrow what the host's chain lets through: the host's own addresses and the
private and link-local ranges stay closed whatever ``allow_out`` says, and an entry that names only
such addresses is refused outright (a clear 400 rather than a rule that cannot work).

Order, as E2B documents it: ``allow_out`` wins over ``deny_out``; what neither names is allowed.
Host names are resolved to IPv4 addresses when the rules are set (at create and at every
``update_network``), so a name is only as good as that resolution: every name sharing an address
is allowed or denied with it, and a name that later moves keeps its old addresses until the next
update. Rules are stateless: an update takes effect on the next packet, so an open connection to
an address just denied stops there.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import subprocess
from dataclasses import dataclass
from typing import TypedDict

from .network import BLOCKED_RANGES

ALL_TRAFFIC = "0.0.0.0/0"
MAX_ENTRIES = 256  # per list: more is almost surely a mistake, and each is an iptables rule
MAX_DNS_SERVERS = 10  # as E2B
SANDBOX_RESOLVER = "10.0.2.3"  # slirp4netns's DNS forwarder, the jail's only nameserver
# Never opened by allow_out, whatever the host's settings: the host's loopback and "this network".
NEVER_OPEN = ("0.0.0.0/8", "127.0.0.0/8")
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$", re.IGNORECASE)

Net = ipaddress.IPv4Network


class EgressInfo(TypedDict, total=False):
    """The ``network`` of a sandbox's detail, as E2B's API returns it (camelCase on the wire)."""

    allowOut: list[str]
    denyOut: list[str]
    dnsServers: list[str]


@dataclass(frozen=True)
class EgressRules:
    """What a client asked for, entries as given (names unresolved)."""

    allow_out: tuple[str, ...] = ()
    deny_out: tuple[str, ...] = ()
    dns_servers: tuple[str, ...] | None = None

    def info(self) -> EgressInfo:
        info: EgressInfo = {"allowOut": list(self.allow_out), "denyOut": list(self.deny_out)}
        if self.dns_servers is not None:
            info["dnsServers"] = list(self.dns_servers)
        return info

    @property
    def names_hosts(self) -> bool:
        """Whether ``allow_out`` holds a host name (then DNS must stay open, as E2B keeps it)."""
        return any(_as_network(entry) is None for entry in self.allow_out)


@dataclass(frozen=True)
class ResolvedEgress:
    """The rules as addresses: what the namespace's table is written from."""

    allow: tuple[Net, ...]
    deny: tuple[Net, ...]
    dns: bool  # the jail's resolver stays open whatever deny says


def _as_network(entry: str) -> Net | None:
    """``entry`` as an IPv4 network, or None if it is not an address or CIDR (a host name, then)."""
    try:
        net = ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return None
    if not isinstance(net, ipaddress.IPv4Network):
        raise ValueError(
            f"{entry!r}: sandboxes of this host have no IPv6 route; give IPv4 addresses or CIDRs"
        )
    return net


def check_entry(entry: object, field: str) -> str:
    """``entry`` if it is an IPv4 address, CIDR or host name; raises ValueError naming it."""
    if not isinstance(entry, str) or not entry.strip():
        raise ValueError(f"{field}: every entry must be a non-empty string, not {entry!r}")
    entry = entry.strip()
    if _as_network(entry) is not None:
        return entry
    if "*" in entry:
        raise ValueError(
            f"{field}: {entry!r}: wildcard names are not served by this host, which filters by "
            "address: list each host name"
        )
    name = entry.rstrip(".")
    if len(name) > 253 or not all(_HOST_LABEL.match(label) for label in name.split(".")):
        raise ValueError(f"{field}: {entry!r} is neither an IPv4 address, a CIDR nor a host name")
    return entry


def check_list(value: object, field: str, limit: int = MAX_ENTRIES) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError(f"{field} must be a list of IPv4 addresses, CIDRs or host names")
    if len(value) > limit:
        raise ValueError(f"{field} holds {len(value)} entries; at most {limit} are allowed")
    return tuple(check_entry(entry, field) for entry in value)


def closed_ranges(block_private: bool) -> list[Net]:
    """What no allow_out entry may name: the host's own addresses and loopback, and (unless the
    host lets sandboxes reach private networks) the private and link-local ranges."""
    ranges = [*NEVER_OPEN, *(BLOCKED_RANGES if block_private else ())]
    nets = [ipaddress.IPv4Network(cidr) for cidr in ranges]
    return nets + [ipaddress.IPv4Network(f"{address}/32") for address in host_addresses()]


def host_addresses() -> list[str]:
    """This host's own IPv4 addresses (``ip -4 addr``)."""
    out = subprocess.run(
        ["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=False
    ).stdout
    return [line.split()[3].split("/")[0] for line in out.splitlines() if len(line.split()) > 3]


def _resolve_name(name: str) -> list[Net]:
    """IPv4 addresses of ``name`` now; raises ValueError when it does not resolve."""
    try:
        infos = socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)
    except OSError as exc:
        raise ValueError(f"{name!r} does not resolve from this host ({exc}); fix the name") from exc
    return sorted({ipaddress.IPv4Network(f"{info[4][0]}/32") for info in infos})


def _addresses(entries: tuple[str, ...]) -> list[tuple[str, Net]]:
    found: list[tuple[str, Net]] = []
    for entry in entries:
        net = _as_network(entry)
        found += [(entry, net)] if net is not None else [(entry, n) for n in _resolve_name(entry)]
    return found


def resolve(rules: EgressRules, block_private: bool) -> ResolvedEgress:
    """The rules as addresses. Raises ValueError for a name that does not resolve, and for an
    allow_out entry (or a name's address, or a DNS server) that lies wholly in a closed range.
    Blocks on DNS: call it from a thread."""
    closed = closed_ranges(block_private)
    allowed = _addresses(rules.allow_out)
    servers = [(s, n) for s, n in _addresses(rules.dns_servers or ()) if rules.names_hosts]
    for entry, net in allowed + servers:
        shut = next((c for c in closed if net.subnet_of(c)), None)
        if shut is not None:
            shown = entry if str(net) in (entry, f"{entry}/32") else f"{entry} ({net.network_address})"
            raise ValueError(
                f"allow_out cannot open {shown}: it lies in {shut}, which stays closed to sandboxes "
                "(this host's own addresses, loopback, private and link-local ranges: where Redis, "
                "the workers and cloud metadata live)"
            )
    deny = [net for _, net in _addresses(rules.deny_out)]
    return ResolvedEgress(
        allow=tuple(dict.fromkeys(net for _, net in allowed + servers)),
        deny=tuple(dict.fromkeys(deny)),
        dns=rules.names_hosts,
    )


def filter_table(resolved: ResolvedEgress) -> str:
    """The namespace's whole filter table, as ``iptables-restore`` reads it."""
    lines = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    lines.append("-A OUTPUT -o lo -j ACCEPT")
    if resolved.dns:
        lines += [f"-A OUTPUT -d {SANDBOX_RESOLVER}/32 -p {p} --dport 53 -j ACCEPT" for p in ("udp", "tcp")]
    lines += [f"-A OUTPUT -d {net} -j ACCEPT" for net in resolved.allow]
    # tcp-reset makes a denied connect fail at once (ECONNREFUSED), as a closed port does.
    for net in resolved.deny:
        lines.append(f"-A OUTPUT -d {net} -p tcp -j REJECT --reject-with tcp-reset")
        lines.append(f"-A OUTPUT -d {net} -j REJECT")
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def apply(netns: str, resolved: ResolvedEgress) -> None:
    """Replace the namespace's filter table in one step. Raises OSError when iptables refuses."""
    done = subprocess.run(
        ["nsenter", f"--net={netns}", "iptables-restore", "-w"],
        input=filter_table(resolved).encode(),
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        raise OSError(f"iptables-restore refused the sandbox's rules: {done.stderr.decode().strip()}")
