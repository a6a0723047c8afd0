"""Paths as the SDK sends them: absolute, relative to the user's home, or starting with ``~``."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ConnectError


def resolve(path: str | None, home: Path) -> Path:
    """The absolute path a user path means inside the sandbox (not following symlinks).

    Raises ConnectError(invalid_argument) for an empty path or one holding a NUL byte.
    """
    if path is None or path == "":
        raise ConnectError("invalid_argument", "path is required")
    if "\x00" in path:
        raise ConnectError("invalid_argument", "path must not contain NUL bytes")
    if path == "~" or path.startswith("~/"):
        path = str(home) + path[1:]
    joined = path if path.startswith("/") else os.path.join(home, path)
    return Path(os.path.normpath(joined))
