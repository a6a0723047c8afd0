"""The fork server's main loop: import once, then accept a request and fork for each.

``python -c BOOTSTRAP SOCKET SECCOMP_FILE`` (see ``lifecycle.forkserver``). A request is one JSON
line on its own connection, ``{"pid": <a process of the jail, host pid>, "uid": <the jail's host
uid>, "cgroups": [<cgroup.procs files>]}`` for a kernel (with ``"range_base"`` for a jail mapping a
range of uids, see ``jail.idmap``; a root broker's has ``"role": "broker"`` and ``"socket"``); an
agent's adds ``"role": "agent"``, its ``"env"`` and ``"argv"``, and comes with its fds
(SCM_RIGHTS). The forked child reads it; the answer is one JSON line, ``{"ok": true}`` once the
process exists inside the jail, or ``{"ok": false, "error": ...}``.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import socket
import sys
import threading
import traceback
from pathlib import Path
from typing import Any, NoReturn

from .. import rootbroker
from . import agent, kernel
from .enter import EnterError, die_with_parent, enter, open_jail

# What every kernel imports on its way up, so that it is imported once, here.
# (found by comparing sys.modules of a started kernel with the fork server's). Not numpy, pandas
# or matplotlib: kernels import them only when user code does.
PRELOAD = (
    "ipykernel.kernelapp",
    "ipykernel.ipkernel",
    "ipykernel.zmqshell",
    "ipykernel.comm",
    "ipykernel.debugger",  # debugpy and pydevd: about a third of what a kernel imports
    "IPython.core.completerlib",
    "IPython.core.debugger",
    "IPython.core.formatters",
    "IPython.core.logger",
    "IPython.core.oinspect",
    "IPython.extensions.storemagic",
    "jupyter_client.connect",
    "traitlets.config.argcomplete_config",
    "tornado.gen",
    "tornado.locks",
    "tornado.queues",
    "tornado.platform.asyncio",
    "sqlite3",  # IPython's history
    "PIL.Image",  # the kernel startup shows saved images
    "PIL.ImageShow",
    "pdb",
    "faulthandler",
    "gzip",
    "http.server",
    "xmlrpc.client",
    "xmlrpc.server",
    "pydoc",
    "encodings.idna",
    "encodings.ascii",
    "encodings.latin_1",
)
# What an agent imports (its own modules are imported again inside the jail, from its path there)
AGENT_PRELOAD = (
    "agent.server",
    "uvicorn.protocols.http.auto",
    "uvicorn.protocols.http.h11_impl",
    "uvicorn.protocols.http.httptools_impl",  # what http=auto picks when httptools is installed
    "uvicorn.protocols.websockets.auto",
    "uvicorn.lifespan.on",
    "uvicorn.loops.auto",
    "uvicorn.loops.asyncio",
)
REAP_EVERY = 1.0  # seconds between sweeps for finished children while no request comes


def preload() -> dict[str, str]:
    """Import PRELOAD; returns the environment variables those imports set (debugpy sets some),
    which every kernel gets again, as it would have by importing them itself."""
    before = dict(os.environ)
    for name in PRELOAD:
        importlib.import_module(name)
    import_env = {key: value for key, value in os.environ.items() if before.get(key) != value}
    for name in AGENT_PRELOAD:
        with contextlib.suppress(ImportError):  # uvicorn's optional parts
            importlib.import_module(name)
    if threading.active_count() != 1:  # fork copies one thread only: none may have started
        raise RuntimeError(f"importing the kernel started threads: {threading.enumerate()}")
    gc.collect()
    gc.freeze()  # the collector no longer touches what is here, so children keep sharing it
    return import_env


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    socket_path, seccomp_file = Path(args[0]), Path(args[1])
    die_with_parent()
    seccomp_filter = seccomp_file.read_bytes()
    import_env = preload()
    socket_path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(socket_path))
    socket_path.chmod(0o600)
    listener.listen(128)
    listener.settimeout(REAP_EVERY)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while True:
        _reap()
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        if os.fork() == 0:
            listener.close()
            _serve_one(conn, seccomp_filter, import_env)
        conn.close()


def _reap() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


def _read_request(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    """One JSON line, with the fds sent along with it (an agent's)."""
    data, fds, _, _ = socket.recv_fds(conn, 1 << 16, 8)
    while data and not data.endswith(b"\n"):
        chunk = conn.recv(1 << 16)
        if not chunk:
            break
        data += chunk
    request: dict[str, Any] = json.loads(data)
    return request, fds


def _serve_one(conn: socket.socket, seccomp_filter: bytes, import_env: dict[str, str]) -> NoReturn:
    """In the forked child: enter the jail, fork into its PID namespace, answer, exit."""
    answer: dict[str, object] = {"ok": False, "error": "the request was not read"}
    try:
        conn.settimeout(10.0)
        request, fds = _read_request(conn)
        range_base = request.get("range_base")
        jail = open_jail(
            int(request["pid"]), request.get("uid"), None if range_base is None else int(range_base)
        )
        broker = request.get("role") == "broker"  # root inside, with the broker's capabilities
        capabilities = rootbroker.CAPABILITIES if broker else ()
        enter(jail, [str(path) for path in request["cgroups"]], seccomp_filter, capabilities)
        middle = os.fork()
        if middle == 0:  # inside the jail's PID namespace
            if os.fork() == 0:
                conn.detach()  # its fd is closed with all others; the object must not close another later
                if broker:
                    agent.set_cmdline(["python", "-m", "agent.rootbroker", str(request["socket"])])
                    rootbroker.become_broker(str(request["socket"]))
                if request.get("role") == "agent":
                    agent.become_agent(fds, dict(request["env"]), list(request["argv"]))
                kernel.become_kernel(import_env)
            os._exit(0)  # the kernel is orphaned to the jail's init, which reaps it
        _, status = os.waitpid(middle, 0)
        answer = {"ok": status == 0} if status == 0 else {"ok": False, "error": f"status {status}"}
    except (EnterError, OSError, ValueError, KeyError) as exc:
        traceback.print_exc()  # into the fork server's log, which only root reads
        answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    finally:
        with contextlib.suppress(OSError):
            conn.sendall(json.dumps(answer).encode() + b"\n")
        os._exit(0)
