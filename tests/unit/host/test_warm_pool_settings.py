"""E2BQ_SANDBOXD_WARM_POOL_TEMPLATES: a warm pool per template, and the host's own on
code-interpreter-v1."""

from __future__ import annotations

import pytest

from e2bq.sandboxd.lifecycle.pools import DEFAULT_TEMPLATE, pool_sizes
from e2bq.sandboxd.settings import HostSettings, parse_warm_pools


def test_pools_per_template_are_read_from_the_environment() -> None:
    settings = HostSettings.from_env({"E2BQ_SANDBOXD_WARM_POOL_TEMPLATES": " base=2, mine=0 ,data-1=3"})
    assert settings.warm_pool_templates == (("base", 2), ("mine", 0), ("data-1", 3))
    assert HostSettings.from_env({}).warm_pool_templates == ()


@pytest.mark.parametrize("text", ["base", "base=", "=2", "base=-1", "base=two"])
def test_a_bad_entry_is_named(text: str) -> None:
    with pytest.raises(ValueError, match="write NAME=COUNT"):
        parse_warm_pools(text)


def test_the_hosts_own_pool_comes_first_and_keeps_its_growth() -> None:
    sizes = pool_sizes(2, 8, (("base", 1), (DEFAULT_TEMPLATE, 5)))
    assert list(sizes) == [DEFAULT_TEMPLATE, "base"]
    assert sizes == {DEFAULT_TEMPLATE: (2, 8), "base": (1, 1)}
