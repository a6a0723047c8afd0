"""sandboxd's side of the fork server (the server itself: ``agent.forkserver``).

sandboxd starts one fork server when it can make a forked process exactly as jailed as one bwrap
starts: it runs as root (entering a jail's namespaces and cgroups needs it), the jail's seccomp
filter exists, and the runtime is at the path jails see it at. Otherwise it logs why and bwrap
starts every agent, which spawns its own kernel, as before. A jail's agent is forked in as soon as
the jail is built (``Launcher`` makes the jail again the old way if that fails); after the agent
answers, sandboxd asks for its default kernel, and if that request fails it leaves the jail a file
that tells the agent to spawn one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path

from ..errors import ForkServerError
from ..jail import bwrap

log = logging.getLogger("e2bq.sandboxd")

START_TIMEOUT = 30.0  # seconds for the fork server to import the kernel's modules
REQUEST_TIMEOUT = 10.0  # seconds for a forked kernel to exist inside its jail
_BOOTSTRAP = (
    "import sys; sys.path[0] = sys.argv[1]; from agent.forkserver.server import main; main(sys.argv[2:])"
)
# Root's powers the fork server keeps, and why: sys_ptrace to open another uid's /proc/<pid>/ns
# and root; sys_admin and sys_chroot to enter a jail's namespaces and root; setgid to clear the
# groups before. Inside the jail's user namespace the child gets its own, namespaced set.
_CAPABILITIES = [
    "setpriv",
    "--inh-caps=-all",
    "--bounding-set=-all,+sys_ptrace,+sys_admin,+sys_chroot,+setgid",
    "--",
]
# A jail's base environment and the kernel settings read when modules are imported.
_ENV = {**bwrap.SANDBOX_ENV, "PYDEVD_DISABLE_FILE_VALIDATION": "1"}


class ForkServer:
    """The fork server process of one sandboxd, and the requests sandboxd sends it."""

    def __init__(
        self, *, runtime: Path, agent_lib: Path, folder: Path, seccomp: Path | None, enabled: bool = True
    ) -> None:
        self.runtime, self.agent_lib, self.folder, self.seccomp = runtime, agent_lib, folder, seccomp
        self.enabled = enabled
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.folder / "forkserver.sock"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def unavailable_because(self) -> str | None:
        """Why forked kernels cannot be as jailed as spawned ones here; None if they can."""
        if not self.enabled:
            return "E2BQ_SANDBOXD_FORK_KERNELS is off"
        if os.geteuid() != 0:
            return "sandboxd does not run as root"
        if self.seccomp is None:
            return "there is no seccomp filter"
        if self.runtime.resolve() != bwrap.RUNTIME.resolve():
            return f"the runtime is at {self.runtime}, not at {bwrap.RUNTIME} as inside jails"
        return None

    def start(self) -> bool:
        """Start the fork server if it can be used; blocks until it has imported. False if not."""
        reason = self.unavailable_because()
        if reason is not None:
            log.info("agents and kernels start in their jails, none is forked: %s", reason)
            return False
        assert self.seccomp is not None
        self.folder.mkdir(mode=0o700, exist_ok=True)
        self.folder.chmod(0o700)  # root only: a jail's uid must not reach the socket
        python = str(self.runtime / "bin" / "python")
        arguments = [str(self.agent_lib), str(self.socket), str(self.seccomp)]
        command = [*_CAPABILITIES, python, "-c", _BOOTSTRAP, *arguments]
        with (self.folder / "forkserver.log").open("ab") as stderr:
            self._proc = subprocess.Popen(
                command,
                cwd=self.agent_lib,
                env=_ENV,  # what a jail's kernels start from, not sandboxd's
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                start_new_session=True,
            )
        assert self._proc.stdout is not None
        if self._proc.stdout.readline() != b"ready\n":
            self.close()
            log.warning("the fork server did not start (see %s): nothing is forked", stderr.name)
            return False
        log.info("fork server %d ready", self._proc.pid)
        return True

    async def fork_kernel(
        self, jail_pid: int, uid: int | None, cgroup_procs: list[Path], range_base: int | None = None
    ) -> None:
        """Fork a kernel into the jail whose init has host pid ``jail_pid``. Raises LaunchError."""
        request: dict[str, object] = {
            "pid": jail_pid,
            "uid": uid,
            "cgroups": [str(path) for path in cgroup_procs],
        }
        if range_base is not None:  # a jail with a uid range of its own (see ``jail.idmap``)
            request["range_base"] = range_base
        await asyncio.to_thread(self._request, request, [])

    async def fork_agent(
        self,
        jail_pid: int,
        uid: int | None,
        cgroup_procs: list[Path],
        fds: list[int],
        argv: list[str],
        range_base: int | None = None,
    ) -> None:
        """Fork the jail's agent, handing it ``fds`` (see ``spawn.spawn``). Raises LaunchError."""
        request: dict[str, object] = {
            "pid": jail_pid,
            "uid": uid,
            "cgroups": [str(path) for path in cgroup_procs],
            "role": "agent",
            "env": bwrap.SANDBOX_ENV,
            "argv": argv,
        }
        if range_base is not None:
            request["range_base"] = range_base
        await asyncio.to_thread(self._request, request, fds)

    async def fork_broker(
        self, jail_pid: int, uid: int | None, cgroup_procs: list[Path], range_base: int
    ) -> None:
        """Fork the root broker of a jail with a uid range of its own (see ``agent.rootbroker``): root
        inside with the broker's capabilities only. Raises ForkServerError."""
        request: dict[str, object] = {
            "pid": jail_pid,
            "uid": uid,
            "cgroups": [str(path) for path in cgroup_procs],
            "range_base": range_base,
            "role": "broker",
            "socket": str(bwrap.ROOT_SOCKET),
        }
        await asyncio.to_thread(self._request, request, [])

    def _request(self, request: Mapping[str, object], fds: list[int]) -> None:
        """Send one request (blocking: call it in a thread) and check its answer."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(REQUEST_TIMEOUT)
                conn.connect(str(self.socket))
                socket.send_fds(conn, [json.dumps(request).encode() + b"\n"], fds)
                line = conn.makefile("rb").readline()
        except OSError as exc:
            raise ForkServerError(f"the fork server did not answer: {exc!r}") from exc
        answer = json.loads(line) if line else {"ok": False, "error": "no answer"}
        if not answer.get("ok"):
            raise ForkServerError(f"the fork server failed: {answer.get('error')}")

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        self.socket.unlink(missing_ok=True)
