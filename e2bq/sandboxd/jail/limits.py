"""Resource limits of a sandbox: host-wide defaults, and lower values a sandbox may ask for.

The unmodified SDK cannot send new fields, so a sandbox asks through its metadata
(``Sandbox.create(metadata={"e2bq.memory_mb": "256"})``) or, for raw API clients, a ``limits``
object in the create body. The host's defaults are also ceilings: asking for more is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

METADATA_PREFIX = "e2bq."


@dataclass(frozen=True)
class Limits:
    """Per-sandbox limits. Sizes in MiB, CPU in cores (a share under contention, not a cap)."""

    memory_mb: int = 1024
    pids: int = 256
    cpu: float = 1.0
    disk_mb: int = 2048
    open_files: int = 1024
    output_bytes: int = 8 * 1024 * 1024

    def validate(self) -> Limits:
        for item in fields(self):
            value = getattr(self, item.name)
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"limit {item.name} must be a positive number, not {value!r}")
        if self.memory_mb < 64:
            raise ValueError("memory_mb must be at least 64: a sandbox's agent and kernel need it")
        if self.pids < 16:
            raise ValueError("pids must be at least 16: a sandbox's agent and kernel need them")
        if self.disk_mb < 16:
            raise ValueError("disk_mb must be at least 16")
        return self

    def narrowed(self, asked: dict[str, Any]) -> Limits:
        """These limits with the values a sandbox asked for; more than the host's is refused."""
        changes: dict[str, Any] = {}
        for item in fields(self):
            if item.name not in asked:
                continue
            raw = asked[item.name]
            try:
                value = float(raw) if item.name == "cpu" else int(str(raw))
            except ValueError as exc:
                raise ValueError(f"limit {item.name} must be a number, not {raw!r}") from exc
            if value > getattr(self, item.name):
                raise ValueError(
                    f"limit {item.name}={value} is above this host's {getattr(self, item.name)}; "
                    "ask for less, or raise the host's default"
                )
            changes[item.name] = value
        unknown = set(asked) - {item.name for item in fields(self)}
        if unknown:
            raise ValueError(f"unknown limits {sorted(unknown)}; known: {[f.name for f in fields(self)]}")
        return replace(self, **changes).validate()


def asked_limits(metadata: dict[str, str], body_limits: Any) -> dict[str, Any]:
    """The limits a create request asks for: ``e2bq.*`` metadata keys and a ``limits`` object."""
    asked: dict[str, Any] = {
        key.removeprefix(METADATA_PREFIX): value
        for key, value in metadata.items()
        if key.startswith(METADATA_PREFIX)
    }
    if isinstance(body_limits, dict):
        asked.update(body_limits)
    elif body_limits is not None:
        raise ValueError("limits must be an object")
    return asked
