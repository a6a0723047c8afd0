"""Template files: what parses, what is refused and how the message says what to change."""

from __future__ import annotations

from pathlib import Path

import pytest

from e2bq.sandboxd.errors import TemplateError
from e2bq.sandboxd.templates.cli import SHIPPED
from e2bq.sandboxd.templates.definition import load, parse
from e2bq.sandboxd.templates.store import TemplateStore, check_name, content_hash


def write(folder: Path, text: str) -> Path:
    path = folder / "template.toml"
    path.write_text(text)
    return path


def test_a_full_definition_parses(tmp_path: Path) -> None:
    (tmp_path / "motd.txt").write_text("hi\n")
    definition = load(
        write(
            tmp_path,
            'base = "bookworm"\napt = ["curl", "libc6=2.36-9+deb12u14"]\npip = ["six==1.17.0"]\n'
            'npm = ["left-pad"]\ncommands = ["true"]\nuser = "root"\nstart_cmd = "sleep 1"\n'
            '[env]\nA = "1"\n[[files]]\nsrc = "motd.txt"\ndest = "/etc/motd"\nmode = "0644"\n',
        )
    )
    assert definition.apt == ("curl", "libc6=2.36-9+deb12u14")
    assert definition.workdir == "/root"  # root's home when no workdir is given
    assert definition.env == {"A": "1"}
    assert definition.as_dict()["files"] == [{"src": "motd.txt", "dest": "/etc/motd", "mode": "0644"}]


@pytest.mark.parametrize(
    ("data", "names"),
    [
        ({}, "base must be one of bookworm"),
        ({"base": "jessie"}, "base must be one of bookworm"),
        ({"base": "bookworm", "packages": []}, "unknown key 'packages'"),
        ({"base": "bookworm", "apt": "curl"}, "apt must be a list"),
        ({"base": "bookworm", "apt": ["Curl Git"]}, "apt package 'Curl Git'"),
        ({"base": "bookworm", "pip": ["--index-url=http://elsewhere"]}, "not an option"),
        ({"base": "bookworm", "npm": ["a b"]}, "npm entry 'a b'"),
        ({"base": "bookworm", "user": "Root!"}, "user 'Root!'"),
        ({"base": "bookworm", "workdir": "home/user"}, "workdir 'home/user' must be an absolute"),
        ({"base": "bookworm", "env": {"1X": "a"}}, "env.1X"),
        ({"base": "bookworm", "files": [{"src": "a"}]}, "dest must be an absolute"),
        (
            {"base": "bookworm", "files": [{"src": "/etc/shadow", "dest": "/x"}]},
            "src must be a path relative",
        ),
        ({"base": "bookworm", "files": [{"src": "a", "dest": "/x/../../y"}]}, "without '..'"),
        ({"base": "bookworm", "files": [{"src": "a", "dest": "/x", "mode": "rwx"}]}, "mode must be octal"),
    ],
)
def test_invalid_definitions_name_the_key(data: dict[str, object], names: str) -> None:
    with pytest.raises(TemplateError, match=names.replace("(", r"\(").replace(".", r"\.")):
        parse(data)


def test_files_cannot_come_from_outside_the_template_folder(tmp_path: Path) -> None:
    folder = tmp_path / "t"
    folder.mkdir()
    (tmp_path / "secret").write_text("host secret")
    (folder / "link").symlink_to(tmp_path / "secret")
    for src in ("../secret", "link"):
        path = write(folder, f'base = "bookworm"\n[[files]]\nsrc = "{src}"\ndest = "/x"\n')
        with pytest.raises(TemplateError, match="leaves the template's folder"):
            load(path)
    missing = write(folder, 'base = "bookworm"\n[[files]]\nsrc = "nope"\ndest = "/x"\n')
    with pytest.raises(TemplateError, match="does not exist"):
        load(missing)


def test_invalid_toml_and_missing_files_are_errors(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="not valid TOML"):
        load(write(tmp_path, "base = \n"))
    with pytest.raises(TemplateError, match="cannot read"):
        load(tmp_path / "absent.toml")


@pytest.mark.parametrize("name", ["../etc", "a/b", "", "Upper", "-x", "x" * 64])
def test_template_names_stay_inside_the_templates_folder(name: str) -> None:
    with pytest.raises(TemplateError, match="template name"):
        check_name(name)


def test_the_hash_covers_the_definition_and_the_copied_bytes(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("one")
    path = write(tmp_path, 'base = "bookworm"\n[[files]]\nsrc = "f"\ndest = "/f"\n')
    first = content_hash(load(path), tmp_path)
    assert content_hash(load(path), tmp_path) == first
    (tmp_path / "f").write_text("two")
    assert content_hash(load(path), tmp_path) != first
    path.write_text('base = "bookworm"\napt = ["jq"]\n[[files]]\nsrc = "f"\ndest = "/f"\n')
    assert content_hash(load(path), tmp_path) != first


@pytest.mark.parametrize("name", ["base", "code-interpreter-v1"])
def test_the_shipped_definitions_parse(name: str) -> None:
    definition = load(SHIPPED / f"{name}.toml")
    assert {"bash", "coreutils", "python3", "git", "curl", "build-essential"} <= set(definition.apt)
    if name == "code-interpreter-v1":
        assert {"ipykernel", "jupyter_client", "pandas", "matplotlib"} <= set(definition.pip)
        # what the bash, JavaScript/TypeScript, R and Java kernels run on (agent/interpreter/languages.py)
        assert {"nodejs", "r-base-core", "r-cran-irkernel"} <= set(definition.apt)
        # the JDK by a command: its post-install needs the man folder a template leaves out
        assert any("default-jdk-headless" in command for command in definition.commands)


def test_an_empty_store_lists_nothing_and_refuses_unknown_names(tmp_path: Path) -> None:
    store = TemplateStore(tmp_path / "none")
    assert store.templates() == []
    with pytest.raises(TemplateError, match=r"no template named 'ghost'.*e2bq template build ghost"):
        store.delete("ghost")
