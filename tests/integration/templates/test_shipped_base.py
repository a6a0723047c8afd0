"""The shipped ``base`` template, built for real, is what the plain SDK's ``Sandbox.create()`` gets.

E2B's plain SDK asks for ``base`` when no template is given, the code interpreter SDK for
``code-interpreter-v1``. Once ``base`` is built on the host, a plain create runs on it: Debian
bookworm with git, curl and a C compiler, and nothing of the host's system folders. (Building the
1.3 GiB ``code-interpreter-v1`` takes minutes, so it is not built here; the same code path serves
it.) About a minute.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from e2b import Sandbox

from e2bq.sandboxd.templates.cli import template
from tests.procs import SandboxHostProcess, sandbox_host

pytestmark = [pytest.mark.slow, pytest.mark.network, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def host(
    tiny_template: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SandboxHostProcess]:
    """A host with the shipped ``base`` built (``tiny_template`` checks a build can run here)."""
    store = tmp_path_factory.mktemp("shipped")
    result = CliRunner().invoke(template, ["build", "base", "--dir", str(store)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    with sandbox_host(
        tmp_path_factory.mktemp("base-host"), env={"E2BQ_SANDBOXD_TEMPLATES_DIR": str(store)}
    ) as running:
        yield running


def test_the_plain_sdks_default_create_runs_on_base(
    host: SandboxHostProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in host.env.items():
        monkeypatch.setenv(name, value)
    marker = Path("/usr/local/share") / f"e2bq-base-marker-{secrets.token_hex(4)}"
    marker.write_text("the host's\n")
    sandbox = Sandbox.create(timeout=120)
    try:
        assert sandbox.get_info().template_id == "base"
        tools = sandbox.commands.run(
            "grep -c bookworm /etc/os-release; git --version; curl --version | head -1; "
            "echo 'int main(){return 0;}' > /tmp/a.c && cc /tmp/a.c -o /tmp/a && /tmp/a && echo compiled"
        )
        lines = tools.stdout.splitlines()
        assert int(lines[0]) >= 1 and lines[1].startswith("git version") and lines[2].startswith("curl ")
        assert lines[-1] == "compiled"
        assert (
            sandbox.commands.run(f"test -e {marker} && echo seen || echo absent").stdout.strip() == "absent"
        )
        assert sandbox.commands.run("whoami").stdout.strip() == "user"
    finally:
        sandbox.kill()
        marker.unlink()
