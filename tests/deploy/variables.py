"""The environment variables e2bq reads: every ``E2BQ_*``/``E2B_*`` name its settings know.

Settings (``e2bq/config.py``) names the queue's, HostSettings (``e2bq/sandboxd/settings.py``) the
sandbox host's; the per-sandbox limits are ``E2BQ_SANDBOX_<LIMIT>`` for each field of ``Limits``.
A deployment file that sets any other such name sets something nothing reads (a typo, or a
variable that was renamed).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import fields
from pathlib import Path

from e2bq.sandboxd.jail.limits import Limits

ROOT = Path(__file__).resolve().parents[2]
SOURCES = (ROOT / "e2bq" / "config.py", ROOT / "e2bq" / "sandboxd" / "settings.py")
PREFIXES = ("E2BQ_", "E2B_")


def read_by_e2bq() -> frozenset[str]:
    named = set()
    for source in SOURCES:
        named |= set(re.findall(r'"((?:E2BQ|E2B)_[A-Z0-9_]+)"', source.read_text()))
    named |= {f"E2BQ_SANDBOX_{limit.name.upper()}" for limit in fields(Limits)}
    return frozenset(named)


def unknown(names: Iterable[str]) -> set[str]:
    """The e2bq-looking names among ``names`` that e2bq does not read."""
    return {name for name in names if name.startswith(PREFIXES)} - read_by_e2bq()
