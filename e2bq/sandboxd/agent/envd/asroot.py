"""``user="root"`` on a process request: served through the jail's root broker where there is one.

The SDK names the user in ``Authorization: Basic base64("<user>:")`` on every envd call. In a jail
with a uid range of its own (a sandbox on a template) the agent starts ``rootexec`` as the
sandbox's user, which has the root broker start the command as root inside (see ``rootbroker``).
Elsewhere root inside does not exist, and the command runs as the sandbox's user, as before.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

from starlette.requests import Request

from ..config import AgentConfig

ROOT = "root"
ROOT_HOME = Path("/root")
ROOTEXEC = Path(__file__).parents[1] / "rootexec.py"


def requested_user(request: Request) -> str | None:
    """The user an SDK call names, or None (the sandbox's user)."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        user = base64.b64decode(value, validate=True).decode().partition(":")[0]
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user or None


def serves_root(config: AgentConfig, user: str | None) -> bool:
    return user == ROOT and config.root_socket is not None


def through_broker(config: AgentConfig, cmd: str, args: list[str], cwd: Path) -> tuple[str, list[str]]:
    """The command line that runs ``cmd args`` as root in ``cwd`` (see ``rootexec``)."""
    assert config.root_socket is not None
    return config.python, ["-I", "-S", str(ROOTEXEC), config.root_socket, str(cwd), "--", cmd, *args]
