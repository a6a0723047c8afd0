"""Checks of the arguments the client sends on: each raises InvalidInputError saying what to change.

Whatever reaches the broker or Redis must be text that encodes as UTF-8 (a lone surrogate, such as
``"\\ud800"``, does not), and ids must be short enough to be keys.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeGuard

from ..errors import InvalidInputError

MAX_ID_LENGTH = 512  # characters of a sandbox or job id
MAX_SECONDS = 10**9  # ~31 years: any longer time bound is a mistake (nan and inf are none)
MAX_SERVER_WAIT = 3600.0  # seconds run_server may wait for its port (the caller is blocked meanwhile)


def check_text(value: object, name: str) -> str:
    """``value`` if it is a string that encodes as UTF-8."""
    if not isinstance(value, str):
        raise InvalidInputError(f"{name} must be a string")
    try:
        value.encode()
    except UnicodeEncodeError as exc:
        raise InvalidInputError(
            f"{name} is not valid Unicode text: {exc.reason} at position {exc.start} "
            f"({value[exc.start : exc.end]!r}); pass text that encodes as UTF-8"
        ) from None
    return value


def check_id(value: object, name: str) -> str:
    """``value`` if it is a usable id: a non-empty UTF-8 string of at most ``MAX_ID_LENGTH`` characters."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"{name} must be a non-empty string, not {value!r:.80}")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidInputError(f"{name} is {len(value)} characters long; ids have at most {MAX_ID_LENGTH}")
    return check_text(value, name)


def is_id(value: object) -> TypeGuard[str]:
    """Whether ``value`` could be an id at all (lookups of anything else find nothing)."""
    try:
        check_id(value, "id")
    except InvalidInputError:
        return False
    return True


def check_seconds(value: object, name: str, *, zero: bool = False) -> float:
    """``value`` as seconds if it is a finite number > 0 (>= 0 with ``zero``); bools are no numbers."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
        or (value == 0 and not zero)
    ):
        bound = ">= 0" if zero else "> 0"
        raise InvalidInputError(f"{name} must be a finite number of seconds {bound}, not {value!r}")
    return float(value)


def check_local_path(value: object, name: str) -> Path:
    """``value`` as a local path: a string (or path) with no NUL, that encodes as UTF-8."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"{name} must be a path (a non-empty string), not {value!r:.80}")
    check_text(value, name)
    if "\x00" in value:
        raise InvalidInputError(f"{name} contains a NUL character, which no path can hold")
    return Path(value).expanduser()


def check_sandbox_path(value: object, name: str) -> str:
    """``value`` if it can name a file in a sandbox: non-empty text with no NUL."""
    if not isinstance(value, str) or not value:
        raise InvalidInputError(
            f"{name} must be a path in the sandbox (a non-empty string), not {value!r:.80}"
        )
    check_text(value, name)
    if "\x00" in value:
        raise InvalidInputError(f"{name} contains a NUL character, which no path can hold")
    return value


@contextlib.contextmanager
def local_file_errors(path: Path, what: str) -> Iterator[None]:
    """Turn an OSError about the local ``path`` into InvalidInputError saying what to change."""
    try:
        yield
    except OSError as exc:
        shown = str(path) if len(str(path)) <= 200 else str(path)[:200] + "..."
        raise InvalidInputError(
            f"cannot {what} the local file {shown!r}: {exc.strerror or exc}; pass a path that can be {what}"
        ) from exc


def check_metadata(value: object) -> dict[str, str]:
    """Sandbox metadata as strings: a dict (or None) whose keys and values become UTF-8 text."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInputError(f"metadata must be a dict of strings, not {type(value).__name__}")
    return {
        check_text(str(key), "a metadata key"): check_text(str(item), f"metadata[{str(key)!r:.40}]")
        for key, item in value.items()
    }


def check_options(value: object) -> dict[str, Any]:
    """Sandbox creation options: a dict (or None) with string keys and JSON values, as they travel
    to the workers (which pass them to the SDK's create as keyword arguments)."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(key, str) and key.isidentifier() for key in value):
        raise InvalidInputError(
            f"default_options must be a dict of keyword arguments of the SDK's Sandbox.create "
            f"(e.g. {{'envs': {{'A': '1'}}}}), not {value!r:.80}"
        )
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"default_options must hold JSON values only (they travel to the workers): {exc}"
        ) from None
    return dict(value)


def check_flag(value: object, name: str) -> bool:
    """``value`` if it is True or False (a string such as "false" would read as true)."""
    if not isinstance(value, bool):
        raise InvalidInputError(f"{name} must be True or False, not {value!r:.80}")
    return value


def check_timeout(value: Any, name: str = "timeout") -> None:
    """InvalidInputError unless ``value`` is None or a positive number of seconds."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < MAX_SECONDS:
        raise InvalidInputError(
            f"{name} must be a positive number of seconds below {MAX_SECONDS:g}, not {value!r}"
        )
