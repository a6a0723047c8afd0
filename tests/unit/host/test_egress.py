"""A sandbox's outbound rules as sandboxd writes them (``jail.egress``): entries checked, names
resolved, closed ranges refused, and the table iptables-restore takes in a real namespace."""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from e2bq.sandboxd.jail import egress
from e2bq.sandboxd.jail.egress import EgressRules


@pytest.mark.parametrize("entry", ["1.1.1.1", "8.8.8.0/24", "10.0.0.5/8", "pypi.org", "a-b.example.com."])
def test_addresses_cidrs_and_names_are_entries(entry: str) -> None:
    assert egress.check_entry(entry, "allow_out") == entry


@pytest.mark.parametrize(
    ("entry", "said"),
    [
        ("", "non-empty string"),
        (7, "non-empty string"),
        ("-bad-.com", "neither"),
        ("a b", "neither"),
        ("x" * 64 + ".com", "neither"),
        ("*.example.com", "wildcard"),
        ("2001:db8::/32", "no IPv6"),
    ],
)
def test_bad_entries_say_what_is_wrong(entry: object, said: str) -> None:
    with pytest.raises(ValueError, match=said):
        egress.check_entry(entry, "deny_out")


def test_a_list_has_a_limit() -> None:
    with pytest.raises(ValueError, match="at most 256"):
        egress.check_list(["1.1.1.1"] * 257, "deny_out")
    with pytest.raises(ValueError, match="must be a list"):
        egress.check_list("1.1.1.1", "deny_out")


def test_allows_come_before_denies() -> None:
    rules = EgressRules(allow_out=("1.1.1.1", "9.9.9.0/24"), deny_out=(egress.ALL_TRAFFIC,))
    resolved = egress.resolve(rules, block_private=True)
    table = egress.filter_table(resolved).splitlines()
    allow = table.index("-A OUTPUT -d 1.1.1.1/32 -j ACCEPT")
    deny = table.index("-A OUTPUT -d 0.0.0.0/0 -p tcp -j REJECT --reject-with tcp-reset")
    assert table.index("-A OUTPUT -o lo -j ACCEPT") < allow < deny
    assert not any("--dport 53" in line for line in table)  # no name allowed: DNS is not opened


def test_a_name_in_allow_out_keeps_the_resolver_open() -> None:
    assert EgressRules(allow_out=("pypi.org",)).names_hosts
    assert not EgressRules(allow_out=("1.1.1.1",), deny_out=("pypi.org",)).names_hosts
    all_denied = (ipaddress.IPv4Network(egress.ALL_TRAFFIC),)
    table = egress.filter_table(egress.ResolvedEgress(allow=(), deny=all_denied, dns=True)).splitlines()
    resolver = f"-A OUTPUT -d {egress.SANDBOX_RESOLVER}/32 -p udp --dport 53 -j ACCEPT"
    assert table.index(resolver) < table.index("-A OUTPUT -d 0.0.0.0/0 -j REJECT")


@pytest.mark.parametrize("entry", ["127.0.0.1", "127.0.0.0/8", "169.254.169.254", "10.1.0.0/16", "localhost"])
def test_allow_out_never_opens_closed_ranges(entry: str) -> None:
    with pytest.raises(ValueError, match="stays closed"):
        egress.resolve(EgressRules(allow_out=(entry,)), block_private=True)


def test_private_ranges_open_only_when_the_host_allows_them() -> None:
    resolved = egress.resolve(EgressRules(allow_out=("10.1.0.0/16",)), block_private=False)
    assert resolved.allow == (ipaddress.IPv4Network("10.1.0.0/16"),)
    with pytest.raises(ValueError, match="stays closed"):
        egress.resolve(EgressRules(allow_out=("127.0.0.1",)), block_private=False)


def test_a_range_around_closed_ones_is_accepted() -> None:
    """0.0.0.0/0 holds the private ranges, but the host's chain still closes them underneath."""
    resolved = egress.resolve(EgressRules(allow_out=(egress.ALL_TRAFFIC,)), block_private=True)
    assert resolved.allow == (ipaddress.IPv4Network("0.0.0.0/0"),)


@pytest.fixture
def namespace() -> Iterator[str]:
    if os.geteuid() != 0 or shutil.which("iptables-restore") is None:
        pytest.skip("needs root and iptables")
    holder = subprocess.Popen(["unshare", "--net", "sleep", "infinity"])
    try:
        path = f"/proc/{holder.pid}/ns/net"
        mine = os.readlink("/proc/self/ns/net")
        for _ in range(500):
            if os.readlink(path) != mine:
                break
        yield path
    finally:
        holder.kill()
        holder.wait()


def test_the_table_is_replaced_whole(namespace: str) -> None:
    first = egress.resolve(EgressRules(deny_out=("1.2.3.4",)), block_private=True)
    second = egress.resolve(EgressRules(deny_out=("5.6.7.8",)), block_private=True)
    egress.apply(namespace, first)
    egress.apply(namespace, second)
    listed = subprocess.run(
        ["nsenter", f"--net={namespace}", "iptables", "-S", "OUTPUT"], capture_output=True, text=True
    ).stdout
    assert "5.6.7.8/32" in listed and "1.2.3.4" not in listed
