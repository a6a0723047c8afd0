"""Starting and ending jails with everything around them: disk image, cgroups, network, seccomp.

A jail starts as: ``sh`` (root) joins the sandbox's cgroups → ``prlimit`` sets the open-files
limit → ``setpriv`` becomes the unprivileged sandbox uid → ``bwrap`` builds the jail under the
seccomp filter → the agent. Each step ``exec``s the next, so the process sandboxd holds is bwrap.
With the fork server running, bwrap starts only a holder and the agent, then its default kernel,
are forked in (see ``forkserver``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import ForkServerError, LaunchError, SetupError
from ..jail import bwrap, layers, leftovers, rootfs, spawn
from ..jail.cgroups import Cgroups
from ..jail.disk import Disks
from ..jail.limits import Limits
from ..jail.network import Network, Uplink
from ..settings import HostSettings
from . import jailend, jailfs, keptdisk, persist
from .forkserver import ForkServer
from .identities import Identities, make_userns
from .persist import DiskRecord

log = logging.getLogger("e2bq.sandboxd")

# The agent's package, copied whole into every jail's read-only /opt/e2bq/lib (see bwrap.AGENT_ROOT).
AGENT_SOURCE = Path(__file__).parents[1] / "agent"

# Join every cgroup given before "--", then run the rest.
_JOIN = 'while [ "$1" != "--" ]; do echo $$ > "$1" || exit 111; shift; done; shift; exec "$@"'
_INIT_POLL = 0.005  # seconds between looks for a new jail's init


@dataclass
class Jail:
    sandbox_id: str
    paths: bwrap.JailPaths
    proc: subprocess.Popen[bytes] | None
    limits: Limits
    internet: bool
    uid: int | None = None
    uplink: Uplink | None = None
    # (host folder, path inside) of the volumes bound in: a jail made again for it needs them too
    binds: tuple[tuple[Path, str], ...] = ()
    # What its disk is built on: layer ids (topmost first) under the launcher's layer store; empty
    # for a disk of its own alone. With ``paths`` this is all ``layers.mount`` needs to rebuild it.
    layers: tuple[str, ...] = ()
    # The template's root filesystem its ``/`` is an overlay of (see ``jail.rootfs``); None: the
    # jail sees the host's system folders read-only.
    rootfs: Path | None = None
    # The first host uid of the range its user namespace maps (0..65535 inside, see ``jail.idmap``);
    # None: it maps one uid (1000 inside → ``uid``). A jail on a template has one where sandboxd is
    # root, and its ``uid`` (its user's) is then ``range_base + 1000``.
    range_base: int | None = None
    # On a template whose /etc/passwd and group hold the sandbox's user: the jail keeps them
    own_users: bool = False
    # Its root broker (see ``agent.rootbroker``) is forked in on the first root process asked for:
    # the cgroups it joins then, and the lock that makes it one. None: bwrap started it, or none.
    broker_cgroups: list[Path] | None = None
    broker_lock: asyncio.Lock | None = None


class Launcher:
    """What every jail of one sandboxd shares, and how to start and end one."""

    def __init__(self, settings: HostSettings, state_dir: Path) -> None:
        self.settings = settings
        self.state_dir = state_dir
        self.uid: int | None = settings.sandbox_uid if os.geteuid() == 0 else None
        self.cgroups = Cgroups(f"e2bq-{os.getpid()}")
        self.disks = Disks()
        self.layers = layers.LayerStore(state_dir / "layers")
        self.network = Network(self.uid, block_private=settings.block_private_networks)
        self.ids = Identities(self.uid, settings.uid_range_base)
        self._kernel_requests: set[asyncio.Task[None]] = set()
        seccomp = settings.runtime / bwrap.SECCOMP_FILE
        self.seccomp: Path | None = seccomp if seccomp.exists() else None
        if self.seccomp is None:
            log.warning("no seccomp filter at %s: run `e2bq sandboxd install-runtime`", seccomp)
        self.forkserver = ForkServer(
            runtime=settings.runtime,
            agent_lib=self.agent_lib,
            folder=state_dir / "forkserver",
            seccomp=self.seccomp,
            enabled=settings.fork_kernels,
        )

    @property
    def etc(self) -> Path:
        return self.state_dir / "etc"

    @property
    def etc_without_users(self) -> Path:
        return self.state_dir / "etc-template"

    @property
    def agent_lib(self) -> Path:
        return self.state_dir / "lib"

    def prepare(self) -> None:
        """Lay out the state folder (generated /etc files, the agent's code); clear dead hosts' leftovers."""
        if os.geteuid() == 0:  # what sandboxds that died left mounted, whatever their state folder
            for done in leftovers.reclaim_disks():
                log.warning("reclaimed: %s", done)
        if self.cgroups.available:
            self.cgroups.sweep()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir.chmod(0o711)
        if self.uid is not None:
            _check_traversable(self.state_dir)
        for leftover in self.state_dir.glob("i*"):  # jails of an earlier run that died
            if persist.holds_record(leftover):  # a filesystem-paused sandbox: kept (see fspause)
                continue
            jail_paths = bwrap.JailPaths(leftover)
            rootfs.unmount(jail_paths)
            layers.unmount(jail_paths)
            self.disks.remove(jail_paths.image, jail_paths.disk)
            self.disks.remove(jail_paths.image, jail_paths.data)
            jail_paths.remove()
        # a layer's users of an earlier run are gone with their folders (and a fork cut short)
        self.layers.sweep({folder.name for folder in self.state_dir.glob("i*")})
        bwrap.write_etc(self.etc)
        bwrap.write_etc(self.etc_without_users, users=False)
        self._copy_ca_bundle()
        shutil.rmtree(self.agent_lib, ignore_errors=True)
        shutil.copytree(AGENT_SOURCE, self.agent_lib / "agent", ignore=shutil.ignore_patterns("__pycache__"))
        for path in [self.agent_lib, *self.agent_lib.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        self.forkserver.start()

    @property
    def ca_bundle(self) -> Path | None:
        """sandboxd's copy of E2BQ_SANDBOX_CA_BUNDLE (readable by every sandbox's uid), if set."""
        return self.etc / "ca-certificates.crt" if self.settings.sandbox_ca_bundle is not None else None

    def _copy_ca_bundle(self) -> None:
        if self.settings.sandbox_ca_bundle is None or self.ca_bundle is None:
            return
        try:
            shutil.copyfile(self.settings.sandbox_ca_bundle, self.ca_bundle)
        except OSError as exc:
            raise SetupError(f"E2BQ_SANDBOX_CA_BUNDLE {self.settings.sandbox_ca_bundle}: {exc}") from exc
        self.ca_bundle.chmod(0o644)

    def close(self) -> None:
        self.forkserver.close()
        self.network.close()
        self.cgroups.close()

    async def launch(
        self,
        sandbox_id: str,
        envs: dict[str, str],
        limits: Limits,
        internet: bool,
        binds: tuple[tuple[Path, str], ...] = (),
        *,
        layer_ids: tuple[str, ...] = (),
        disk: DiskRecord | None = None,
        template_root: Path | None = None,
    ) -> Jail:
        """A jail running its agent. With the fork server up, the agent and its default kernel are
        forked in; if the agent cannot be, the jail is made again with bwrap starting the agent.
        ``binds`` are folders of the host (volumes) mounted writable at paths inside; with
        ``layer_ids`` its home and /tmp start as those layers hold them (see ``jail.layers``); with
        ``disk`` (what :meth:`suspend` kept) it starts on that disk, kept as it was if it fails;
        with ``template_root`` its ``/`` is an overlay of that template's tree (see ``jail.rootfs``)."""
        launch = functools.partial(
            self._launch, sandbox_id, envs, limits, internet, binds,
            disk=disk, layer_ids=layer_ids, template_root=template_root,
        )  # fmt: skip
        if self.forkserver.running:
            try:
                return await launch(fork=True)
            except ForkServerError as exc:
                log.warning("sandbox %s: %s; starting its agent in the jail", sandbox_id, exc)
        return await launch(fork=False)

    async def relaunch(
        self,
        sandbox_id: str,
        envs: dict[str, str],
        limits: Limits,
        internet: bool,
        disk: DiskRecord,
        binds: tuple[tuple[Path, str], ...] = (),
    ) -> Jail:
        """A new jail running its agent on the disk a :meth:`suspend` kept. Raises LaunchError, and
        then the disk is kept as it was."""
        return await self.launch(sandbox_id, envs, limits, internet, binds, disk=disk)

    async def _launch(
        self,
        sandbox_id: str,
        envs: dict[str, str],
        limits: Limits,
        internet: bool,
        binds: tuple[tuple[Path, str], ...] = (),
        *,
        fork: bool,
        disk: DiskRecord | None = None,
        layer_ids: tuple[str, ...] = (),
        template_root: Path | None = None,
    ) -> Jail:
        root = Path(disk["rootfs"]) if disk is not None and "rootfs" in disk else template_root
        uid, range_base = self.ids.for_jail(disk, on_template=root is not None)
        paths = bwrap.JailPaths(self.state_dir / sandbox_id)
        handle = Jail(sandbox_id, paths, None, limits, internet=False, uid=uid, binds=binds)
        handle.rootfs, handle.range_base = root, range_base
        handle.own_users = root is not None and await asyncio.to_thread(rootfs.has_sandbox_user, root)
        userns_fd: int | None = None
        try:
            paths.create()
            if disk is not None:
                handle.layers = tuple(disk.get("layers", []))
                await asyncio.to_thread(keptdisk.mount_again, paths, disk, uid, self.disks, self.layers)
            elif layer_ids:
                handle.layers = layer_ids
                await asyncio.to_thread(jailfs.build_layered, handle, self.layers, self.disks)
            else:
                await asyncio.to_thread(self.disks.create, paths.image, paths.data, limits.disk_mb, uid)
            paths.create_data(uid)
            if root is not None and disk is None and not layer_ids and uid is not None:
                await asyncio.to_thread(jailfs.seed_home, root, paths.home, uid)
            if range_base is not None:  # bwrap, as root inside, reaches home and /tmp through it
                os.chown(paths.data, range_base, range_base)
                userns_fd = await asyncio.to_thread(make_userns, range_base)
            if handle.rootfs is not None:
                await asyncio.to_thread(jailfs.mount_root, handle, self.layers, userns_fd, self.ca_bundle)
            cgroup_dirs = self.cgroups.create(sandbox_id, limits)
            if internet:
                handle.uplink = await asyncio.to_thread(
                    self.network.connect, sandbox_id, paths.root / "network.log"
                )
            handle.internet = handle.uplink is not None
            fork_kernel = fork and self.forkserver.running
            # bwrap runs as the owner of the jail's user namespace: root inside, when it has a range
            prefix = self._prefix(cgroup_dirs, limits, uid if range_base is None else range_base)
            if handle.uplink is not None:
                prefix = ["nsenter", f"--net={handle.uplink.path}", "--", *prefix]
            handle.proc, ready_fd, handover = spawn.spawn(
                paths,
                envs=envs,
                max_output_bytes=limits.output_bytes,
                prefix=prefix,
                own_network=handle.uplink is None,
                etc=self.etc_without_users if handle.own_users else self.etc,
                runtime=self.settings.runtime,
                agent_lib=self.agent_lib,
                seccomp=self.seccomp,
                fork_kernel=fork_kernel,
                fork_agent=fork_kernel,
                binds=binds,
                rootfs=paths.rootfs if handle.rootfs is not None else None,
                ca_bundle=self.ca_bundle,
                userns_fd=userns_fd,
            )
            if userns_fd is not None:  # the jail holds its namespace now
                os.close(userns_fd)
                userns_fd = None
            if handover and range_base is not None:  # a forked agent's broker comes when asked for
                handle.broker_cgroups, handle.broker_lock = cgroup_dirs, asyncio.Lock()
            if handover:
                try:
                    await self._fork_agent(handle, cgroup_dirs, handover)
                except BaseException:
                    os.close(ready_fd)
                    raise
            await self._wait_ready(handle.proc, ready_fd, paths)
            if fork_kernel:  # in the background, as the agent's own kernel started after it answered
                task = asyncio.create_task(self._fork_kernel(handle, cgroup_dirs))
                self._kernel_requests.add(task)
                task.add_done_callback(self._kernel_requests.discard)
        except BaseException:
            if userns_fd is not None:
                os.close(userns_fd)
            await asyncio.to_thread(self.destroy if disk is None else self.suspend, handle)
            raise
        return handle

    async def _fork_agent(self, handle: Jail, cgroup_dirs: list[Path], handover: list[int]) -> None:
        """Have the fork server start the jail's agent with ``handover``'s fds (closed here).
        Raises ForkServerError."""
        try:
            try:
                init = await self._jail_init(handle)
            except LaunchError as exc:
                raise ForkServerError(str(exc)) from exc
            cgroup_procs = [folder / "cgroup.procs" for folder in cgroup_dirs]
            argv = bwrap.agent_command(bwrap.FORKED_AGENT_FDS[2])
            await self.forkserver.fork_agent(
                init, handle.uid, cgroup_procs, handover, argv, handle.range_base
            )
        except ForkServerError as exc:
            log_text = handle.paths.log.read_text(errors="replace") if handle.paths.log.exists() else ""
            raise ForkServerError(f"{exc} (jail log: {log_text[-500:]!r})") from exc
        finally:
            for fd in handover:
                os.close(fd)

    async def ensure_broker(self, handle: Jail) -> None:
        """Fork the jail's root broker in if it has none yet (idle sandboxes carry none: it costs
        about 3 MB). Nothing for a jail without a uid range or whose bwrap started one. A failure
        is logged: the root process asked for then fails, saying it cannot run as root."""
        if handle.broker_lock is None or handle.broker_cgroups is None or handle.range_base is None:
            return
        async with handle.broker_lock:
            if handle.broker_cgroups is None:
                return  # forked meanwhile
            try:
                init = await self._jail_init(handle)
                procs = [folder / "cgroup.procs" for folder in handle.broker_cgroups]
                await self.forkserver.fork_broker(init, handle.uid, procs, handle.range_base)
                handle.broker_cgroups = None
            except LaunchError as exc:
                log.warning("sandbox %s: no root broker: %s", handle.sandbox_id, exc)

    async def _fork_kernel(self, handle: Jail, cgroup_dirs: list[Path]) -> None:
        """Have the fork server start the jail's default kernel; if it cannot, tell the agent to."""
        try:
            init = await self._jail_init(handle)
            cgroup_procs = [folder / "cgroup.procs" for folder in cgroup_dirs]
            await self.forkserver.fork_kernel(init, handle.uid, cgroup_procs, handle.range_base)
        except LaunchError as exc:
            if handle.proc is None or handle.proc.poll() is not None:
                return  # the jail is gone or going: nobody waits for its kernel
            log.warning("sandbox %s: %s; its agent starts the kernel", handle.sandbox_id, exc)
            fallback = handle.paths.run / bwrap.KERNEL_FALLBACK
            with contextlib.suppress(OSError):
                fallback.touch()
                fallback.chmod(0o644)

    async def _jail_init(self, handle: Jail) -> int:
        """The host pid of the jail's init once the jail is built (the init has started the agent:
        bwrap forks it after the mounts). Raises LaunchError."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.ready_timeout
        while handle.proc is not None and handle.proc.poll() is None and loop.time() < deadline:
            inits = jailend.children(handle.proc.pid)  # bwrap's child: the jail's init
            if len(inits) == 1 and jailend.children(inits[0]):
                return inits[0]
            await asyncio.sleep(_INIT_POLL)
        raise LaunchError("the jail's init did not start its agent")

    def _prefix(self, cgroup_dirs: list[Path], limits: Limits, uid: int | None) -> list[str]:
        prefix: list[str] = []
        if cgroup_dirs:
            prefix += ["/bin/sh", "-c", _JOIN, "sh", *(str(d / "cgroup.procs") for d in cgroup_dirs), "--"]
        prefix += ["prlimit", f"--nofile={limits.open_files}:{limits.open_files}", "--"]
        if uid is not None:
            prefix += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"]
        return prefix

    async def _wait_ready(self, proc: subprocess.Popen[bytes], ready_fd: int, paths: bwrap.JailPaths) -> None:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[bytes] = loop.create_future()

        def on_readable() -> None:
            if not ready.done():
                ready.set_result(os.read(ready_fd, 1))

        loop.add_reader(ready_fd, on_readable)
        try:
            signal_byte = await asyncio.wait_for(ready, self.settings.ready_timeout)
        except TimeoutError as exc:
            raise LaunchError("the sandbox did not start in time") from exc
        finally:
            loop.remove_reader(ready_fd)
            os.close(ready_fd)
        if signal_byte != b"1":  # the pipe closed: the jail died before its agent was up
            await asyncio.to_thread(jailend.wait_quietly, proc)
            stderr = paths.log.read_text(errors="replace") if paths.log.exists() else ""
            raise LaunchError(f"the sandbox failed to start: {stderr[-2000:]}")

    def oom_kills(self, handle: Jail) -> int:
        return self.cgroups.oom_kills(handle.sandbox_id)

    def destroy(self, handle: Jail) -> None:
        """End every process of the jail and remove all it had. Blocks: call from a thread."""
        jailend.end_processes(handle.proc, self.cgroups.freezer(handle.sandbox_id))
        self.network.disconnect(handle.uplink)
        self.cgroups.remove(handle.sandbox_id)
        rootfs.unmount(handle.paths)
        if handle.layers:
            layers.unmount(handle.paths)
            self.disks.remove(handle.paths.image, handle.paths.disk)
        self.disks.remove(handle.paths.image, handle.paths.data)
        handle.paths.remove()
        if handle.layers:
            self.layers.release(handle.sandbox_id, handle.layers)
        self.ids.release(handle.uid)

    # -- filesystem pause: a jail ended with its disk kept, and a new one on that disk ----------

    def suspend(self, handle: Jail) -> DiskRecord:
        """End every process of the jail and release its cgroups and network, but keep its disk
        (see ``keptdisk``) and its uid, which owns the files on it. Blocks: call from a thread.
        Raises OSError if the disk cannot be unmounted."""
        jailend.end_processes(handle.proc, self.cgroups.freezer(handle.sandbox_id))
        handle.proc = None
        self.network.disconnect(handle.uplink)
        handle.uplink = None
        self.cgroups.remove(handle.sandbox_id)
        return keptdisk.keep(handle.paths, handle.uid, handle.layers, self.disks, handle.rootfs)

def _check_traversable(folder: Path) -> None:
    """Jails are set up as the unprivileged sandbox uid, which must reach the state folder."""
    for parent in [folder, *folder.parents]:
        if not parent.stat().st_mode & 0o001:
            raise SetupError(
                f"the sandboxes' uid cannot reach {folder}: {parent} is not searchable by others; "
                "choose another --state-dir (E2BQ_SANDBOXD_STATE_DIR) or chmod o+x it"
            )
