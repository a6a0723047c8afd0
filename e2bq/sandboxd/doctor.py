"""What sandboxd needs from its host, checked one item at a time (``e2bq doctor``, and sandboxd's start).

Each check names what it found, or what is missing and how to get it. sandboxd refuses to start while
any check fails: a sandbox without its namespaces, cgroups, disk image or firewall would run with
weaker isolation or limits than the ones it promises.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import TemplateError
from .jail import leftovers
from .jail.bwrap import SECCOMP_FILE, system_binds
from .jail.cgroups import ROOT as CGROUP_ROOT
from .jail.cgroups import sweep_dead
from .jail.leftovers import sweep_chains
from .runtime import REQUIREMENTS, runtime_is_current
from .templates.store import TemplateStore

# What E2B's SDKs create on by default: the code interpreter SDK, the plain one.
SHIPPED_DEFAULTS = ("code-interpreter-v1", "base")

PROBE_TIMEOUT = 10.0
NOBODY = 65534
_V1_CONTROLLERS = ("memory", "pids", "cpu")


@dataclass(frozen=True)
class Finding:
    """One item of the host: ``ok``, what was found (``detail``), and what to do when it is missing."""

    item: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True  # False: sandboxd runs without it, with less to offer

    def line(self) -> str:
        if self.ok:
            return f"OK       {self.item}: {self.detail}"
        return f"{'MISSING' if self.required else 'WARN':<8} {self.item}: {self.detail}; {self.fix}"


def _tool(item: str, command: str, package: str) -> Finding:
    path = shutil.which(command) or shutil.which(command, path="/usr/sbin:/sbin")
    if path is None:
        return Finding(item, False, f"{command} not found", f"apt-get install {package}")
    return Finding(item, True, path)


def _run(argv: list[str], *, as_user: int | None = None) -> subprocess.CompletedProcess[str]:
    """Run a probe (as ``as_user``, uid and gid, when given); its output captured as text."""
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=PROBE_TIMEOUT, check=False,
        user=as_user, group=as_user, extra_groups=[] if as_user is not None else None,
    )


def check_root() -> Finding:
    if os.geteuid() == 0:
        return Finding("root", True, "running as root")
    return Finding(
        "root", False, f"running as uid {os.geteuid()}",
        "run sandboxd as root: it makes cgroups, disk images and firewall rules for each sandbox",
    )


def check_bubblewrap() -> Finding:
    found = _tool("bubblewrap", "bwrap", "bubblewrap")
    if not found.ok:
        return found
    version = _run([found.detail, "--version"]).stdout.strip()
    return Finding("bubblewrap", True, f"{found.detail} ({version or 'version unknown'})")


def check_namespaces() -> Finding:
    """Start an empty jail the way sandboxd does: an unprivileged user in new user, PID, IPC, UTS and
    network namespaces."""
    item = "user, pid and network namespaces"
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return Finding(item, False, "not checked: bubblewrap is missing", "apt-get install bubblewrap")
    argv = [
        bwrap, "--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-net",
        "--die-with-parent", "--new-session", *system_binds(), "--proc", "/proc", "/usr/bin/true",
    ]  # not all of /: a host busy mounting and unmounting sandboxes' disks would make that fail
    try:
        result = _run(argv, as_user=NOBODY if os.geteuid() == 0 else None)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Finding(item, False, f"bwrap could not run: {exc}", "reinstall bubblewrap")
    if result.returncode != 0:
        return Finding(
            item, False, f"an unprivileged jail failed: {result.stderr.strip() or result.returncode}",
            "enable unprivileged user namespaces (sysctl -w kernel.unprivileged_userns_clone=1 "
            "user.max_user_namespaces=15000); in a container, run it privileged",
        )
    return Finding(item, True, "an unprivileged jail starts")


def check_cgroups() -> Finding:
    item = "cgroups (memory, pids, cpu)"
    wanted = set(_V1_CONTROLLERS)
    controllers = CGROUP_ROOT / "cgroup.controllers"
    if controllers.exists():
        present = set(controllers.read_text().split())
        if not wanted <= present:
            return Finding(
                item, False, f"cgroup v2 lacks {', '.join(sorted(wanted - present))}",
                "enable the controllers in the parent's cgroup.subtree_control (or boot with them)",
            )
        if not os.access(CGROUP_ROOT, os.W_OK):
            return Finding(item, False, "cgroup v2 is read-only here", "mount /sys/fs/cgroup read-write")
        return Finding(item, True, "cgroup v2")
    missing = [name for name in _V1_CONTROLLERS if not (CGROUP_ROOT / name).is_dir()]
    if missing:
        return Finding(
            item, False, f"no cgroup v2 and no v1 controller for {', '.join(missing)}",
            "mount the cgroup v1 memory, pids and cpu controllers under /sys/fs/cgroup, or use cgroup v2",
        )
    unwritable = [name for name in _V1_CONTROLLERS if not os.access(CGROUP_ROOT / name, os.W_OK)]
    if unwritable:
        return Finding(
            item, False, f"cgroup v1 {', '.join(unwritable)} read-only here",
            "run as root with /sys/fs/cgroup writable (in a container: privileged)",
        )
    return Finding(item, True, "cgroup v1")


def check_tun() -> Finding:
    item = "/dev/net/tun"
    if Path("/dev/net/tun").exists():
        return Finding(item, True, "present")
    return Finding(item, False, "absent", "modprobe tun (in a container: pass --device /dev/net/tun)")


def check_iptables() -> Finding:
    found = _tool("iptables", "iptables", "iptables")
    if not found.ok or os.geteuid() != 0:
        return found
    result = _run([found.detail, "-w", "-n", "-L", "OUTPUT"])
    if result.returncode != 0:
        return Finding(
            "iptables", False, f"iptables cannot list rules: {result.stderr.strip()}",
            "load the kernel's netfilter modules (in a container: add NET_ADMIN or run it privileged)",
        )
    return found


def check_loop_devices() -> Finding:
    item = "loop devices"
    if not Path("/dev/loop-control").exists():
        fix = "modprobe loop (in a container: run it privileged)"
        return Finding(item, False, "/dev/loop-control is absent", fix)
    return _tool(item, "losetup", "mount")


def check_runtime(runtime: Path) -> Finding:
    item = "sandbox runtime"
    fix = f"run `e2bq sandboxd install-runtime --target {runtime}` (as root)"
    if not (runtime / "bin" / "python").exists():
        return Finding(item, False, f"{runtime} is not built", fix)
    if not (runtime / SECCOMP_FILE).exists():
        return Finding(item, False, f"{runtime} has no seccomp filter", fix)
    if not runtime_is_current(runtime):
        return Finding(item, False, f"{runtime} was built from another {REQUIREMENTS.name}", fix)
    return Finding(item, True, f"{runtime}, built from this e2bq's lock")


def check_templates(folder: Path, *, host_root: bool) -> Finding:
    """Whether the templates SDKs create on by default are built (sandboxd runs without them, but
    a create on one then answers 404, or runs on the host's system folders with host_root)."""
    store = TemplateStore(folder)
    missing = []
    for name in SHIPPED_DEFAULTS:
        try:
            store.get(name)
        except (TemplateError, OSError, ValueError):
            missing.append(name)
    item = "shipped templates"
    if not missing:
        return Finding(item, True, f"{', '.join(SHIPPED_DEFAULTS)} built in {folder}")
    then = "run on the host's system folders" if host_root else "answer 404"
    builds = " and ".join(f"`e2bq template build {name}`" for name in missing)
    return Finding(
        item, False, f"{', '.join(missing)} not built in {folder}: creates on them {then}",
        f"run {builds} (as root; `make install` does)", required=False,
    )


def checks(runtime: Path) -> list[Callable[[], Finding]]:
    return [
        check_root,
        check_bubblewrap,
        check_namespaces,
        check_cgroups,
        lambda: _tool("setpriv", "setpriv", "util-linux"),
        lambda: _tool("slirp4netns", "slirp4netns", "slirp4netns"),
        check_tun,
        lambda: _tool("ip", "ip", "iproute2"),
        check_iptables,
        check_loop_devices,
        lambda: _tool("mkfs.ext4", "mkfs.ext4", "e2fsprogs"),
        lambda: check_runtime(runtime),
    ]


def fix() -> list[str]:
    """Reclaim what sandboxd runs that died left behind — mounted disk images, loop devices,
    cgroups, firewall chains — found by e2bq's marks, whatever their state folder; what was done.
    A running sandboxd's are left alone (see ``jail.leftovers``)."""
    return [*leftovers.reclaim_disks(), *(f"removed cgroup {path}" for path in sweep_dead()), *sweep_chains()]


def examine(runtime: Path) -> list[Finding]:
    """Every finding about this host, in the order ``e2bq doctor`` prints them."""
    return [check() for check in checks(runtime)]
