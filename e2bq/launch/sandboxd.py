"""A local sandbox host, ``e2bq sandboxd``, on a loopback port."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from .process import Process, free_port, require_free, spawn


@dataclass(frozen=True, kw_only=True)
class SandboxHostProcess(Process):
    """A running ``e2bq sandboxd`` started by :func:`start_sandboxd`.

    Attributes:
        url: ``http://127.0.0.1:<port>``, its control plane and data plane alike.
        port: the TCP port it listens on (loopback only).
        api_key: the key clients send as ``X-API-KEY`` (``E2B_API_KEY`` for the SDK).
        state_dir: where its sandboxes live.
        owns_state_dir: whether stopping it also removes ``state_dir`` (true when
            :func:`start_sandboxd` made the folder).
    """

    url: str
    port: int
    api_key: str
    state_dir: Path
    owns_state_dir: bool = False

    @property
    def env(self) -> dict[str, str]:
        """What points the unmodified e2b SDK (and e2bq's workers) at this host."""
        return {
            "E2B_API_KEY": self.api_key,
            "E2B_API_URL": self.url,
            "E2B_SANDBOX_URL": self.url,
            "E2B_VOLUME_API_URL": self.url,  # the SDK's volume content API (Volume.read_file, ...)
        }

    def control(self, timeout: float = 30.0) -> httpx.Client:
        """An HTTP client of its control plane, sending its key (close it when done)."""
        return httpx.Client(base_url=self.url, headers={"X-API-KEY": self.api_key}, timeout=timeout)

    def stop(self) -> None:
        """Stop the host (SIGTERM, SIGKILL after the grace), then unmount whatever it left mounted
        under its state folder (a host that was SIGKILLed cannot unmount its sandboxes' disk images
        itself) and, if :func:`start_sandboxd` made that folder, remove it."""
        super().stop()
        unmount_under(self.state_dir)
        if self.owns_state_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)


def start_sandboxd(
    folder: Path,
    *args: str,
    port: int | None = None,
    api_key: str | None = None,
    state_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    name: str | None = None,
    timeout: float = 60.0,
) -> SandboxHostProcess:
    """Start ``e2bq sandboxd`` on 127.0.0.1 and return once its ``/health`` answers 200.

    ``port`` defaults to a free one and ``api_key`` to a new random key; to restart a stopped host
    at the same address, pass its port and key again. ``state_dir`` defaults to a new folder under
    the system's temporary folder (not under ``folder``: sandboxes are set up by an unprivileged
    user, who cannot enter private folders such as pytest's), removed when the host is stopped.
    The host logs to ``folder/<name>.log`` (``name`` defaults to ``sandboxd-<port>``) at level
    ``warning``. ``args`` are extra ``e2bq sandboxd`` options (e.g. ``"--warm-pool", "2"``), after
    the defaults so they win; ``env`` adds to its environment.

    Raises ConfigurationError when its port is in use, or the host exits while starting or is not
    healthy within ``timeout`` seconds (it is stopped first). Use the result as a context manager,
    or call its ``stop()``.
    """
    port = port or free_port()
    api_key = api_key or "e2b_" + secrets.token_hex(20)
    name = name or f"sandboxd-{port}"
    require_free(port, f"sandboxd {name}")
    owns_state_dir = state_dir is None
    state = state_dir or Path(tempfile.mkdtemp(prefix=f"e2bq-sandboxd-{port}-"))
    url = f"http://127.0.0.1:{port}"
    log = folder / f"{name}.log"
    cmd = [
        sys.executable, "-m", "e2bq.sandboxd", "--host", "127.0.0.1", "--port", str(port),
        "--api-key", api_key, "--state-dir", str(state), "--log-level", "warning", *args,
    ]
    try:
        proc = spawn(
            cmd, log=log, env=env, ready=lambda: _healthy(url), timeout=timeout, what=f"sandboxd {name}"
        )
    except BaseException:
        unmount_under(state)
        if owns_state_dir:
            shutil.rmtree(state, ignore_errors=True)
        raise
    return SandboxHostProcess(
        name=name, proc=proc, log=log, url=url, port=port, api_key=api_key, state_dir=state,
        owns_state_dir=owns_state_dir,
    )


def _healthy(url: str) -> bool:
    return httpx.get(url + "/health", timeout=5).status_code == 200


def unmount_under(folder: Path) -> None:
    """Lazily unmount every mount below ``folder`` (the disk images of a host's sandboxes).

    Needs the privileges that mounted them (root, as sandboxd runs); a mount that cannot be
    unmounted is left as it is.
    """
    prefix = str(folder) + "/"
    for line in Path("/proc/self/mounts").read_text().splitlines():
        target = line.split()[1]
        if target.startswith(prefix):
            subprocess.run(["umount", "-l", target], capture_output=True, check=False)
