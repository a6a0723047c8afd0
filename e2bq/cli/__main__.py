"""``python -m e2bq.cli``: the ``e2bq`` command."""

from __future__ import annotations

from . import main

main()
