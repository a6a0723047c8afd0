"""The last step of a forked kernel, already inside its jail: become ``python -m ipykernel_launcher``.

It starts as the agent would start it (``Kernel`` in ``interpreter.kernels``): the sandbox's
environment from the agent's settings file, the user's home as cwd and ``sys.path[0]``, its own
session, stdin/stdout/stderr on /dev/null and no other file open. It writes its connection file in
the agent's kernel folder and then ``ADOPT_FILE`` naming its pid, which the agent waits for; on
a failure it writes the error there instead, and the agent starts a kernel itself.

Its command line is the one the agent would have given it (the fork server's named host paths).
What differs from a spawned kernel: no ``JPY_PARENT_PID`` (its parent is the jail's init; the
kernel dies with the jail anyway), the fork server's hash seed, and stderr on
/dev/null rather than a pipe to the agent (an adopted kernel that dies is reported without its
last words).
"""

from __future__ import annotations

import atexit
import json
import os
import runpy
import secrets
import signal
import sys
import uuid
from pathlib import Path
from typing import NoReturn

from jupyter_client.connect import write_connection_file

from ..config import AgentConfig
from ..interpreter.adoption import ADOPT_FILE
from ..interpreter.kernels import kernel_env
from ..privatedir import private_folder
from .agent import set_cmdline

CONFIG_FILE = Path("/run/e2bq/agent.json")
_OWN_MODULES = ("agent",)  # the fork server's own code: a spawned kernel has none of it
_OWN_PATH = str(Path(__file__).parents[2])  # the folder ``agent`` is imported from


def become_kernel(import_env: dict[str, str]) -> NoReturn:
    """Run the kernel until it exits; never returns into the fork server's loop.

    ``import_env`` holds what the fork server's imports put in its environment: a spawned kernel
    gets the same from its own imports.
    """
    folder: Path | None = None
    try:
        _detach()
        config = AgentConfig.load(CONFIG_FILE)
        if config.kernel_dir is None:
            raise RuntimeError("the agent is not waiting for a kernel")
        folder = private_folder(Path(config.kernel_dir))
        env = kernel_env(config.envs, folder)
        env.pop("JPY_PARENT_PID", None)
        os.environ.clear()
        os.environ.update({**env, **import_env})
        os.chdir(config.home)
        connection_file = _write_connection(folder)
        set_cmdline([config.python, "-m", "ipykernel_launcher", "-f", str(connection_file)])
        _publish(folder, {"pid": os.getpid(), "connection_file": str(connection_file)})
        _forget_fork_server(config.home)
        sys.argv = ["ipykernel_launcher", "-f", str(connection_file)]
        runpy.run_module("ipykernel_launcher", run_name="__main__", alter_sys=True)
    except SystemExit:
        pass
    except BaseException as exc:
        if folder is not None:
            _publish(folder, {"error": f"{type(exc).__name__}: {exc}"})
    atexit._run_exitfuncs()
    os._exit(0)


def _detach() -> None:
    """Its own session; fds 0-2 on /dev/null; nothing else of the fork server's open."""
    os.setsid()
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))
    for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _write_connection(folder: Path) -> Path:
    name = f"kernel-{uuid.uuid4().hex[:12]}"
    path = folder / f"{name}.json"
    key = secrets.token_hex(16).encode()
    write_connection_file(str(path), transport="ipc", ip=str(folder / name), key=key)
    return path


def _publish(folder: Path, content: dict[str, object]) -> None:
    """Write the adoption file whole (the agent may read it at any moment)."""
    partial = folder / f".{ADOPT_FILE}.{os.getpid()}"
    partial.write_text(json.dumps(content))
    partial.rename(folder / ADOPT_FILE)


def _forget_fork_server(home: Path) -> None:
    """sys.path and sys.modules as ``python -m`` in the home folder would have them."""
    sys.path[:] = [str(home), *(path for path in sys.path if path not in ("", _OWN_PATH))]
    for name in [m for m in sys.modules if m.split(".")[0] in _OWN_MODULES]:
        del sys.modules[name]
