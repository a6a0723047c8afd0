"""Where the uid ranges of sandboxes on templates start (E2BQ_SANDBOX_UID_RANGE_BASE)."""

from __future__ import annotations

import pytest

from e2bq.sandboxd.jail import idmap
from e2bq.sandboxd.settings import (
    DEFAULT_UID_RANGE_BASE,
    MAX_UID_RANGE_BASE,
    UID_RANGES,
    HostSettings,
)


def test_the_default_base_is_above_every_account_and_subordinate_range() -> None:
    settings = HostSettings.from_env({})
    assert settings.uid_range_base == DEFAULT_UID_RANGE_BASE == idmap.RANGE_BASE == 1 << 24


def test_a_base_is_read_from_the_environment_and_places_every_slot() -> None:
    first = (1 << 24) + (1 << 28)
    settings = HostSettings.from_env({"E2BQ_SANDBOX_UID_RANGE_BASE": str(first)})
    assert settings.uid_range_base == first
    assert idmap.base_of(0, first) == first
    assert idmap.base_of(3, first) == first + 3 * idmap.RANGE_SIZE


@pytest.mark.parametrize("base", [0, 65536, 100000, MAX_UID_RANGE_BASE + 1, 1 << 32])
def test_a_base_that_would_reach_accounts_or_past_the_last_id_is_refused(base: int) -> None:
    with pytest.raises(ValueError, match="E2BQ_SANDBOX_UID_RANGE_BASE"):
        HostSettings.from_env({"E2BQ_SANDBOX_UID_RANGE_BASE": str(base)})


def test_the_last_range_of_the_highest_base_ends_below_the_kernels_no_id() -> None:
    last = idmap.base_of(UID_RANGES - 1, MAX_UID_RANGE_BASE) + idmap.RANGE_SIZE - 1
    assert last < (1 << 32) - 1
