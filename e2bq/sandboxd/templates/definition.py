"""A template file: a short TOML document parsed into :class:`TemplateDefinition`.

Every key is optional but ``base``::

    base = "bookworm"                    # the Debian release the root filesystem is made from
    apt = ["curl", "git"]                # Debian packages (without their recommendations)
    pip = ["requests==2.32.3"]           # PyPI packages, into the root filesystem's python3
    npm = ["typescript"]                 # npm packages, installed globally
    commands = ["echo built > /etc/motd"]  # shell commands run as root inside, in order
    user = "user"                        # who the sandbox runs as (made at build if missing)
    workdir = "/home/user"               # the folder commands start in
    start_cmd = ""                       # a command started with each sandbox

    [env]                                # environment of the build's commands and the sandbox
    LANG = "C.UTF-8"

    [[files]]                            # copied in before pip, npm and the commands run
    src = "motd.txt"                     # relative to the template file's folder
    dest = "/etc/motd"                   # absolute, inside the root filesystem
    mode = "0644"                        # optional

A mistake raises :class:`TemplateError` naming the key and what to write instead.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import TemplateError

SUPPORTED_BASES = ("bookworm",)
_KEYS = {"base", "apt", "pip", "npm", "commands", "user", "workdir", "start_cmd", "env", "files"}
_APT_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+(=[A-Za-z0-9.+:~-]+)?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_USER_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_MODE = re.compile(r"^0?[0-7]{3,4}$")


@dataclass(frozen=True)
class FileCopy:
    """One ``[[files]]`` entry: ``src`` is resolved against the template file's folder."""

    src: str
    dest: str
    mode: str = ""


@dataclass(frozen=True)
class TemplateDefinition:
    base: str
    apt: tuple[str, ...] = ()
    pip: tuple[str, ...] = ()
    npm: tuple[str, ...] = ()
    commands: tuple[str, ...] = ()
    user: str = "user"
    workdir: str = "/home/user"
    start_cmd: str = ""
    env: dict[str, str] = field(default_factory=dict)
    files: tuple[FileCopy, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """JSON-native: what ``template.json`` records and what the content hash covers."""
        values = asdict(self)
        for key in ("apt", "pip", "npm", "commands"):
            values[key] = list(values[key])
        values["files"] = [dict(entry) for entry in values["files"]]
        return values


def load(path: Path) -> TemplateDefinition:
    """Read and validate a template file; its ``files`` must lie in the file's own folder."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise TemplateError(f"cannot read the template file {path}: {exc.strerror}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError(f"{path} is not valid TOML: {exc}") from exc
    definition = parse(data, where=str(path))
    for entry in definition.files:
        source_of(entry, path.parent)
    return definition


def parse(data: dict[str, Any], *, where: str = "the template") -> TemplateDefinition:
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise TemplateError(f"{where}: unknown key {unknown[0]!r}; the keys are {', '.join(sorted(_KEYS))}")
    base = data.get("base")
    if base not in SUPPORTED_BASES:
        raise TemplateError(f"{where}: base must be one of {', '.join(SUPPORTED_BASES)} (got {base!r})")
    apt = _strings(data, "apt", where)
    for name in apt:
        if not _APT_NAME.match(name):
            raise TemplateError(f"{where}: apt package {name!r} is not a Debian package name (like 'git')")
    pip = _packages(data, "pip", where)
    npm = _packages(data, "npm", where)
    user = _string(data, "user", where, "user")
    if not _USER_NAME.match(user):
        raise TemplateError(f"{where}: user {user!r} must be a lowercase user name (like 'user' or 'root')")
    workdir = _string(data, "workdir", where, "/root" if user == "root" else f"/home/{user}")
    _absolute(workdir, "workdir", where)
    return TemplateDefinition(
        base=base,
        apt=apt,
        pip=pip,
        npm=npm,
        commands=_strings(data, "commands", where),
        user=user,
        workdir=workdir,
        start_cmd=_string(data, "start_cmd", where, ""),
        env=_env(data, where),
        files=_files(data, where),
    )


def source_of(entry: FileCopy, folder: Path) -> Path:
    """The host path of a ``[[files]]`` source; it must exist inside the template's folder."""
    root = folder.resolve()
    source = (root / entry.src).resolve()
    if not source.is_relative_to(root):
        raise TemplateError(
            f"files: src {entry.src!r} leaves the template's folder {root}: copy it there first"
        )
    if not source.exists():
        raise TemplateError(f"files: src {entry.src!r} does not exist in {root}")
    return source


def _string(data: dict[str, Any], key: str, where: str, default: str) -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise TemplateError(f"{where}: {key} must be a string (got {type(value).__name__})")
    return value


def _strings(data: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise TemplateError(f'{where}: {key} must be a list of non-empty strings, like {key} = ["..."]')
    return tuple(value)


def _packages(data: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    names = _strings(data, key, where)
    for name in names:
        # An entry is handed to pip/npm as one argument: an option there would change the build's meaning.
        if name.startswith("-") or any(ch.isspace() for ch in name):
            raise TemplateError(f"{where}: {key} entry {name!r} must be one package, not an option or a list")
    return names


def _absolute(path: str, key: str, where: str) -> None:
    pure = PurePosixPath(path)
    if not pure.is_absolute() or ".." in pure.parts:
        raise TemplateError(
            f"{where}: {key} {path!r} must be an absolute path without '..', like '/home/user'"
        )


def _env(data: dict[str, Any], where: str) -> dict[str, str]:
    env = data.get("env", {})
    if not isinstance(env, dict):
        raise TemplateError(f'{where}: env must be a table of strings: [env] then NAME = "value"')
    for name, value in env.items():
        if not _ENV_NAME.match(name) or not isinstance(value, str):
            raise TemplateError(f"{where}: env.{name} must be a variable name with a string value")
    return dict(env)


def _files(data: dict[str, Any], where: str) -> tuple[FileCopy, ...]:
    entries = data.get("files", [])
    if not isinstance(entries, list):
        raise TemplateError(f"{where}: files must be an array of tables: [[files]] with src and dest")
    copies = []
    for number, entry in enumerate(entries, 1):
        label = f"{where}: files entry {number}"
        if not isinstance(entry, dict) or set(entry) - {"src", "dest", "mode"}:
            raise TemplateError(f"{label} takes only src, dest and mode")
        src, dest, mode = entry.get("src"), entry.get("dest"), entry.get("mode", "")
        if not isinstance(src, str) or not src or PurePosixPath(src).is_absolute():
            raise TemplateError(f"{label}: src must be a path relative to the template file's folder")
        if not isinstance(dest, str):
            raise TemplateError(f"{label}: dest must be an absolute path inside the template")
        _absolute(dest, f"files entry {number} dest", where)
        if not isinstance(mode, str) or (mode and not _MODE.match(mode)):
            raise TemplateError(f'{label}: mode must be octal digits in a string, like "0755"')
        copies.append(FileCopy(src=src, dest=dest, mode=mode))
    return tuple(copies)
