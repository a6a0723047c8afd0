"""One bubblewrap jail per sandbox: this module owns the bwrap command line (``spawn`` starts it).

The jail has its own user, PID, mount, IPC, UTS and network namespaces. Its root is a template's
tree (see ``rootfs``: an overlay with the sandbox's own layer), or, on a host told to serve the
shipped templates' names without building them (``E2BQ_SANDBOXD_HOST_ROOT``), an allow-list of the
host's: ``/usr`` read-only, a few harmless files of ``/etc``. Either way the jail adds the sandbox
runtime and agent read-only, generated ``hosts``/``hostname``/``resolv.conf``/``profile`` (and
``passwd``/``group`` unless the template has the sandbox's user), and the sandbox's own folders on
the host as ``/home/user``, ``/tmp`` and ``/run/e2bq`` (the agent's sockets). Started by root, bwrap
runs as an unprivileged host uid (or a range of them, see ``idmap``), so nothing inside holds a
capability on the host; the jail dies with sandboxd (``--die-with-parent``).
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from . import leftovers

SANDBOX_USER = "user"
SANDBOX_UID = 1000
HOME = Path("/home/user")
RUN = Path("/run/e2bq")
RUNTIME = Path("/opt/e2bq/runtime")
AGENT_ROOT = Path("/opt/e2bq/lib")
HOSTNAME = "e2b"
SECCOMP_FILE = "e2bq-seccomp.bpf"  # in the runtime folder, made by install-runtime
KERNEL_DIR = Path("/tmp/e2bq-kernels")  # the agent's kernels' folder when the default kernel is forked in
KERNEL_FALLBACK = "kernel.fallback"  # in RUN: sandboxd's word that no forked kernel comes
SANDBOX_DNS = "10.0.2.3"  # slirp4netns's resolver
# The fds a forked agent finds, in the order spawn returns them: its socket, the forward socket, the
# ready pipe, the lifeline (the jail ends when it closes), and stderr, the jail's log.
FORKED_AGENT_FDS = (3, 4, 5, 6, 2)
GENERATED_ETC = ("passwd", "group", "hosts", "hostname", "profile", "resolv.conf")
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")  # where a template's trusted CAs are
# A jail with a uid range of its own (see ``idmap``) starts a root broker as its first process,
# with these capabilities, all of them limited to the jail's user namespace (Docker's default set
# without NET_RAW and MKNOD; never SYS_ADMIN): root inside may own, change and chown its files,
# switch users, bind low ports. It starts every process ``commands.run(user="root")`` asks for.
ROOT_CAPABILITIES = (
    "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
    "NET_BIND_SERVICE", "SYS_CHROOT", "AUDIT_WRITE", "SETFCAP",
)  # fmt: skip
ROOT_SOCKET = Path("/run/e2bq-root.sock")  # the root broker's, inside (made by the broker)

# Files of the host's /etc that programs need and that hold no secret.
_ETC_ALLOW = (
    "alternatives",
    "bash.bashrc",
    "ca-certificates",
    "ca-certificates.conf",
    "debian_version",
    "fonts",
    "gai.conf",
    "gitconfig",
    "host.conf",
    "inputrc",
    "java-17-openjdk",  # the JDK's configuration (the Java kernel)
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "locale.alias",
    "localtime",
    "magic",
    "magic.mime",
    "mime.types",
    "networks",
    "nsswitch.conf",
    "os-release",
    "pip.conf",
    "profile.d",
    "protocols",
    "python3",
    "python3.11",
    "R",  # R_HOME/etc (the R kernel)
    "services",
    "ssl/certs",
    "ssl/openssl.cnf",
    "timezone",
    "xdg/pip",
)

# The system folders on PATH, as Docker images (and so E2B's) have them: sbin for root inside.
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_PROFILE = f"""\
# /etc/profile of an e2bq sandbox
export PATH="{RUNTIME}/bin:/home/user/.local/bin:{SYSTEM_PATH}"
if [ -d /etc/profile.d ]; then
  for i in /etc/profile.d/*.sh; do [ -r "$i" ] && . "$i"; done
  unset i
fi
"""

SANDBOX_ENV = {
    "PATH": f"{RUNTIME}/bin:/home/user/.local/bin:{SYSTEM_PATH}",
    "HOME": str(HOME),
    "USER": SANDBOX_USER,
    "LOGNAME": SANDBOX_USER,
    "SHELL": "/bin/bash",
    "LANG": "C.UTF-8",
    "TERM": "xterm",
    "OPENBLAS_NUM_THREADS": "1",
    "E2B_SANDBOX": "true",
}


def write_etc(folder: Path, *, users: bool = True) -> None:
    """Write the generated /etc files every jail shares (sandboxd does this once); without
    ``users``, no ``passwd`` and ``group``: a jail on a template that has the sandbox's user keeps
    the template's own (with its system users, such as apt's ``_apt``), which root inside may change."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "passwd": f"root:x:0:0:root:/root:/usr/sbin/nologin\n"
        f"{SANDBOX_USER}:x:{SANDBOX_UID}:{SANDBOX_UID}:{SANDBOX_USER}:{HOME}:/bin/bash\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
        "group": f"root:x:0:\n{SANDBOX_USER}:x:{SANDBOX_UID}:\nnogroup:x:65534:\n",
        "hosts": f"127.0.0.1\tlocalhost {HOSTNAME}\n::1\tlocalhost ip6-localhost\n",
        "hostname": f"{HOSTNAME}\n",
        "profile": _PROFILE,
        "resolv.conf": f"nameserver {SANDBOX_DNS}\n",
    }
    if not users:
        del files["passwd"], files["group"]
    for name, text in files.items():
        (folder / name).write_text(text)
        (folder / name).chmod(0o644)
    folder.chmod(0o755)


@dataclass(frozen=True)
class JailPaths:
    """A sandbox's folders on the host."""

    root: Path

    @property
    def image(self) -> Path:
        """The sandbox's disk image (its size is the sandbox's disk limit)."""
        return self.root / leftovers.image_name()  # marked with this run (see leftovers)

    @property
    def data(self) -> Path:
        """Where the disk image is mounted: the sandbox's writable space."""
        return self.root / "data"

    @property
    def disk(self) -> Path:
        """Where the disk image is mounted when the data folder is an overlay of layers on it
        (see ``layers``): the overlay's upper and work folders."""
        return self.root / "disk"

    @property
    def rootfs(self) -> Path:
        """Where a sandbox on a template has its root overlay mounted (see ``rootfs``)."""
        return self.root / "rootfs"

    @property
    def home(self) -> Path:
        return self.data / "home"

    @property
    def tmp(self) -> Path:
        return self.data / "tmp"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def log(self) -> Path:
        """The jail's stderr (bwrap's and the agent's own messages), outside the jail."""
        return self.root / "jail.log"

    @property
    def sockets(self) -> Path:
        """sandboxd's end of the agent's sockets: never mounted into the jail, so nothing inside
        can put a symlink where sandboxd connects."""
        return self.root / "sockets"

    @property
    def socket(self) -> Path:
        return self.sockets / "agent.sock"

    @property
    def forward_socket(self) -> Path:
        return self.sockets / "forward.sock"

    def create(self) -> None:
        """The host-side folders (sandboxd's own); the writable space comes with :meth:`create_data`."""
        self.root.mkdir(mode=0o711, exist_ok=True)
        self.run.mkdir(mode=0o755, exist_ok=True)  # read-only inside: the agent's settings
        self.sockets.mkdir(mode=0o700, exist_ok=True)

    def create_data(self, owner: int | None) -> None:
        """Home and /tmp, inside the (mounted) disk image."""
        for folder in (self.data, self.home, self.tmp):
            folder.mkdir(mode=0o700, exist_ok=True)
            if owner is not None:
                os.chown(folder, owner, owner)
        # /tmp as every Unix has it, for the users a template's programs switch to (apt's _apt)
        # and root inside; the data folder (0700) keeps everyone else on the host out.
        self.tmp.chmod(0o1777)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def bwrap_command(
    paths: JailPaths,
    *,
    etc: Path,
    runtime: Path,
    agent_lib: Path,
    ready_fd: int,
    seccomp_fd: int | None = None,
    own_network: bool = True,
    holder_fd: int | None = None,
    binds: tuple[tuple[Path, str], ...] = (),
    rootfs: Path | None = None,
    ca_bundle: Path | None = None,
    userns_fd: int | None = None,
) -> list[str]:
    """The full bwrap command line that starts a sandbox's agent.

    The agent writes one byte to ``ready_fd`` (inherited through bwrap) once it accepts requests.
    ``binds`` are (host folder, path inside) pairs mounted writable after home and /tmp, so a
    volume may sit below either (see ``volumes.mounts`` for the paths allowed). With ``rootfs``
    (a template's root overlay, mounted) that tree is ``/`` and no host system folder is bound;
    ``ca_bundle`` then replaces the template's trusted CA certificates.
    With ``userns_fd`` (a user namespace mapping a range, see ``idmap``) bwrap joins it and starts
    the root broker as root inside, which starts the agent as the sandbox's user; for a forked agent
    it holds the jail as root inside with no capability at all, and the fork server forks the
    broker in when a root process is first asked for (``Launcher.ensure_broker``).
    """
    identity = ["--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--cap-drop", "ALL"]
    if userns_fd is not None:  # bwrap cannot switch to uid 1000 in a namespace it joins: root inside
        caps = [arg for cap in ROOT_CAPABILITIES for arg in ("--cap-add", f"CAP_{cap}")]
        caps = [] if holder_fd is not None else caps
        identity = ["--userns", str(userns_fd), "--uid", "0", "--gid", "0", "--cap-drop", "ALL", *caps]
    cmd = [
        shutil.which("bwrap") or "bwrap",
        *identity,
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        *(["--unshare-net"] if own_network else []),
        "--unshare-cgroup-try",
        "--hostname",
        HOSTNAME,
        "--die-with-parent",
        "--new-session",
        *(["--seccomp", str(seccomp_fd)] if seccomp_fd is not None else []),
        *(["--bind", str(rootfs), "/"] if rootfs is not None else host_system_binds()),
    ]
    for name in GENERATED_ETC:
        if rootfs is None or (etc / name).exists():  # a template's own users: see write_etc
            cmd += ["--ro-bind", str(etc / name), f"/etc/{name}"]
    if rootfs is not None and ca_bundle is not None:
        cmd += ["--ro-bind", str(ca_bundle), str(CA_BUNDLE)]
    cmd += [
        "--ro-bind",
        str(runtime),
        str(RUNTIME),
        "--ro-bind",
        str(agent_lib),
        str(AGENT_ROOT),
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        *(["--tmpfs", "/home"] if rootfs is None else []),
        "--bind",
        str(paths.home),
        str(HOME),
        "--bind",
        str(paths.tmp),
        "/tmp",
        "--ro-bind",
        str(paths.run),
        str(RUN),
        *(arg for source, target in binds for arg in ("--bind", str(source), target)),
        "--chdir",
        "/" if userns_fd is not None and holder_fd is not None else str(HOME),  # a holder without caps
        "--clearenv",
    ]
    for key, value in SANDBOX_ENV.items():
        cmd += ["--setenv", key, value]
    if userns_fd is not None and holder_fd is None:  # with a forked agent, the broker is forked too
        return [*cmd, "--", *broker_command(), "agent", *agent_command(ready_fd)]
    if holder_fd is None:
        return [*cmd, "--", *agent_command(ready_fd)]
    # The agent is forked in: the jail holds a process that ends when the agent's end of the
    # lifeline (``holder_fd``, the jail's stdin) closes, and the jail with it, as the jail ends
    # with a bwrap-started agent.
    # (the pipe is the jail's stdin: reopening it through /proc is refused, it is root's)
    return [*cmd, "--", "/usr/bin/cat"]


def host_system_binds() -> list[str]:
    """A jail's system folders when it is on no template: the host's, read-only, and the files of
    the host's /etc that hold no secret."""
    options = system_binds()
    for name in _ETC_ALLOW:
        if os.path.exists(f"/etc/{name}"):
            options += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    return options


def mountpoints(binds: tuple[tuple[Path, str], ...], *, ca_bundle: bool) -> tuple[list[str], list[str]]:
    """The folders and files a jail on a template binds onto, which must exist in its root."""
    folders = [str(RUNTIME), str(AGENT_ROOT), str(RUN), str(HOME), "/tmp", "/proc", "/dev"]
    files = [f"/etc/{name}" for name in GENERATED_ETC] + ([str(CA_BUNDLE)] if ca_bundle else [])
    return [*folders, *(target for _, target in binds)], files


def system_binds() -> list[str]:
    """bwrap options that show the host's ``/usr`` read-only, with ``/bin``, ``/lib``, ``/lib64`` and
    ``/sbin`` as the host has them (links into ``/usr`` on a merged-/usr system)."""
    options = ["--ro-bind", "/usr", "/usr"]
    for link in ("bin", "lib", "lib64", "sbin"):
        target = os.readlink(f"/{link}") if os.path.islink(f"/{link}") else None
        if target:
            options += ["--symlink", target, f"/{link}"]
        elif os.path.isdir(f"/{link}"):
            options += ["--ro-bind", f"/{link}", f"/{link}"]
    return options


def agent_command(ready_fd: int) -> list[str]:
    """The agent's command line inside the jail (a forked agent shows it too)."""
    bootstrap = (
        f"import sys; sys.path.insert(0, {str(AGENT_ROOT)!r}); "
        "from agent.supervisor import start, server; "
        f"start(server('agent.server'), sys.argv[1:], agent_root={str(AGENT_ROOT)!r})"
    )
    return [str(RUNTIME / "bin" / "python"), "-I", "-c", bootstrap, str(RUN / "agent.json"), str(ready_fd)]


def broker_command() -> list[str]:
    """The root broker's command line inside the jail (``agent.rootbroker``); "hold" or "agent" and
    the agent's command line follow."""
    bootstrap = (
        f"import sys; sys.path.insert(0, {str(AGENT_ROOT)!r}); "
        "from agent.rootbroker import main; main(sys.argv[1:])"
    )
    return [str(RUNTIME / "bin" / "python"), "-I", "-S", "-c", bootstrap, str(ROOT_SOCKET)]  # -S: 3 MB less
