"""e2bq: a distributed job queue for code sandboxes."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
