"""Fuzzed inputs against the real stack: every public method, wrong and odd arguments.

The settings profile ``e2bq-fuzz`` keeps the suite bounded and repeatable: examples are derived from
each test's name (``derandomize``), nothing is written outside the tree (no example database), and
a slow call is no failure (no per-example deadline; pytest's timeout bounds each test).
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile(
    "e2bq-fuzz",
    deadline=None,
    derandomize=True,
    database=None,
    max_examples=20,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FUZZ = settings.get_profile("e2bq-fuzz")
