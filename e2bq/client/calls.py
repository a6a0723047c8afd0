"""What every toolkit call shares: errors become results, and what finding its sandbox did is
said in its result.

Every result may carry a ``message``; :meth:`Target.noted` puts a note there, so a call whose
default sandbox had to be replaced says so whatever else it returns.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar, cast

from ..errors import E2BQError
from ..types import ErrorResult

log = logging.getLogger("e2bq")
P = ParamSpec("P")
R = TypeVar("R")


def tool(method: Callable[P, R]) -> Callable[P, R | ErrorResult]:
    """Turn any e2bq error into ``{"status": "error", "message"}``, and a call with a missing or
    unknown argument into one naming it; log e2bq's own bugs."""
    signature = inspect.signature(method)

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | ErrorResult:
        try:
            signature.bind(*args, **kwargs)
        except TypeError as exc:
            return {"status": "error", "message": _bad_arguments(method.__name__, signature, exc)}
        try:
            return method(*args, **kwargs)
        except E2BQError as exc:
            return {"status": "error", "message": str(exc)}
        except Exception as exc:
            log.exception("%s failed", method.__name__)
            return {"status": "error", "message": f"internal error in e2bq: {type(exc).__name__}: {exc}"}

    return wrapper


def _bad_arguments(name: str, signature: inspect.Signature, exc: TypeError) -> str:
    """What is wrong with a call's arguments (Python's words: the parameter missing or unknown),
    and what the tool takes."""
    takes = [
        p.name if p.default is p.empty else f"{p.name}={p.default!r}"
        for p in signature.parameters.values()
        if p.name != "self"
    ]
    return f"bad arguments for {name}: {exc}; it takes ({', '.join(takes)})"


@dataclass(frozen=True)
class Target:
    """The sandbox a call runs in, and what finding it did: ``note`` says when the default sandbox
    was gone and a new one replaced it, which the call's result must tell the caller."""

    sandbox_id: str
    note: str | None = None

    def noted(self, result: R) -> R:
        """``result`` with the note put before its message (every result may carry one)."""
        if self.note:
            fields = cast("dict[str, object]", result)
            fields["message"] = " ".join(filter(None, [self.note, str(fields.get("message") or "")]))
        return result
