"""Outbound network for a sandbox that may reach the internet, as E2B's ``allow_internet_access``.

Every jail has a network namespace of its own. Without internet, bwrap makes it and it holds only a
loopback. With internet, sandboxd makes a named namespace (``ip netns``), starts slirp4netns (a
user-mode TCP/IP stack) on it, and starts the jail inside it: the sandbox's traffic leaves from the
host as ordinary sockets of slirp4netns. ``--disable-host-loopback`` keeps the host's 127.0.0.1 out,
and a firewall rule (iptables, matching slirp4netns's group) rejects every address of the host itself,
so no service of the host (Redis, sandboxd, the workers) is reachable. Where that rule cannot be
set, sandboxes get no internet: the host's safety comes first.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("e2bq.sandboxd")


def _rule(gid: int) -> list[str]:
    return [
        "OUTPUT",
        "-m",
        "owner",
        "--gid-owner",
        str(gid),
        "-m",
        "addrtype",
        "--dst-type",
        "LOCAL",
        "-j",
        "REJECT",
    ]


@dataclass
class Uplink:
    """A sandbox's named network namespace and the slirp4netns serving it."""

    name: str
    proc: subprocess.Popen[bytes]

    @property
    def path(self) -> str:
        return f"/run/netns/{self.name}"


class Network:
    def __init__(self, gid: int | None) -> None:
        self.gid = gid
        self.slirp = shutil.which("slirp4netns")
        self.iptables = shutil.which("iptables")
        self.ip = shutil.which("ip")
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
        if subprocess.run([self.iptables, "-C", *_rule(self.gid)], capture_output=True).returncode != 0:
            added = subprocess.run([self.iptables, "-I", *_rule(self.gid)], capture_output=True)
            if added.returncode != 0:
                log.warning(
                    "iptables refused the rule (%s): sandboxes get no internet",
                    added.stderr.decode(errors="replace").strip(),
                )
                return False
        return True

    def connect(self, sandbox_id: str, log_file: Path) -> Uplink | None:
        """A network namespace with outbound access for a new jail; None when not possible."""
        if not self.available or self.slirp is None or self.ip is None:
            return None
        name = f"e2bq-{os.getpid()}-{sandbox_id}"
        try:
            subprocess.run([self.ip, "netns", "add", name], check=True, capture_output=True)
            subprocess.run([self.ip, "-n", name, "link", "set", "lo", "up"], check=True, capture_output=True)
        except subprocess.CalledProcessError as exc:
            log.warning("cannot make a network namespace: %s", exc.stderr.decode(errors="replace"))
            self._delete(name)
            return None
        read_fd, write_fd = os.pipe()
        try:
            with log_file.open("ab") as err:
                proc = subprocess.Popen(
                    [
                        "setpriv",
                        f"--regid={self.gid}",
                        "--clear-groups",
                        self.slirp,
                        "--configure",
                        "--mtu=65520",
                        "--disable-host-loopback",
                        "--enable-seccomp",
                        f"--ready-fd={write_fd}",
                        "--netns-type=path",
                        f"/run/netns/{name}",
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
                return Uplink(name, proc)
        log.warning("slirp4netns failed for %s (see %s)", sandbox_id, log_file)
        self.disconnect(Uplink(name, proc))
        return None

    def disconnect(self, uplink: Uplink | None) -> None:
        if uplink is None:
            return
        with contextlib.suppress(ProcessLookupError):
            uplink.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            uplink.proc.wait(timeout=5)
        self._delete(uplink.name)

    def _delete(self, name: str) -> None:
        if self.ip is not None:
            subprocess.run([self.ip, "netns", "delete", name], capture_output=True)

    def sweep(self) -> None:
        """Delete the namespaces of sandboxd processes that died without cleaning up."""
        netns = Path("/run/netns")
        for path in netns.glob("e2bq-*-*") if netns.is_dir() else []:
            owner = path.name.split("-")[1]
            if owner.isdigit() and not Path(f"/proc/{owner}").exists():
                self._delete(path.name)

    def close(self) -> None:
        if self.available and self.iptables and self.gid is not None:
            subprocess.run([self.iptables, "-D", *_rule(self.gid)], capture_output=True)
