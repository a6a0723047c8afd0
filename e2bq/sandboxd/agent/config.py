"""What the agent is told when it starts: one JSON file written by sandboxd."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class AgentConfig:
    """Settings of one sandbox's agent.

    ``home`` is the user's home and the base of relative paths; ``python`` runs the kernels;
    ``envs`` is the environment every process and kernel starts from (the sandbox's own variables,
    never the host's); ``socket`` is where the HTTP API listens and ``forward_socket`` where TCP
    streams to the sandbox's ports arrive. With ``kernel_dir`` set, the kernels' folder is that
    path and sandboxd forks the default kernel in (see ``forkserver``): the agent adopts it, or
    starts its own if the kernel reports an error or the file ``kernel_fallback`` appears.
    With ``supervised`` the agent's first process stays as its supervisor and starts it again if
    it dies (see ``supervisor``); ``lifeline_fd`` is a forked agent's end of the jail's lifeline.
    ``root_socket``: the jail's root broker, which starts processes as root inside (see
    ``rootbroker``); None where root inside is not served (a jail on the host's system folders).
    """

    home: Path
    python: str
    socket: Path
    forward_socket: Path
    user: str = "user"
    envs: dict[str, str] = field(default_factory=dict)
    start_kernel: bool = True
    max_output_bytes: int = 0
    socket_fd: int | None = None
    forward_fd: int | None = None
    kernel_dir: str | None = None
    kernel_fallback: str | None = None
    supervised: bool = False
    lifeline_fd: int | None = None
    root_socket: str | None = None

    @classmethod
    def load(cls, path: str | Path) -> AgentConfig:
        raw = json.loads(Path(path).read_text())
        return cls(
            home=Path(raw["home"]),
            python=raw["python"],
            socket=Path(raw["socket"]),
            forward_socket=Path(raw["forward_socket"]),
            user=raw.get("user", "user"),
            envs=dict(raw.get("envs", {})),
            start_kernel=bool(raw.get("start_kernel", True)),
            max_output_bytes=int(raw.get("max_output_bytes", 0)),
            socket_fd=raw.get("socket_fd"),
            forward_fd=raw.get("forward_fd"),
            kernel_dir=raw.get("kernel_dir"),
            kernel_fallback=raw.get("kernel_fallback"),
            supervised=bool(raw.get("supervised", False)),
            lifeline_fd=raw.get("lifeline_fd"),
            root_socket=raw.get("root_socket"),
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "home": str(self.home),
                "python": self.python,
                "socket": str(self.socket),
                "forward_socket": str(self.forward_socket),
                "user": self.user,
                "envs": self.envs,
                "start_kernel": self.start_kernel,
                "max_output_bytes": self.max_output_bytes,
                "socket_fd": self.socket_fd,
                "forward_fd": self.forward_fd,
                "kernel_dir": self.kernel_dir,
                "kernel_fallback": self.kernel_fallback,
                "supervised": self.supervised,
                "lifeline_fd": self.lifeline_fd,
                "root_socket": self.root_socket,
            }
        )
