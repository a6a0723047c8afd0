"""`e2bq mcp` without the ``mcp`` package says which extra to install, with no traceback."""

from __future__ import annotations

import sys

import pytest
from click.testing import CliRunner

from e2bq.cli import cli


def test_without_the_mcp_package_the_command_says_to_install_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What an environment without the extra imports (and this process may have imported it already).
    extra = ("mcp", "mcp_types")
    for name in [*extra, *(name for name in sys.modules if name.startswith(tuple(f"{e}." for e in extra)))]:
        monkeypatch.setitem(sys.modules, name, None)
    for name in [name for name in sys.modules if name.startswith("e2bq.integrations.mcp.")]:
        if not name.endswith(".command"):
            monkeypatch.delitem(sys.modules, name)

    result = CliRunner().invoke(cli, ["mcp"])

    assert result.exit_code == 1
    assert "pip install 'e2bq[mcp]'" in result.output
    assert "Traceback" not in result.output
