"""The last step of a forked agent, already inside its jail: become what bwrap starts there.

The jail's bwrap runs only a holder that waits on a pipe; the agent forked in holds the other end
(the lifeline), so the jail ends when the agent does, as with a bwrap-started agent. It finds its
fds where bwrap would have put them (``FORKED_AGENT_FDS`` of ``jail.bwrap``: its two listening
sockets, the ready pipe, the lifeline, the jail's log as stderr), the jail's environment, the home
as cwd, its own session, bwrap's command line, and imports the agent's own code from the jail's
/opt/e2bq/lib, as a spawned agent does; the libraries it uses come from the fork server, shared.
"""

from __future__ import annotations

import ctypes
import fcntl
import importlib
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import NoReturn

from .. import supervisor

AGENT_ROOT = "/opt/e2bq/lib"
HOME = "/home/user"
SOCKET, FORWARD, READY, LIFELINE, LOG = 3, 4, 5, 6, 2  # as jail.bwrap.FORKED_AGENT_FDS
_OWN_PATH = str(Path(__file__).parents[2])  # the folder ``agent`` is imported from in the fork server
_HIGH = 100  # fds are moved above this on their way to their places


def become_agent(fds: list[int], env: dict[str, str], argv: list[str]) -> NoReturn:
    """Run the agent until it exits; never returns into the fork server's loop."""
    try:
        os.setsid()
        _place(fds)
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.environ.clear()
        os.environ.update(env)
        os.chdir(HOME)
        set_cmdline(argv)
        sys.argv = argv[2:]
        # The agent is forked off before it imports its own code; this process becomes its
        # supervisor (a shell: see ``supervisor``).
        supervisor.start(_run_agent, argv[-2:], agent_root=AGENT_ROOT)
    except SystemExit:
        pass
    except BaseException:
        traceback.print_exc()  # into the jail's log, as a spawned agent's would go
    sys.stderr.flush()
    os._exit(0)


def _run_agent(args: list[str]) -> None:
    """The agent's server, imported from the jail's /opt/e2bq/lib as a spawned agent's is."""
    for name in [m for m in sys.modules if m.split(".")[0] == "agent"]:
        del sys.modules[name]  # the fork server's copy, from the host's path
    sys.path[:] = [AGENT_ROOT, *(path for path in sys.path if path not in ("", _OWN_PATH))]
    importlib.invalidate_caches()
    importlib.import_module("agent.server").main(args)


def _place(fds: list[int]) -> None:
    """Put the handed fds at their numbers, /dev/null on 0 and 1, and close everything else."""
    wanted = (SOCKET, FORWARD, READY, LIFELINE, LOG)
    if len(fds) != len(wanted):
        raise ValueError(f"expected {len(wanted)} fds, got {len(fds)}")
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, _HIGH) for fd in fds]
    null = os.open("/dev/null", os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    for fd, target in zip(high, wanted, strict=True):
        os.dup2(fd, target, inheritable=target != LIFELINE)
    os.closerange(max(wanted) + 1, os.sysconf("SC_OPEN_MAX"))


def set_cmdline(argv: list[str]) -> None:
    """Show ``argv`` in /proc/self/cmdline, as setproctitle does: overwrite the original arguments'
    memory (it is the fork server's, long enough), padded with NULs."""
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    start, end = int(fields[45]), int(fields[46])  # arg_start and arg_end, fields 48 and 49
    data = b"\0".join(arg.encode() for arg in argv)[: end - start - 1]
    ctypes.memmove(start, data.ljust(end - start, b"\0"), end - start)
