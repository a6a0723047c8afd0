"""The E2B SDK's template steps, as the SDK serialises them, translated into a TemplateDefinition."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from e2b import Template
from e2b.template.main import TemplateBuilder

from e2bq.sandboxd.errors import TemplateError
from e2bq.sandboxd.templates.sdksteps import copy_hashes, translate


def body_of(template: TemplateBuilder) -> dict[str, Any]:
    """What ``Template.build`` sends as the build's body."""
    steps = template._template._instructions_with_hashes()
    return dict(template._template._serialize(steps))


@pytest.fixture
def context(tmp_path: Path) -> Path:
    (tmp_path / "src" / "data").mkdir(parents=True)
    (tmp_path / "src" / "data" / "motd.txt").write_text("hi\n")
    (tmp_path / "src" / "data" / "two.txt").write_text("two\n")
    return tmp_path


def unpacked(body: dict[str, Any], context: Path) -> Path:
    """The build's folder with each copy's files where the host unpacks them."""
    folder = context / "build"
    for files_hash in copy_hashes(body):
        target = folder / files_hash / "data"
        target.mkdir(parents=True, exist_ok=True)
        for path in (context / "src" / "data").iterdir():
            (target / path.name).write_bytes(path.read_bytes())
    return folder


def test_installs_become_the_definitions_lists(context: Path) -> None:
    template = (
        Template(file_context_path=context / "src")
        .from_debian_image("bookworm")
        .apt_install(["jq", "curl"])
        .pip_install(["six==1.16.0"])
        .npm_install(["left-pad"], g=True)
        .run_cmd("echo hi > /etc/hi", user="root")
        .set_envs({"A": "1"})
    )
    definition = translate(body_of(template), context).definition
    assert definition.base == "bookworm"
    assert definition.apt == ("python3", "jq", "curl")  # python3: e2bq's agent runs on it
    assert definition.pip == ("six==1.16.0",) and definition.npm == ("left-pad",)
    assert definition.commands == ("mkdir -p /home/user && cd /home/user && /bin/sh -ec 'echo hi > /etc/hi'",)
    assert definition.env == {"A": "1"}
    assert (definition.user, definition.workdir) == ("user", "/home/user")  # E2B's defaults


def test_an_install_after_a_command_stays_in_its_place(context: Path) -> None:
    template = (
        Template(file_context_path=context / "src")
        .from_debian_image("bookworm")
        .run_cmd(
            "echo deb http://example.invalid/ bookworm main > /etc/apt/sources.list.d/x.list", user="root"
        )
        .apt_install("jq")
        .pip_install("six")
    )
    definition = translate(body_of(template), context).definition
    assert definition.apt == ("python3", "python3-pip")  # pip for the pip command
    assert definition.pip == ()
    assert "apt-get install -y jq" in definition.commands[1]
    assert definition.commands[2].endswith("/bin/sh -ec 'pip install six'")


def test_commands_run_as_the_current_user_in_its_folder(context: Path) -> None:
    template = (
        Template(file_context_path=context / "src")
        .from_debian_image("bookworm")
        .run_cmd("whoami")
        .set_user("guest")
        .run_cmd("pwd")
        .set_workdir("/srv/app")
        .run_cmd("ls", user="root")
    )
    definition = translate(body_of(template), context).definition
    first, second, third = definition.commands
    assert "setpriv --reuid=user" in first and "cd /home/user" in first
    assert "setpriv --reuid=guest" in second and "cd /home/guest" in second  # set_user: its home
    assert third == "mkdir -p /srv/app && cd /srv/app && /bin/sh -ec ls"
    assert (definition.user, definition.workdir) == ("guest", "/srv/app")


def test_copies_follow_dockers_rules(context: Path) -> None:
    template = (
        Template(file_context_path=context / "src")
        .from_debian_image("bookworm")
        .copy("data/motd.txt", "/etc/motd")
        .copy("data/motd.txt", "/opt/app/", mode=0o640, user="user")
        .copy("data", "/srv/data")
        .copy("data/*.txt", "/srv/texts")
    )
    body = body_of(template)
    definition = translate(body, unpacked(body, context)).definition
    assert [(f.dest, f.mode) for f in definition.files] == [
        ("/etc/motd", ""),
        ("/opt/app/motd.txt", "0640"),
        ("/srv/data", ""),  # a folder's contents into dest
        ("/srv/texts/motd.txt", ""),  # several matches: into dest
        ("/srv/texts/two.txt", ""),
    ]
    assert definition.commands == ("chown -R user /opt/app/motd.txt",)


def test_a_copy_without_its_upload_is_refused(context: Path) -> None:
    template = Template(file_context_path=context / "src").from_debian_image("bookworm").copy("data", "/x")
    with pytest.raises(TemplateError, match="were not uploaded"):
        translate(body_of(template), context / "nothing")


def test_the_base_template_and_shipped_definitions(context: Path) -> None:
    base = translate(body_of(Template().from_base_image().apt_install("jq")), context).definition
    assert {"build-essential", "git", "jq"} <= set(base.apt)
    shipped = translate(body_of(Template().from_template("code-interpreter-v1")), context).definition
    assert "ipykernel" in shipped.pip


@pytest.mark.parametrize(
    ("template", "said"),
    [
        (Template().from_ubuntu_image("24.04"), "from_image('ubuntu:24.04')"),
        (Template().from_alpine_image(), "from_image('alpine:3.24')"),
        (Template().from_node_image(), "from_image('node:lts')"),
        (Template().from_debian_image("trixie"), "Debian bookworm (12) only"),
        (Template().from_dockerfile("FROM python:3.12\nRUN echo hi"), "from_image('python:3.12')"),
        (Template().from_aws_registry("1.dkr.ecr.x/y:1", "k", "s", "r"), "from_aws_registry"),
        (Template().from_template("elsewhere"), "shipped templates only"),
        (Template().from_debian_image("bookworm").bun_install("tsx"), "bun_install"),
        (Template().from_debian_image("bookworm").set_workdir("app"), "set_workdir('app')"),
        (Template().from_debian_image("bookworm").set_envs({"A B": "1"}), "set_envs"),
        (Template().from_debian_image("bookworm").set_user("Bad User"), "user 'Bad User'"),
    ],
)
def test_what_cannot_be_built_is_refused_by_name(context: Path, template: TemplateBuilder, said: str) -> None:
    with pytest.raises(TemplateError) as refused:
        translate(body_of(template), context)
    assert said in str(refused.value)


def test_what_is_ignored_is_said(context: Path) -> None:
    template = (
        Template().from_debian_image("bookworm").skip_cache().run_cmd("true").set_start_cmd("sleep 9", "true")
    )
    translation = translate(body_of(template), context)
    assert translation.definition.start_cmd == "sleep 9"
    assert [note.split(":")[0] for note in translation.notes] == [
        "set_ready_cmd",
        "set_start_cmd",
        "skip_cache",
    ]
