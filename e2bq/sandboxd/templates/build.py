"""Build a template: a Debian root filesystem, then users, files, pip, npm and commands inside it.

The steps run in this order, each named in the progress shown:

1. ``debian``: mmdebstrap ``--variant=minbase`` from the Debian archive with the ``apt`` packages
   (plus ``ca-certificates``, and ``python3-pip`` / ``nodejs npm`` when pip / npm packages are asked
   for); recommendations are not installed, documentation and man pages are left out.
2. ``user``: the template's user and working folder.
3. ``files``, 4. ``pip``, 5. ``npm``, 6. each command.

Steps 2-6 run in bubblewrap with the new root filesystem as ``/``, as root, sharing the host's
network (pip, npm and commands reach the registries). bubblewrap rather than chroot because its
mount namespace takes ``/proc``, ``/dev`` and the copied files' bind mounts away with the step's
process, however it ends (nothing is left mounted on the host after a killed build), and because a
step then runs in its own pid namespace without the capabilities that reach past its root
filesystem (see ``_DROPPED``): an sdist's ``setup.py`` or a command cannot touch the host.

pip installs system-wide into the root filesystem's own ``/usr/bin/python3`` (under ``/usr/local``,
where pip puts a root install on Debian, apart from apt's ``/usr/lib/python3``), not into a venv:
the Python a sandbox's user and kernels find on ``PATH`` is then the one with the packages, as in
E2B's templates, and ``pip install`` inside a sandbox adds to the same place.

The build happens in a staging folder and is renamed into ``builds/<hash>`` only when every step
succeeded: a failed build leaves nothing behind (its staging folder is removed at once; a killed build's, by
the next build).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from ..errors import TemplateError
from .definition import TemplateDefinition, load, source_of
from .store import (
    BuildRecord,
    TemplateRecord,
    TemplateStore,
    check_name,
    content_hash,
    disk_usage,
    remove_tree,
    write_json,
)

# Called with (step, None) when a step starts and (step, seconds) when it has finished.
Reporter = Callable[[str, float | None], None]
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Left out of the root filesystem: nothing in a sandbox reads them, and they are a fifth of its size.
_EXCLUDED = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*", "/usr/share/locale/*")

# Root in a step keeps what installing packages needs (owning files, changing users) but not what
# would reach past the root filesystem: mounts, devices, the host's network (shared for the
# registries), its kernel. With its own pid namespace it cannot see, signal or enter host processes.
_DROPPED = (
    "CAP_SYS_ADMIN", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_BOOT", "CAP_SYS_TIME", "CAP_SYS_PTRACE",
    "CAP_NET_ADMIN", "CAP_MKNOD", "CAP_MAC_ADMIN", "CAP_MAC_OVERRIDE", "CAP_SYSLOG", "CAP_BPF",
    "CAP_PERFMON", "CAP_AUDIT_CONTROL", "CAP_SYS_PACCT", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND",
)  # fmt: skip
_CA_PATH = "/run/e2bq-ca.crt"
_CA_VARIABLES = (
    "PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO",
    "NODE_EXTRA_CA_CERTS", "npm_config_cafile",
)  # fmt: skip


# mmdebstrap copies the host's /etc/hostname and /etc/resolv.conf in: a template shows neither.
_FINISH = (
    "rm -f /etc/hostname /etc/resolv.conf /etc/hosts && echo sandbox > /etc/hostname && : > /etc/resolv.conf"
    " && printf '127.0.0.1 localhost\\n127.0.1.1 sandbox\\n::1 localhost\\n' > /etc/hosts"
)


class BuildResult(TypedDict):
    template: TemplateRecord
    cached: bool  # an identical build existed: nothing was built
    seconds: float


@dataclass(frozen=True)
class BuildOptions:
    """Where a build's packages come from (see ``HostSettings.template_*``)."""

    mirror: str = "http://deb.debian.org/debian"
    pip_index: str = ""
    npm_registry: str = ""
    # The certificates the steps trust: this host's, which may hold a proxy's CA that Debian's lack.
    ca_bundle: Path | None = None


def build_template(
    name: str,
    template_file: Path,
    *,
    store: TemplateStore,
    options: BuildOptions | None = None,
    report: Reporter | None = None,
) -> BuildResult:
    """Build ``template_file`` as ``name``; a build of the same content is reused, not redone.

    Raises ``TemplateError`` for an invalid file, a failed step (with the end of its output) or a
    host that cannot build (not root, no mmdebstrap or bwrap).
    """
    check_name(name)
    definition = load(template_file)
    return build_definition(
        name, definition, template_file.parent, store=store, options=options, report=report
    )


def build_definition(
    name: str,
    definition: TemplateDefinition,
    folder: Path,
    *,
    store: TemplateStore,
    options: BuildOptions | None = None,
    report: Reporter | None = None,
) -> BuildResult:
    """Build a definition whose ``files`` lie in ``folder`` as ``name`` (see ``build_template``)."""
    started = time.monotonic()
    check_name(name)
    digest = content_hash(definition, folder)
    existing = store.find_build(digest)
    if existing is not None:
        return BuildResult(
            template=store.publish(name, existing), cached=True, seconds=time.monotonic() - started
        )
    _check_host()
    store.sweep_staging()
    work = Path(tempfile.mkdtemp(prefix=f"{digest}-{os.getpid()}-", dir=store.staging))
    try:
        record = _run_steps(definition, folder, work, digest, options or BuildOptions(), report)
        target = store.build_dir(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            work.rename(target)
        except OSError:
            # Another build of the same content finished first: use it, drop ours.
            if store.find_build(digest) is None:
                raise
    finally:
        if work.exists():
            remove_tree(work)
    return BuildResult(template=store.publish(name, record), cached=False, seconds=time.monotonic() - started)


def _check_host() -> None:
    if os.geteuid() != 0:
        raise TemplateError(
            "building a template needs root (mmdebstrap installs packages as root): run it with sudo"
        )
    for tool, package in (("mmdebstrap", "mmdebstrap"), ("bwrap", "bubblewrap"), ("unshare", "util-linux")):
        if shutil.which(tool) is None:
            raise TemplateError(f"{tool} is not installed: apt-get install {package} (or `make system`)")


def _run_steps(
    definition: TemplateDefinition,
    folder: Path,
    work: Path,
    digest: str,
    options: BuildOptions,
    report: Reporter | None,
) -> BuildRecord:
    rootfs = work / "rootfs"
    log = work / "build.log"
    step = _Stepper(rootfs, log, definition.env, options, report)
    step.host("debian", _mmdebstrap_argv(definition, rootfs, options))
    step.jailed("user", _user_script(definition.user, definition.workdir))
    for entry in definition.files:
        target = shlex.quote(entry.dest)
        script = f'mkdir -p "$(dirname {target})" && cp -rT --no-preserve=ownership /run/e2bq-src {target}'
        if entry.mode:
            script += f" && chmod {entry.mode} {target}"
        step.jailed(f"file {entry.dest}", script, source=source_of(entry, folder))
    if definition.pip:
        step.jailed("pip", "python3 -m pip install " + shlex.join(definition.pip))
    if definition.npm:
        step.jailed("npm", "npm install --global " + shlex.join(definition.npm))
    for number, command in enumerate(definition.commands, 1):
        step.jailed(f"command {number}", command)
    step.jailed("finish", _FINISH, host_files=False)
    record = BuildRecord(
        hash=digest,
        created=time.time(),
        build_seconds=round(step.elapsed, 1),
        size_bytes=disk_usage(rootfs),
        definition=definition.as_dict(),
        env=dict(definition.env),
        user=definition.user,
        workdir=definition.workdir,
        start_cmd=definition.start_cmd,
    )
    write_json(work / "build.json", dict(record))
    return record


def _mmdebstrap_argv(definition: TemplateDefinition, rootfs: Path, options: BuildOptions) -> list[str]:
    packages = ["ca-certificates", *definition.apt]
    if definition.pip:
        packages.append("python3-pip")
    if definition.npm:
        packages += ["nodejs", "npm"]
    return [
        # In a mount namespace of its own: the /proc, /dev and /sys mmdebstrap mounts in the root
        # filesystem go away with it even when it is killed, and never reach the host's mount table.
        "unshare",
        "--mount",
        "--propagation=private",
        "mmdebstrap",
        "--variant=minbase",
        "--mode=root",
        "--include=" + ",".join(dict.fromkeys(packages)),
        '--aptopt=APT::Install-Recommends "false"',
        '--aptopt=Acquire::Retries "3"',
        *[f"--dpkgopt=path-exclude={pattern}" for pattern in _EXCLUDED],
        # Copyright files stay: the licenses of what is shipped.
        "--dpkgopt=path-include=/usr/share/doc/*/copyright",
        definition.base,
        str(rootfs),
        options.mirror,
    ]


def _user_script(user: str, workdir: str) -> str:
    quoted, folder = shlex.quote(user), shlex.quote(workdir)
    make_user = (
        ""
        if user == "root"
        else (
            f"id -u {quoted} >/dev/null 2>&1 || useradd --create-home --uid 1000 --shell /bin/bash {quoted}; "
        )
    )
    owner = "" if user == "root" else f"&& chown {quoted}: {folder}"
    return f"{make_user}[ -d {folder} ] || {{ mkdir -p {folder} {owner}; }}"


class _Stepper:
    """Runs the steps one by one, timing them, reporting them, and failing with their output."""

    def __init__(
        self, rootfs: Path, log: Path, env: dict[str, str], options: BuildOptions, report: Reporter | None
    ) -> None:
        self.rootfs, self.log, self.report = rootfs, log, report
        self.elapsed = 0.0
        self.env = {
            "PATH": _PATH,
            "HOME": "/root",
            "LANG": "C.UTF-8",
            "DEBIAN_FRONTEND": "noninteractive",
            # Debian marks its Python externally managed; a template's root install is the point.
            "PIP_BREAK_SYSTEM_PACKAGES": "1",
            "PIP_NO_CACHE_DIR": "1",
            "PIP_ROOT_USER_ACTION": "ignore",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "npm_config_cache": "/tmp/npm-cache",  # on the step's tmpfs: not kept in the template
            "npm_config_update_notifier": "false",
            "npm_config_fund": "false",
            "npm_config_audit": "false",
            **({"PIP_INDEX_URL": options.pip_index} if options.pip_index else {}),
            **({"npm_config_registry": options.npm_registry} if options.npm_registry else {}),
            **env,
        }
        self.ca_bundle = options.ca_bundle if options.ca_bundle and options.ca_bundle.is_file() else None
        if self.ca_bundle is not None:
            for key in _CA_VARIABLES:
                self.env[key] = _CA_PATH

    def host(self, label: str, argv: list[str]) -> None:
        self._run(label, argv)

    def jailed(self, label: str, script: str, *, source: Path | None = None, host_files: bool = True) -> None:
        """Run ``script`` as root in the root filesystem; ``host_files``: with the host's resolver."""
        # /tmp 1777 as a system has it: apt-get update runs its gpgv as _apt, which writes there
        argv = [
            "bwrap", "--bind", str(self.rootfs), "/", "--proc", "/proc", "--dev", "/dev",
            "--perms", "1777", "--tmpfs", "/tmp", "--tmpfs", "/run",
            "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--hostname", "sandbox",
            "--die-with-parent", "--new-session", "--clearenv", "--chdir", "/",
        ]  # fmt: skip
        for capability in _DROPPED:
            argv += ["--cap-drop", capability]
        if host_files:
            argv += ["--ro-bind", "/etc/resolv.conf", "/etc/resolv.conf"]
        for key, value in self.env.items():
            argv += ["--setenv", key, value]
        if source is not None:
            argv += ["--ro-bind", str(source), "/run/e2bq-src"]
        if self.ca_bundle is not None:
            argv += ["--ro-bind", str(self.ca_bundle), _CA_PATH]
        self._run(label, [*argv, "/bin/sh", "-ec", script])

    def _run(self, label: str, argv: list[str]) -> None:
        if self.report:
            self.report(label, None)
        started = time.monotonic()
        with self.log.open("a") as log:
            log.write(f"==> {label}\n")
            log.flush()
            code = subprocess.run(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            ).returncode
        seconds = time.monotonic() - started
        self.elapsed += seconds
        if code != 0:
            tail = self.log.read_text(errors="replace").splitlines()[-15:]
            raise TemplateError(f"template step {label!r} failed (exit {code}):\n" + "\n".join(tail))
        if self.report:
            self.report(label, seconds)
