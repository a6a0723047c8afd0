"""Outbound network for a sandbox that may reach the internet, as E2B's ``allow_internet_access``.

Every jail has a network namespace of its own. Without internet, bwrap makes it and it holds only a
loopback. With internet, sandboxd makes a namespace (held by a sleeping process), starts slirp4netns
(a user-mode TCP/IP stack) on it, and starts the jail inside it: the sandbox's traffic leaves from
the host as ordinary sockets of slirp4netns. ``--disable-host-loopback`` keeps the host's 127.0.0.1
out, and a firewall chain of this sandboxd (iptables, matching slirp4netns's group) rejects every
address of the host itself and the private and link-local ranges, so no service of the host or its
networks (Redis, sandboxd, the workers, cloud metadata) is reachable. Where that chain cannot be
set, sandboxes get no internet: the host's safety comes first.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("e2bq.sandboxd")


# Never reachable from a sandbox: besides the host's own addresses (matched by type), private and
# link-local ranges, where cloud metadata services (169.254.169.254) and a deployment's Redis,
# workers and Flower live.
BLOCKED_RANGES = (
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "224.0.0.0/4",
    "240.0.0.0/4",
)


def _nameservers() -> list[str]:
    """The host's resolvers (slirp4netns forwards the sandbox's DNS to them): allowed, port 53 only."""
    servers = []
    with contextlib.suppress(OSError):
        for line in Path("/etc/resolv.conf").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver" and ":" not in parts[1]:
                servers.append(parts[1])
    return servers


def firewall_rules(chain: str, block_private: bool) -> list[list[str]]:
    """The rules of this sandboxd's chain, in order."""
    rules = [
        ["-A", chain, "-d", ns, "-p", proto, "--dport", "53", "-j", "ACCEPT"]
        for ns in _nameservers()
        for proto in ("udp", "tcp")
    ]
    rules.append(["-A", chain, "-m", "addrtype", "--dst-type", "LOCAL", "-j", "REJECT"])
    if block_private:
        rules += [["-A", chain, "-d", cidr, "-j", "REJECT"] for cidr in BLOCKED_RANGES]
    return rules


@dataclass
class Uplink:
    """A sandbox's network namespace (held open by a sleeping process) and the slirp4netns serving it."""

    holder: subprocess.Popen[bytes]
    slirp: subprocess.Popen[bytes] | None = None

    @property
    def path(self) -> str:
        return f"/proc/{self.holder.pid}/ns/net"


def _wait_for_own_netns(pid: int, timeout: float = 5.0) -> bool:
    """Until ``pid`` is in a network namespace other than sandboxd's (unshare has run)."""
    deadline = time.monotonic() + timeout
    mine = os.readlink("/proc/self/ns/net")
    while time.monotonic() < deadline:
        try:
            if os.readlink(f"/proc/{pid}/ns/net") != mine:
                return True
        except OSError:
            return False
        time.sleep(0.002)
    return False


class Network:
    def __init__(self, gid: int | None, *, block_private: bool = True) -> None:
        self.gid = gid
        self.block_private = block_private
        self.chain = f"E2BQ-{os.getpid()}"
        self.slirp = shutil.which("slirp4netns")
        self.iptables = shutil.which("iptables") if os.geteuid() == 0 else None
        self.ip = shutil.which("ip")
        self.sweep()  # what sandboxds that died left behind, before this one adds its own
        self.available = self._prepare()

    def _prepare(self) -> bool:
        if self.slirp is None or self.ip is None:
            log.warning(
                "slirp4netns or ip is missing: sandboxes get no internet "
                "(apt-get install slirp4netns iproute2)"
            )
            return False
        if self.gid is None or self.iptables is None:
            log.warning(
                "no firewall rule can keep the host's own addresses out of reach (needs root and "
                "iptables): sandboxes get no internet"
            )
            return False
        try:
            self._iptables("-N", self.chain)
            for rule in firewall_rules(self.chain, self.block_private):
                self._iptables(*rule)
            self._iptables("-I", "OUTPUT", *self._jump())
        except subprocess.CalledProcessError as exc:
            log.warning(
                "iptables refused e2bq's rules (%s): sandboxes get no internet",
                exc.stderr.decode(errors="replace").strip(),
            )
            self._remove_chain(self.chain)
            return False
        return True

    def _jump(self) -> list[str]:
        return ["-m", "owner", "--gid-owner", str(self.gid), "-j", self.chain]

    def _iptables(self, *args: str) -> None:
        assert self.iptables is not None
        subprocess.run([self.iptables, "-w", *args], check=True, capture_output=True)

    def _remove_chain(self, chain: str, gid: str | None = None) -> None:
        if self.iptables is None:
            return
        jump = ["-m", "owner", "--gid-owner", gid or str(self.gid), "-j", chain]
        while (
            subprocess.run([self.iptables, "-w", "-D", "OUTPUT", *jump], capture_output=True).returncode == 0
        ):
            pass
        subprocess.run([self.iptables, "-w", "-F", chain], capture_output=True)
        subprocess.run([self.iptables, "-w", "-X", chain], capture_output=True)

    def connect(self, sandbox_id: str, log_file: Path) -> Uplink | None:
        """A network namespace with outbound access for a new jail; None when not possible.

        slirp4netns runs in its own sandbox (``--enable-sandbox``: an empty root, no capability
        but binding low ports) under a seccomp filter, with the group the firewall matches. It keeps
        uid 0 — joining a namespace owned by the host needs it, and an unprivileged slirp4netns needs
        a world-writable /dev/net/tun — so a flaw in it is contained by those, not by its uid. The
        namespace's holder sleeps as ``nobody``; both die with sandboxd.
        """
        if not self.available or self.slirp is None or self.ip is None:
            return None
        with log_file.open("ab") as err:
            holder = subprocess.Popen(
                [
                    "unshare",
                    "--net",
                    "setpriv",
                    "--reuid=65534",
                    "--regid=65534",
                    "--clear-groups",
                    "--pdeathsig=KILL",
                    "sleep",
                    "infinity",
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        uplink = Uplink(holder)
        if not _wait_for_own_netns(holder.pid):
            log.warning("cannot make a network namespace for %s", sandbox_id)
            self.disconnect(uplink)
            return None
        subprocess.run(
            ["nsenter", f"--net={uplink.path}", self.ip, "link", "set", "lo", "up"], capture_output=True
        )
        read_fd, write_fd = os.pipe()
        try:
            with log_file.open("ab") as err:
                uplink.slirp = subprocess.Popen(
                    [
                        "setpriv",
                        f"--regid={self.gid}",
                        "--clear-groups",
                        "--pdeathsig=KILL",
                        self.slirp,
                        "--configure",
                        "--mtu=65520",
                        "--disable-host-loopback",
                        "--enable-sandbox",
                        "--enable-seccomp",
                        f"--ready-fd={write_fd}",
                        str(holder.pid),
                        "tap0",
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                    pass_fds=(write_fd,),
                )
        finally:
            os.close(write_fd)
        with os.fdopen(read_fd, "rb") as ready:
            if ready.read(1) == b"1":
                return uplink
        log.warning("slirp4netns failed for %s (see %s)", sandbox_id, log_file)
        self.disconnect(uplink)
        return None

    @staticmethod
    def disconnect(uplink: Uplink | None) -> None:
        if uplink is None:
            return
        for proc in (uplink.slirp, uplink.holder):
            if proc is None:
                continue
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)

    def sweep(self) -> None:
        """Delete the firewall chains of sandboxd processes that died."""
        if self.iptables is not None and self.gid is not None:
            listing = subprocess.run([self.iptables, "-w", "-S"], capture_output=True, text=True).stdout
            for line in listing.splitlines():
                if line.startswith("-N E2BQ-"):
                    chain = line.split()[1]
                    owner = chain.removeprefix("E2BQ-")
                    if owner.isdigit() and not Path(f"/proc/{owner}").exists():
                        self._remove_chain(chain)

    def close(self) -> None:
        """Remove this sandboxd's own chain (other sandboxds keep theirs)."""
        if self.available:
            self._remove_chain(self.chain)
