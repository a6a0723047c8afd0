"""Starting a jail: its agent's sockets and configuration, then bwrap (see ``bwrap`` for the jail).

The agent's listening sockets are made here, outside the jail, and handed to the agent (bound by
bwrap, or passed to an agent the fork server forks in), so that sandboxd can connect the moment the
agent says it is ready.
"""

from __future__ import annotations

import os
import socket
import subprocess
from dataclasses import replace
from pathlib import Path

from ..agent.config import AgentConfig
from .bwrap import (
    FORKED_AGENT_FDS,
    HOME,
    KERNEL_DIR,
    KERNEL_FALLBACK,
    ROOT_SOCKET,
    RUN,
    RUNTIME,
    SANDBOX_ENV,
    SANDBOX_USER,
    JailPaths,
    bwrap_command,
)


def agent_config(envs: dict[str, str]) -> AgentConfig:
    """What the agent inside is told: paths as the jail sees them."""
    return AgentConfig(
        home=HOME,
        python=str(RUNTIME / "bin" / "python"),
        socket=RUN / "agent.sock",
        forward_socket=RUN / "forward.sock",
        user=SANDBOX_USER,
        envs={**SANDBOX_ENV, **envs},
    )


def spawn(
    paths: JailPaths,
    *,
    envs: dict[str, str],
    max_output_bytes: int,
    prefix: list[str],
    etc: Path,
    runtime: Path,
    agent_lib: Path,
    seccomp: Path | None,
    own_network: bool = True,
    fork_kernel: bool = False,
    fork_agent: bool = False,
    binds: tuple[tuple[Path, str], ...] = (),
    rootfs: Path | None = None,
    ca_bundle: Path | None = None,
    userns_fd: int | None = None,
) -> tuple[subprocess.Popen[bytes], int, list[int]]:
    """Start the jail; return the bwrap process, the fd that turns readable when it is ready, and
    the fds to hand a forked agent (none without ``fork_agent``; the caller closes them).

    ``prefix`` runs first and execs the rest (joining cgroups, setting rlimits, dropping to the
    sandbox's uid); ``seccomp`` is a raw BPF program bwrap installs before the agent starts. With
    ``fork_kernel`` the agent adopts a default kernel that sandboxd forks in rather than spawning one;
    with ``fork_agent`` the jail only holds itself open, for an agent sandboxd forks in with the
    fds returned, in FORKED_AGENT_FDS order. With ``userns_fd`` the jail is in that user namespace
    and has a root broker (see :func:`bwrap_command`); the caller keeps and closes the fd.
    """
    listeners = [_listen(paths.socket), _listen(paths.forward_socket)]
    config = replace(
        agent_config(envs),
        max_output_bytes=max_output_bytes,
        socket_fd=FORKED_AGENT_FDS[0] if fork_agent else listeners[0].fileno(),
        forward_fd=FORKED_AGENT_FDS[1] if fork_agent else listeners[1].fileno(),
        kernel_dir=str(KERNEL_DIR) if fork_kernel else None,
        kernel_fallback=str(RUN / KERNEL_FALLBACK) if fork_kernel else None,
        root_socket=str(ROOT_SOCKET) if userns_fd is not None else None,
        supervised=True,
        lifeline_fd=FORKED_AGENT_FDS[3] if fork_agent else None,
    )
    config_file = paths.run / "agent.json"
    config_file.write_text(config.to_json())
    config_file.chmod(0o644)
    read_fd, write_fd = os.pipe()
    seccomp_fd = os.open(seccomp, os.O_RDONLY) if seccomp is not None else None
    log = paths.log.open("ab")
    handover: list[int] = []
    holder_fd: int | None = None
    if fork_agent:
        holder_fd, lifeline = os.pipe()
        sockets = [os.dup(listener.fileno()) for listener in listeners]
        handover = [*sockets, os.dup(write_fd), lifeline, os.dup(log.fileno())]
    command = bwrap_command(
        paths,
        etc=etc,
        runtime=runtime,
        agent_lib=agent_lib,
        ready_fd=write_fd,
        seccomp_fd=seccomp_fd,
        own_network=own_network,
        holder_fd=holder_fd,
        binds=binds,
        rootfs=rootfs,
        ca_bundle=ca_bundle,
        userns_fd=userns_fd,
    )
    agent_fds = [] if holder_fd is not None else [write_fd, *(lst.fileno() for lst in listeners)]
    try:
        proc = subprocess.Popen(
            [*prefix, *command],
            stdin=subprocess.DEVNULL if holder_fd is None else holder_fd,
            stdout=subprocess.DEVNULL,
            stderr=log,
            pass_fds=(*agent_fds, *([seccomp_fd] if seccomp_fd else []), *([userns_fd] if userns_fd else [])),
            start_new_session=True,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        )
    except BaseException:
        for fd in handover:
            os.close(fd)
        raise
    finally:
        os.close(write_fd)
        if holder_fd is not None:
            os.close(holder_fd)
        for listener in listeners:  # the agent holds them now
            listener.close()
        if seccomp_fd is not None:
            os.close(seccomp_fd)
        log.close()
    return proc, read_fd, handover


def _listen(path: Path) -> socket.socket:
    """A listening unix socket at ``path``, made by sandboxd and handed to the agent."""
    path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1024)
    return listener
