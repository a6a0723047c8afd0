"""Keeping a sandbox's agent up when code inside the sandbox kills it.

The agent runs as the sandbox's own uid, so a program in the sandbox can kill it (``pkill python``,
``pkill -9 -f agent``). E2B's template restarts its services when that happens; here a small shell
stays behind as the agent's supervisor and starts the agent again. The listening sockets are the
supervisor's too, so sandboxd reaches the new agent at the same place, and a connection made while
no agent runs waits in the socket's backlog (up to a second: the supervisor looks once a second).

A new agent starts from a clean sandbox: before it serves, every process the sandbox ran (its
commands, kernels and their children) is killed, as a process tree ends with its root; the files
stay. Only the jail's init, the holder of a jail whose agent was forked in, the supervisor and the
new agent are spared. The new agent spawns its own kernel. An agent that dies again and again
(``MAX_RESTARTS`` times, each within ``WINDOW`` seconds of its start) is left dead, and the jail ends.

The supervisor is ``/bin/sh`` (a few hundred KiB), not a Python process: one forked from the agent
would keep every page of the agent's that the agent then writes, ~3 MiB per sandbox. So the first
agent is forked off (and away, to the jail's init, so that ``tail --pid`` can follow it), and the
process that forked it becomes the shell. A restarted agent is a fresh Python, not a fork of the
fork server: it costs more memory than the first one did.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from .config import AgentConfig

log = logging.getLogger(__name__)

MAX_RESTARTS = 5
WINDOW = 60  # seconds
NAME = "e2bq-supervisor"
_PROC = Path("/proc")
# What ``pkill`` and ``kill`` send by default or by habit: the supervisor ignores them (SIGKILL it
# cannot); an agent started by it sets them back, so that commands and kernels get them as usual.
_IGNORED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
_RESTART = "import sys; sys.path.insert(0, sys.argv[1]); from agent.supervisor import restart; restart()"
# $1: the first agent's pid; then the command that starts an agent again.
_SCRIPT = f"""
trap '' {" ".join(sig.name.removeprefix("SIG") for sig in _IGNORED)}
agent=$1; shift
tail --pid="$agent" -f /dev/null
runs=0
while [ "$runs" -lt {MAX_RESTARTS} ]; do
  echo "e2bq: the agent died; it starts again" >&2
  started=$(date +%s)
  "$@"
  if [ $(($(date +%s) - started)) -ge {WINDOW} ]; then runs=0; else runs=$((runs + 1)); fi
done
echo "e2bq: the agent died {MAX_RESTARTS} times in a row: not started again" >&2
"""


def start(run: Callable[[list[str]], None], args: list[str], *, agent_root: str) -> None:
    """``agent CONFIG.json [READY_FD]``: ``run(args)`` starts the agent's server; under a supervisor
    when the config asks for one (a jail's agent), in which case this process becomes the
    supervisor and never returns. ``agent_root`` is where the package ``agent`` is in the jail.

    Call it before the agent imports its server, so that little is copied into the agent's fork.
    """
    config = AgentConfig.load(args[0])
    if not config.supervised:
        run(args)
        return
    ready_fd = int(args[1]) if len(args) > 1 else None
    agent = _fork_away(lambda: run(args))
    if ready_fd is not None:
        os.close(ready_fd)  # the agent's alone: sandboxd must see it close if the agent dies early
    if config.lifeline_fd is not None:
        os.set_inheritable(config.lifeline_fd, True)  # the shell and every new agent hold the jail
    restart_command = [config.python, "-I", "-c", _RESTART, agent_root, args[0]]
    os.execv("/bin/sh", ["/bin/sh", "-c", _SCRIPT, NAME, str(agent), *restart_command])


def _fork_away(run: Callable[[], None]) -> int:
    """Start ``run`` in a grandchild, which the jail's init reaps; its pid."""
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(read_end)
        grandchild = os.fork()
        if grandchild != 0:
            os.write(write_end, str(grandchild).encode())
            os._exit(0)
        os.close(write_end)
        code = 1
        try:
            run()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            log.exception("the agent failed")
        finally:
            os._exit(code)
    os.close(write_end)
    os.waitpid(child, 0)
    with os.fdopen(read_end, "rb") as pipe:
        return int(pipe.read())


def server(module: str) -> Callable[[list[str]], None]:
    """``run`` for :func:`start`: import ``module`` (the agent's server) and call its ``main``."""

    def run(args: list[str]) -> None:
        importlib.import_module(module).main(args)

    return run


def restart(module: str = "agent.server") -> None:
    """An agent started again by the supervisor (``python -c … AGENT_ROOT CONFIG.json``): clear what
    the sandbox ran, then serve as a fresh agent."""
    config_path = sys.argv[2]
    config = AgentConfig.load(config_path)
    for signum in _IGNORED:
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    clear_processes(spare={os.getppid(), *_holders(config.lifeline_fd)})
    importlib.import_module(module).main([config_path], restarted=True)


def in_jail() -> bool:
    """Whether this process is in a bubblewrap jail (its PID namespace's init is bwrap): only there
    may it kill every process it sees."""
    try:
        return Path("/proc/1/comm").read_text().strip() == "bwrap"
    except OSError:
        return False


def _holders(lifeline: int | None) -> set[int]:
    """The pids of the jail's holder: the processes reading the lifeline's other end."""
    if lifeline is None:
        return set()
    try:
        pipe = os.readlink(f"/proc/self/fd/{lifeline}")
    except OSError:
        return set()
    holders = set()
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.readlink(entry / "fd" / "0") == pipe:
                    holders.add(int(entry.name))
    return holders


def clear_processes(*, spare: set[int], rounds: int = 50) -> None:
    """SIGKILL every process of the sandbox but the init, this one and ``spare``, until none is left
    (a process may fork while the first round runs)."""
    if not in_jail():
        log.error("not in a sandbox's jail: its processes are not cleared")
        return
    keep = {1, os.getpid(), *spare}
    for _ in range(rounds):
        victims = [pid for pid in _live_pids() if pid not in keep]
        if not victims:
            return
        for pid in victims:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)


def _live_pids() -> list[int]:
    """Every process of the PID namespace but zombies (a signal does nothing to them)."""
    pids = []
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                    pids.append(int(entry.name))
    return pids
