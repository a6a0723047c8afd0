"""The shipped templates are what the SDKs' default creates run on.

E2B's plain SDK asks for ``base`` when no template is given, the code interpreter SDK for
``code-interpreter-v1``. ``make install`` builds both into the host's templates folder, and the
tests' hosts serve that folder as any host does (``tests.procs``), so every default create of the
suite runs on a template's own root, with nothing of the host's system folders. A host where they
are not built answers a default create with a 404 naming the command that builds them, and runs it
on the host's system folders only when told to (``E2BQ_SANDBOXD_HOST_ROOT=1``).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2b import Sandbox
from e2b.exceptions import SandboxException
from e2b_code_interpreter import Sandbox as CodeInterpreter

from e2bq.sandboxd.doctor import check_templates
from tests.procs import DEFAULT_ROOTFS, TEMPLATES_DIR, SandboxHostProcess, sandbox_host

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(DEFAULT_ROOTFS is None, reason="this run tests on the host's system folders"),
]


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHostProcess]:
    """A host as the suite's others are: serving the templates `make install` built."""
    with sandbox_host(tmp_path_factory.mktemp("shipped-host")) as running:
        yield running


def point_sdk_at(host: SandboxHostProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    """The unmodified SDK's environment (E2B_API_URL, the key, ...) names ``host``."""
    for name, value in host.env.items():
        monkeypatch.setenv(name, value)


@pytest.fixture()
def marker() -> Iterator[Path]:
    """A file in the host's /usr/local/share, which a sandbox on a template must not see."""
    path = Path("/usr/local/share") / f"e2bq-shipped-marker-{secrets.token_hex(4)}"
    path.write_text("the host's\n")
    yield path
    path.unlink()


def test_the_plain_sdks_default_create_runs_on_base(
    host: SandboxHostProcess, marker: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_sdk_at(host, monkeypatch)
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
        # base has no node: the code interpreter's template is another root
        assert sandbox.commands.run("command -v node || echo none").stdout.strip() == "none"
        seen = sandbox.commands.run(f"test -e {marker} && echo seen || echo absent").stdout.strip()
        assert seen == "absent"
        assert sandbox.commands.run("whoami").stdout.strip() == "user"
    finally:
        sandbox.kill()


def test_the_code_interpreters_default_create_runs_on_code_interpreter_v1(
    host: SandboxHostProcess, marker: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert DEFAULT_ROOTFS is not None
    point_sdk_at(host, monkeypatch)
    sandbox = CodeInterpreter.create(timeout=120)
    try:
        assert sandbox.get_info().template_id == "code-interpreter-v1"
        seen = sandbox.commands.run(
            f"test -e {marker} && echo seen || echo absent; node --version; R --version | head -1; "
            "ls /opt; cat /etc/debian_version"
        ).stdout.splitlines()
        assert seen[0] == "absent"
        assert seen[1].startswith("v") and seen[2].startswith("R version")
        assert set(seen[3:-1]) == {*(p.name for p in (DEFAULT_ROOTFS / "opt").iterdir()), "e2bq"}
        assert seen[-1] == (DEFAULT_ROOTFS / "etc" / "debian_version").read_text().strip()
        execution = sandbox.run_code("1 + 1", language="js")
        assert execution.text == "2", execution
    finally:
        sandbox.kill()


def test_a_host_without_the_shipped_templates_says_how_to_build_them(
    tmp_path: Path, marker: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "templates"
    env = {"E2BQ_SANDBOXD_TEMPLATES_DIR": str(empty)}
    with sandbox_host(tmp_path / "bare", env=env) as bare:
        point_sdk_at(bare, monkeypatch)
        with pytest.raises(SandboxException, match="e2bq template build code-interpreter-v1"):
            CodeInterpreter.create(timeout=60)
        with pytest.raises(SandboxException, match="e2bq template build base"):
            Sandbox.create(timeout=60)
    finding = check_templates(empty, host_root=False)
    assert not finding.ok and not finding.required
    assert "e2bq template build code-interpreter-v1" in finding.line() and "answer 404" in finding.line()
    assert check_templates(Path(TEMPLATES_DIR), host_root=False).ok

    # told to, it serves them on the host's system folders (whose files it then sees)
    with sandbox_host(tmp_path / "host-root", env={**env, "E2BQ_SANDBOXD_HOST_ROOT": "1"}) as fallback:
        point_sdk_at(fallback, monkeypatch)
        sandbox = CodeInterpreter.create(timeout=60)
        try:
            assert sandbox.commands.run(f"cat {marker}").stdout == "the host's\n"
        finally:
            sandbox.kill()
