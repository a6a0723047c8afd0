"""The E2B SDK's template (``Template().from_debian_image(...).apt_install(...)...``) as a definition.

``Template.build`` sends E2B's build body: ``fromImage`` or ``fromTemplate`` (or
``fromImageRegistry`` with credentials), ``startCmd``, ``readyCmd``, ``force`` and ``steps``, each
``{"type": "RUN"|"COPY"|"ENV"|"WORKDIR"|"USER", "args": [...], "filesHash"?}``. The SDK's
``apt_install``, ``pip_install``, ``npm_install`` and ``git_clone`` arrive as RUN steps with the
commands it writes for them; they are recognised here and become the definition's ``apt``, ``pip``
and ``npm`` lists, which the builder installs in that order before the commands. A step is taken
out of its place only when nothing before it could change what it does: an ``apt_install`` after a
command or a copy, say, stays a command in its place (apt-get, pip and npm run inside the build's
root filesystem then, which gets ``python3-pip`` / ``nodejs npm`` for them).

As in E2B's builds, commands run as ``user`` in ``/home/user`` until ``set_user`` /
``set_workdir`` say otherwise (``set_user`` alone moves to the user's home), a RUN step's own user
wins (``apt_install`` and a global ``pip_install`` run as root), and the last user and working folder
are the template's. ``set_envs`` values are the build's and the sandboxes'. Copied files are in place
before pip, npm and the commands run. ``python3`` is always installed: e2bq's agent runs on it.

What cannot be made from Debian's archive, PyPI and npm is refused with :class:`TemplateError`
naming the step and what to use instead: other base images (Ubuntu, Alpine, ``python:3``, a
registry's), other templates than the shipped ones, ``bun_install``.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import TemplateError
from .definition import TemplateDefinition, load, parse

SHIPPED = Path(__file__).parent / "defs"
E2B_BASE_IMAGES = ("e2bdev/base", "e2bdev/base:latest")
_DEBIAN_IMAGE = re.compile(r"^(?:docker\.io/)?(?:library/)?debian:(?P<tag>.+)$")
_BOOKWORM_TAG = re.compile(r"^(?:bookworm|12(?:\.\d+)*)(?:-slim)?(?:-\d{8})?$")
_PACKAGES = r"(?P<packages>[A-Za-z0-9@/._+=:~^-]+(?: [A-Za-z0-9@/._+=:~^-]+)*)"
_APT = re.compile(
    r"^apt-get update && DEBIAN_FRONTEND=noninteractive DEBCONF_NOWARNINGS=yes apt-get install -y "
    rf"(?:--no-install-recommends )?(?:--fix-missing )?{_PACKAGES}$"
)
_PIP = re.compile(rf"^pip install {_PACKAGES}$")
_NPM = re.compile(rf"^npm install -g {_PACKAGES}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_INSTEAD = (
    "use from_debian_image('bookworm') or from_base_image(), and apt_install / pip_install / "
    "npm_install / run_cmd what the image would bring"
)

# The builder's order: apt (into the Debian tree), files, pip, npm, commands.
_APT_PHASE, _FILES_PHASE, _PIP_PHASE, _NPM_PHASE, _COMMAND_PHASE = range(5)


@dataclass(frozen=True)
class Translation:
    definition: TemplateDefinition
    notes: tuple[str, ...]  # what was accepted but is not done as on E2B (shown as build warnings)


@dataclass
class _State:
    user: str = "user"
    workdir: str = "/home/user"
    workdir_set: bool = False
    phase: int = _APT_PHASE
    apt: list[str] = field(default_factory=list)
    pip: list[str] = field(default_factory=list)
    npm: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    files: list[dict[str, str]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def copy_hashes(body: dict[str, Any]) -> list[str]:
    """The ``filesHash`` of every COPY step: the uploads the build needs unpacked."""
    return [
        str(step["filesHash"])
        for step in _steps(body)
        if step.get("type") == "COPY" and isinstance(step.get("filesHash"), str)
    ]


def translate(body: dict[str, Any], context: Path) -> Translation:
    """The definition for an SDK build body; a COPY's files are in ``context/<filesHash>/``.

    Raises TemplateError (a 400 for the SDK) for a base or a step this host cannot build.
    """
    base = _base(body)
    state = _State(user=base.user, workdir=base.workdir)
    for number, step in enumerate(_steps(body), 1):
        kind, args = step.get("type"), step.get("args") or []
        if not isinstance(args, list) or not all(isinstance(arg, str) for arg in args):
            raise TemplateError(f"step {number}: args must be a list of strings")
        if kind == "RUN" and args:
            _run(state, args[0], args[1] if len(args) > 1 and args[1] else state.user)
        elif kind == "COPY" and len(args) >= 2:
            _copy(state, number, args, step.get("filesHash"), context)
        elif kind == "ENV":
            _env(state, number, args)
        elif kind == "WORKDIR" and len(args) == 1:
            state.workdir = _absolute(args[0], f"set_workdir({args[0]!r})")
            state.workdir_set = True
        elif kind == "USER" and len(args) == 1:
            state.user = args[0]
            if not state.workdir_set:
                state.workdir = "/root" if args[0] == "root" else f"/home/{args[0]}"
        else:
            raise TemplateError(f"step {number}: {kind!r} with args {args!r} is not a template step")
    _notes(body, state)
    definition = parse(
        {
            "base": base.base,
            "apt": list(dict.fromkeys([*base.apt, "python3", *state.apt])),
            "pip": list(dict.fromkeys([*base.pip, *state.pip])),
            "npm": list(dict.fromkeys([*base.npm, *state.npm])),
            "commands": [*base.commands, *state.commands],
            "user": state.user,
            "workdir": state.workdir,
            "start_cmd": str(body.get("startCmd") or ""),
            "env": {**base.env, **state.env},
            "files": state.files,
        },
        where="the template",
    )
    return Translation(definition=definition, notes=tuple(state.notes))


def _steps(body: dict[str, Any]) -> list[dict[str, Any]]:
    steps = body.get("steps") or []
    if not isinstance(steps, list) or not all(isinstance(step, dict) for step in steps):
        raise TemplateError("steps must be a list of objects with type and args")
    return steps


def _base(body: dict[str, Any]) -> TemplateDefinition:
    """The definition the steps add to: Debian bookworm, or a shipped template's definition."""
    if body.get("fromImageRegistry"):
        raise TemplateError(
            "from_image with registry credentials, from_aws_registry and from_gcp_registry: this host "
            f"does not pull images from a registry; {_INSTEAD}"
        )
    template = body.get("fromTemplate")
    if template:
        shipped = sorted(path.stem for path in SHIPPED.glob("*.toml"))
        if template not in shipped:
            raise TemplateError(
                f"from_template({template!r}): this host builds on its shipped templates only "
                f"({', '.join(shipped)}); {_INSTEAD}"
            )
        return load(SHIPPED / f"{template}.toml")
    image = str(body.get("fromImage") or E2B_BASE_IMAGES[0])
    if image in E2B_BASE_IMAGES:  # from_base_image(), or no from_* at all
        return load(SHIPPED / "base.toml")
    debian = _DEBIAN_IMAGE.match(image)
    if debian and _BOOKWORM_TAG.match(debian["tag"]):
        return TemplateDefinition(base="bookworm")
    if debian:
        raise TemplateError(
            f"from_image({image!r}): this host builds Debian bookworm (12) only; "
            "use from_debian_image('bookworm')"
        )
    raise TemplateError(
        f"from_image({image!r}): this host builds templates from Debian bookworm's archive only, "
        f"not from container images (from_dockerfile's FROM is one too); {_INSTEAD}"
    )


def _run(state: _State, command: str, user: str) -> None:
    """A RUN step: the SDK's apt/pip/npm installs into the definition's lists where their place
    allows, anything else a command in its place."""
    if command == "bun install" or command.startswith("bun install "):
        raise TemplateError("bun_install: bun is not in Debian's archive; use npm_install instead")
    for pattern, phase, packages in (
        (_APT, _APT_PHASE, state.apt),
        (_PIP, _PIP_PHASE, state.pip),
        (_NPM, _NPM_PHASE, state.npm),
    ):
        match = pattern.match(command)
        if match and user == "root":
            names = match["packages"].split()
            if state.phase <= phase and not any(name.startswith("-") or name == "." for name in names):
                packages.extend(names)
                state.phase = phase
                return
    if _PIP.match(command) or command.startswith("pip install"):
        state.apt.append("python3-pip")
    if _NPM.match(command) or command.startswith("npm install"):
        state.apt += ["nodejs", "npm"]
    if command.startswith("git clone "):
        state.apt.append("git")
    state.commands.append(_as_user(command, user, state.workdir))
    state.phase = _COMMAND_PHASE


def _as_user(command: str, user: str, workdir: str) -> str:
    """``command`` in ``workdir`` as ``user`` (made if missing), as E2B's build runs a RUN step."""
    folder, script = shlex.quote(workdir), shlex.quote(command)
    if user == "root":
        return f"mkdir -p {folder} && cd {folder} && /bin/sh -ec {script}"
    who = shlex.quote(user)
    # setpriv, not su or runuser: no PAM session in the build's jail, and the build's environment kept.
    return (
        f"id -u {who} >/dev/null 2>&1 || useradd --create-home --shell /bin/bash {who}; "
        f"[ -d {folder} ] || {{ mkdir -p {folder} && chown {who}: {folder}; }}; cd {folder} && "
        f'HOME="$(getent passwd {who} | cut -d: -f6)" USER={who} LOGNAME={who} '
        f'setpriv --reuid={who} --regid="$(id -g {who})" --init-groups -- /bin/sh -ec {script}'
    )


def _copy(state: _State, number: int, args: list[str], files_hash: Any, context: Path) -> None:
    src, dest, owner, mode = [*args, "", ""][:4]
    label = f"copy({src!r}, {dest!r})"
    if not isinstance(files_hash, str) or not (context / files_hash).is_dir():
        raise TemplateError(f"{label}: its files were not uploaded (step {number} has no filesHash)")
    _absolute(dest, label)
    root = context / files_hash
    matches = sorted(root.glob(src)) if src not in ("", ".") else [root]
    if not matches:
        raise TemplateError(f"{label}: nothing in the uploaded files matches {src!r}")
    for match in matches:
        # Docker's rules: a folder's contents go into dest; a file goes to dest, or into it when
        # dest ends with '/' or several sources match.
        into = dest.endswith("/") or len(matches) > 1
        target = dest if match.is_dir() or not into else str(PurePosixPath(dest) / match.name)
        entry = {"src": str(match.relative_to(context)), "dest": target.rstrip("/") or "/"}
        if mode:
            entry["mode"] = mode
        state.files.append(entry)
        if owner:
            state.commands.append(f"chown -R {shlex.quote(owner)} {shlex.quote(entry['dest'])}")
    state.phase = max(state.phase, _FILES_PHASE)


def _env(state: _State, number: int, args: list[str]) -> None:
    if len(args) % 2:
        raise TemplateError(f"step {number}: set_envs sends name, value pairs")
    for name, value in zip(args[::2], args[1::2], strict=True):
        if not _ENV_NAME.match(name):
            raise TemplateError(f"set_envs: {name!r} is not a variable name (letters, digits, '_')")
        state.env[name] = value


def _absolute(path: str, label: str) -> str:
    pure = PurePosixPath(path)
    if not pure.is_absolute() or ".." in pure.parts:
        raise TemplateError(f"{label}: give an absolute path without '..', like '/home/user'")
    return path


def _notes(body: dict[str, Any], state: _State) -> None:
    if body.get("readyCmd"):
        state.notes.append("set_ready_cmd: not run here; a sandbox is ready when its agent answers")
    if body.get("startCmd"):
        state.notes.append("set_start_cmd: recorded in the template; sandboxes here do not start it yet")
    if body.get("force") or any(step.get("force") for step in _steps(body)):
        state.notes.append(
            "skip_cache: builds here are content-addressed; the same steps and files reuse their build"
        )
