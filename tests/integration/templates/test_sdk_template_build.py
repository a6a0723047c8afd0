"""The unmodified E2B SDK's ``Template.build`` against sandboxd: a real build, then a sandbox on it.

One real build (minbase with jq from Debian, six from PyPI, a copied file, two commands: about a
minute here); the other builds are the same steps again (the content hash finds them, nothing is
built), steps refused before anything is built, and one that fails early in mmdebstrap. Deselect
with ``-m "not network"`` where Debian's archive is out of reach; CI (``CI=true``) fails instead.
"""

from __future__ import annotations

import asyncio
import io
import json
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2b import AsyncTemplate, BuildException, LogEntry, Sandbox, Template, TemplateBuildStatus
from e2b.template.main import TemplateBuilder

from tests.integration.templates.conftest import require_build_host
from tests.procs import SandboxHostProcess, sandbox_host

pytestmark = [pytest.mark.slow, pytest.mark.network, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sdk-templates")


@pytest.fixture(scope="module")
def host(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHostProcess]:
    require_build_host()
    tmp = tmp_path_factory.mktemp("sdk-template-host")
    env = {"E2BQ_SANDBOXD_TEMPLATES_DIR": str(store), "E2BQ_SANDBOXD_TEMPLATE_BUILDS": "1"}
    with sandbox_host(tmp, env=env) as running:
        yield running


@pytest.fixture(autouse=True)
def sdk(host: SandboxHostProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in host.env.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("context")
    (folder / "data").mkdir()
    (folder / "data" / "motd.txt").write_text("copied by the SDK\n")
    return folder


def small(context: Path) -> TemplateBuilder:
    return (
        Template(file_context_path=context)
        .from_debian_image("bookworm")
        .apt_install(["jq"])
        .pip_install(["six"])
        .copy("data/motd.txt", "/opt/app/", user="user", mode=0o604)
        .run_cmd("jq --version > /etc/hi && echo hi >> /etc/hi", user="root")
        .run_cmd("mkdir /opt/who && chown user: /opt/who", user="root")
        .run_cmd("whoami > /opt/who/ami && pwd >> /opt/who/ami")  # as E2B's default user, in its home
        .set_envs({"GREETING": "hello"})
        .set_workdir("/home/user")
        .set_user("user")
    )


@pytest.fixture(scope="module")
def built(host: SandboxHostProcess, context: Path) -> list[LogEntry]:
    """Build ``small`` as ``sdk-small`` once; its build logs."""
    logs: list[LogEntry] = []
    with pytest.MonkeyPatch.context() as patch:
        for name, value in host.env.items():
            patch.setenv(name, value)
        info = Template.build(small(context), "sdk-small", on_build_logs=logs.append)
    assert info.template_id == info.name == "sdk-small"
    return logs


def messages(logs: list[LogEntry]) -> str:
    return "\n".join(entry.message for entry in logs)


def test_a_build_then_a_sandbox_on_it(built: list[LogEntry], store: Path) -> None:
    text = messages(built)
    assert "Uploaded 'data/motd.txt'" in text
    assert "step debian done" in text and "step pip done" in text and "step command 3 done" in text
    assert "template sdk-small ready: built in" in text
    print(text)  # the build's steps and their times, for the record (-s)

    sandbox = Sandbox.create(template="sdk-small", timeout=120)
    try:
        run = sandbox.commands.run
        assert run("cat /etc/hi").stdout.splitlines() == ["jq-1.6", "hi"]
        assert run("jq -n 1+1").stdout.strip() == "2"
        assert run("python3 -c 'import six; print(six.__name__)'").stdout.strip() == "six"
        assert run("cat /opt/app/motd.txt").stdout == "copied by the SDK\n"
        assert run("stat -c %a /opt/app/motd.txt").stdout.strip() == "604"
        assert run("cat /opt/who/ami").stdout.split() == ["user", "/home/user"]
        assert run("echo $GREETING").stdout.strip() == "hello"
        assert sandbox.get_info().template_id == "sdk-small"
    finally:
        sandbox.kill()
    # copy(user="user"): the template's user (uid 1000) owns it; a sandbox, running as a uid of its
    # own, sees it as "other" (hence 0o604)
    assert (store / "sdk-small" / "rootfs" / "opt" / "app" / "motd.txt").stat().st_uid == 1000
    assert Template.exists("sdk-small") and not Template.exists("sdk-none")


def test_the_same_steps_again_reuse_the_build(built: list[LogEntry], context: Path) -> None:
    info = Template.build_in_background(small(context), "sdk-again")
    deadline = time.monotonic() + 60
    status = Template.get_build_status(info)
    while status.status not in (TemplateBuildStatus.READY, TemplateBuildStatus.ERROR):
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
        status = Template.get_build_status(info)
    assert status.status == TemplateBuildStatus.READY, status.reason
    everything = Template.get_build_status(info, logs_offset=0)
    assert "template sdk-again ready: unchanged: build reused" in messages(everything.log_entries)
    assert Template.get_build_status(info, logs_offset=len(everything.log_entries)).log_entries == []

    logs: list[LogEntry] = []  # the async SDK, and the files already uploaded
    asyncio.run(AsyncTemplate.build(small(context), "sdk-again", on_build_logs=logs.append))
    assert "Skipping upload of 'data/motd.txt', already cached" in messages(logs)
    assert "unchanged: build reused" in messages(logs)


@pytest.mark.parametrize(
    ("template", "said"),
    [
        (Template().from_image("ubuntu:22.04"), "from_image('ubuntu:22.04'): this host builds"),
        (Template().from_python_image("3"), "from_image('python:3')"),
        (Template().from_debian_image(), "from_image('debian:stable'): this host builds Debian bookworm"),
        (Template().from_image("ghcr.io/a/b:1", username="u", password="p"), "registry credentials"),
        (Template().from_template("someone-elses"), "from_template('someone-elses')"),
        (Template().from_debian_image("bookworm").bun_install(["left-pad"]), "bun_install"),
    ],
)
def test_what_cannot_be_built_here_is_refused(
    host: SandboxHostProcess, template: TemplateBuilder, said: str
) -> None:
    with pytest.raises(BuildException) as refused:
        Template.build(template, "sdk-refused")
    assert "400" in str(refused.value) and said in str(refused.value)
    assert "from_debian_image('bookworm')" in str(refused.value) or "npm_install" in str(refused.value)
    assert not Template.exists("sdk-refused")


def test_a_failed_build_says_why(host: SandboxHostProcess) -> None:
    broken = Template().from_debian_image("bookworm").apt_install(["e2bq-no-such-package"])
    logs: list[LogEntry] = []
    with pytest.raises(BuildException) as failed:
        Template.build(broken, "sdk-broken", on_build_logs=logs.append)
    assert "template step 'debian' failed" in str(failed.value)
    assert any(entry.level == "error" for entry in logs)
    assert not Template.exists("sdk-broken")


def test_uploads_cannot_leave_their_folder(host: SandboxHostProcess) -> None:
    """A hostile archive (a path out of its folder, a link to the host's root) is refused before
    anything is built; an upload link is for one upload, and nothing is taken without one."""
    with httpx.Client(base_url=host.url, headers={"X-API-KEY": host.api_key}, timeout=30) as api:
        made = api.post("/v3/templates", json={"name": "sdk-hostile"}).json()
        files_hash = "f" * 64
        link = api.get(f"/templates/sdk-hostile/files/{files_hash}")
        assert link.status_code == 201 and link.json()["present"] is False
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w") as tar:
            escape = tarfile.TarInfo("../../../../etc/e2bq-escaped")
            escape.size = 3
            tar.addfile(escape, io.BytesIO(b"hi\n"))
            root = tarfile.TarInfo("hostroot")
            root.type, root.linkname = tarfile.SYMTYPE, "/"
            tar.addfile(root)
        assert httpx.put(link.json()["url"], content=archive.getvalue()).status_code == 200
        assert httpx.put(link.json()["url"], content=b"again").status_code == 403  # used
        assert httpx.put(f"{host.url}/template-uploads/guessed", content=b"x").status_code == 403

        steps = {
            "fromImage": "debian:bookworm",
            "force": False,
            "steps": [
                {"type": "COPY", "args": ["hostroot", "/x", "", ""], "filesHash": files_hash, "force": False}
            ],
        }
        started = api.post(f"/v2/templates/sdk-hostile/builds/{made['buildID']}", json=steps)
        assert started.status_code == 400, started.text
        assert not Path("/etc/e2bq-escaped").exists()
        status = api.get(f"/templates/sdk-hostile/builds/{made['buildID']}/status").json()
        assert status["status"] == "error" and status["reason"]["message"]


def test_a_builds_status_outlives_a_restart_of_sandboxd(
    built: list[LogEntry], context: Path, store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"E2BQ_SANDBOXD_TEMPLATES_DIR": str(store), "E2BQ_SANDBOXD_TEMPLATE_BUILDS": "1"}
    with sandbox_host(tmp_path / "first", env=env) as first:
        for name, value in first.env.items():
            monkeypatch.setenv(name, value)
        done = Template.build_in_background(small(context), "sdk-restarted")
        deadline = time.monotonic() + 60
        while Template.get_build_status(done).status != TemplateBuildStatus.READY:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        port = first.port
    # a build sandboxd was killed in the middle of: its record says "building" and nothing ends it
    killed = uuid.uuid4()
    (store / ".sdk-builds" / "jobs" / f"{killed}.json").write_text(json.dumps({
        "templateID": "sdk-killed", "buildID": str(killed), "status": "building", "reason": None,
        "logs": [{"timestamp": "2026-11-30T00:00:00+00:00", "level": "info", "message": "step debian ..."}],
    }))  # fmt: skip
    with sandbox_host(tmp_path / "again", env=env, port=port) as again:
        for name, value in again.env.items():
            monkeypatch.setenv(name, value)
        status = Template.get_build_status(done, logs_offset=0)
        assert status.status == TemplateBuildStatus.READY
        assert "template sdk-restarted ready: unchanged: build reused" in messages(status.log_entries)
        with httpx.Client(base_url=again.url, headers={"X-API-Key": again.api_key}) as api:
            answer = api.get(f"/templates/sdk-killed/builds/{killed}/status").json()
            assert answer["status"] == "error"
            assert "sandboxd stopped before this build ended" in answer["reason"]["message"]
            assert api.get(f"/templates/sdk-killed/builds/{uuid.uuid4()}/status").status_code == 404


def test_builds_are_off_unless_turned_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with sandbox_host(tmp_path) as off:  # off unless E2BQ_SANDBOXD_TEMPLATE_BUILDS=1
        for name, value in off.env.items():
            monkeypatch.setenv(name, value)
        with pytest.raises(BuildException, match="403: template builds through the API are off"):
            Template.build(Template().from_debian_image("bookworm"), "sdk-off")
