"""What a sandboxd that died left behind, found by e2bq's marks and reclaimed whatever its state folder.

A sandboxd killed with SIGKILL ends its jails (they die with their parent) but leaves its sandboxes'
disk images mounted on loop devices, their cgroups and its firewall chain. The next sandboxd start,
and ``e2bq doctor --fix``, reclaim them without reading any state folder (the new sandboxd may use
another one, and the old one may be gone):

- A run of sandboxd is named by its pid and its start time (clock ticks since boot, field 22 of
  ``/proc/<pid>/stat``): ``<pid>-<ticks>``. A pid taken over by another process after the run died
  has another start time, so it never passes for the run.
- A sandbox's disk image is the file ``disk.e2bq-run-<pid>-<ticks>.img``. Its loop device shows that
  path as its backing file (``/sys/block/loopN/loop/backing_file``), and its mounts are the ones of
  that device in ``/proc/self/mountinfo``.
- A run's leftovers are reclaimed only when the run is dead: the mounts unmounted, the loop device
  detached, the image deleted. Anything without the mark (another program's loop devices, the
  ``disk.img`` of older e2bq versions) and anything of a live run is never touched.
- A sandbox made from layers has an overlay on its image (see ``layers``), mounted with the source
  name ``e2bq-run-<pid>-<ticks>``. The overlays of dead runs go first (they hold the image busy),
  also when something else has already unmounted the image beneath. A template's root overlay names
  its lower layers by absolute paths (idmapped mounts in the jail's folder, see ``rootfs``): those
  go after it.
- cgroups (``e2bq-<pid>``) and firewall chains (``E2BQ-<pid>``) are named by pid: their sweeps
  (``Cgroups.sweep``, :func:`sweep_chains`) take those whose pid no process has.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("e2bq.sandboxd")

RUN_MARK = "e2bq-run-"
_IMAGE = re.compile(rf"^disk\.{RUN_MARK}(\d+)-(\d+)\.img$")
_OVERLAY = re.compile(rf"^{RUN_MARK}(\d+)-(\d+)$")
_DELETED = " (deleted)"
_LOOPS = Path("/sys/block")
_TIMEOUT = 60.0


def _start_ticks(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot; None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: count fields after it.
    return int(stat.rpartition(")")[2].split()[19])


@functools.cache
def this_run() -> str:
    """This process's run name, ``<pid>-<ticks>``."""
    return f"{os.getpid()}-{_start_ticks(os.getpid())}"


def image_name() -> str:
    """The file name of a disk image this run makes: it carries the run's mark."""
    return f"disk.{RUN_MARK}{this_run()}.img"


def overlay_source() -> str:
    """The source name of an overlay this run mounts: it carries the run's mark."""
    return f"{RUN_MARK}{this_run()}"


def run_alive(pid: int, ticks: int) -> bool:
    return _start_ticks(pid) == ticks


@dataclass(frozen=True)
class LoopImage:
    """A loop device backed by a marked disk image, and the run that made it."""

    device: str  # /dev/loopN
    numbers: str  # major:minor, as mountinfo shows it
    image: Path
    pid: int
    ticks: int

    @property
    def alive(self) -> bool:
        return run_alive(self.pid, self.ticks)


def marked_loops() -> list[LoopImage]:
    """Every loop device whose backing file is a disk image made by some sandboxd run."""
    found = []
    for folder in sorted(_LOOPS.glob("loop*")):
        try:
            backing = (folder / "loop" / "backing_file").read_text().strip()
            numbers = (folder / "dev").read_text().strip()
        except OSError:  # not attached
            continue
        image = Path(backing.removesuffix(_DELETED))
        match = _IMAGE.match(image.name)
        if match:
            pid, ticks = int(match[1]), int(match[2])
            found.append(LoopImage(f"/dev/{folder.name}", numbers, image, pid, ticks))
    return found


def _mountpoints(numbers: str) -> list[str]:
    """Where the device ``numbers`` (major:minor) is mounted in this mount namespace, deepest first."""
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[2] == numbers:
            # mountinfo escapes space, tab, newline and backslash as octal
            points.append(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), fields[4]))
    return sorted(points, key=len, reverse=True)


def _dead_overlays() -> list[tuple[str, int]]:
    """(mount point, pid) of every overlay mounted by a sandboxd run that is dead, deepest first."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        fstype, source = fields[fields.index("-") + 1: fields.index("-") + 3]
        match = _OVERLAY.match(source)
        if fstype == "overlay" and match and not run_alive(int(match[1]), int(match[2])):
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), fields[4])
            found.append((point, int(match[1])))
    return sorted(found, key=lambda item: len(item[0]), reverse=True)


def _dead_lowers() -> list[str]:
    """The idmapped lower layers (``<jail>/lower``, ``<jail>/lowersys``) the overlays of dead runs
    name: they are the jails' own, mounted by sandboxd for that overlay alone."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        fstype, source, options = fields[fields.index("-") + 1 : fields.index("-") + 4]
        match = _OVERLAY.match(source)
        if fstype != "overlay" or not match or run_alive(int(match[1]), int(match[2])):
            continue
        chains = [o.removeprefix("lowerdir=") for o in options.split(",") if o.startswith("lowerdir=/")]
        for chain in chains:
            for folder in chain.split(":"):
                path = Path(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), folder))
                if path.name == "lower" or path.parent.name == "lowersys":
                    found.append(str(path if path.name == "lower" else path.parent))
    return sorted(set(found))


def _run(*argv: str) -> bool:
    try:
        return subprocess.run(argv, capture_output=True, timeout=_TIMEOUT, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def reclaim_disks() -> list[str]:
    """Unmount, detach and delete the disk images of sandboxd runs that are dead; what was done."""
    done = []
    lowers = _dead_lowers()  # read before their overlays go
    for point, pid in _dead_overlays():
        if _run("umount", point) or _run("umount", "-l", point):
            done.append(f"unmounted {point} (overlay of dead sandboxd run {pid})")
    for point in lowers:
        if _run("umount", "-l", point):
            done.append(f"unmounted {point} (a dead run's idmapped lower layer)")
    for loop in marked_loops():
        if loop.alive:
            continue
        for point in _mountpoints(loop.numbers):
            if _run("umount", point) or _run("umount", "-l", point):
                done.append(f"unmounted {point} ({loop.device}, of dead sandboxd run {loop.pid})")
        if _run("losetup", "-d", loop.device):  # a mount's loop device usually goes with it (autoclear)
            done.append(f"detached {loop.device} ({loop.image})")
        if loop.image.is_file() and _IMAGE.match(loop.image.name):
            loop.image.unlink(missing_ok=True)
            done.append(f"deleted {loop.image}")
    return done


def sweep_chains() -> list[str]:
    """Delete the firewall chains ``E2BQ-<pid>`` whose pid no process has (with the OUTPUT rules
    that jump to them); what was deleted."""
    iptables = shutil.which("iptables") or shutil.which("iptables", path="/usr/sbin:/sbin")
    if iptables is None or os.geteuid() != 0:
        return []
    listing = subprocess.run([iptables, "-w", "-S"], capture_output=True, text=True, check=False).stdout
    dead = {
        line.split()[1]
        for line in listing.splitlines()
        if line.startswith("-N E2BQ-")
        and line.split()[1].removeprefix("E2BQ-").isdigit()
        and not Path(f"/proc/{line.split()[1].removeprefix('E2BQ-')}").exists()
    }
    for line in listing.splitlines():
        rule = line.split()
        if rule[:2] == ["-A", "OUTPUT"] and rule[-2:-1] == ["-j"] and rule[-1] in dead:
            _run(iptables, "-w", "-D", *rule[1:])
    for chain in sorted(dead):
        _run(iptables, "-w", "-F", chain)
        _run(iptables, "-w", "-X", chain)
    return [f"deleted firewall chain {chain}" for chain in sorted(dead)]
