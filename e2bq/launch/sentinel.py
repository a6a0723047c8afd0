"""A Redis that fails over: one master, its replicas and three Sentinels, on loopback ports.

For tests and benchmarks of a failover (a real one: ``redis-server --sentinel``, the same binary as
the servers, no other package)::

    with start_sentinel_cluster(folder) as cluster:
        env = {"E2BQ_REDIS_URL": cluster.url}
        ...
        old = cluster.kill_master()               # SIGKILL, as a crash or a lost host
        new = cluster.wait_for_failover(30, old=old)  # a replica is promoted
        cluster.revive(old)                       # optional: the old master returns as a replica

The Sentinels notice a dead master after ``down_after`` milliseconds (2000 here; Sentinel's own
default is 30000) and promote a replica about a second later. With 1000 on a loaded 2-core machine
a just-promoted master that missed a second of pings was failed over again (a second, spurious
failover whose demoted master kept taking writes for ~10 s: those writes were lost). A Sentinel
does not start a second failover of the same master within twice ``failover_timeout`` of the first
(10 s here):
:meth:`SentinelCluster.failover_ready_at` says when the next one can happen.
"""

from __future__ import annotations

import functools
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import redis

from ..errors import ConfigurationError
from .process import POLL_INTERVAL, Process, free_port, require_free, spawn
from .redis_server import RedisProcess, start_redis

MASTER_NAME = "e2bq"
LOOPBACK = "127.0.0.1"
Address = tuple[str, int]


@dataclass(frozen=True, kw_only=True)
class SentinelProcess(Process):
    """A running ``redis-server --sentinel``; ``port`` is where it answers."""

    port: int


@dataclass(kw_only=True)
class SentinelCluster:
    """A master, its replicas and the Sentinels watching them, started by :func:`start_sentinel_cluster`.

    Attributes:
        master_name: the name the Sentinels know the master by.
        servers: every redis-server started, the first master first (killed ones included).
        sentinels: the Sentinels.
        failover_timeout: the Sentinels' ``failover-timeout``, seconds.
        last_failover: ``time.monotonic()`` when :meth:`wait_for_failover` last saw a promotion.
    """

    folder: Path
    master_name: str
    servers: list[RedisProcess]
    sentinels: list[SentinelProcess]
    failover_timeout: float
    last_failover: float = field(default=float("-inf"))

    @property
    def url(self) -> str:
        """What ``E2BQ_REDIS_URL`` should say: every Sentinel, database 0, and the master's name."""
        chunks = ";".join(f"sentinel://{LOOPBACK}:{s.port}/0" for s in self.sentinels)
        return f"{chunks}?master_name={self.master_name}"

    def master_address(self) -> Address:
        """The master's address as the first Sentinel that answers names it."""
        for sentinel in self._live_sentinels():
            if (address := self._named_master(sentinel)) is not None:
                return address
        raise ConfigurationError(f"no Sentinel of {self.folder} names a master for {self.master_name!r}")

    def master(self) -> RedisProcess:
        """The running server the Sentinels name master."""
        _, port = self.master_address()
        return self._server(port)

    def kill_master(self) -> Address:
        """SIGKILL the master (no shutdown, no last write to disk) and return its address."""
        master = self.master()
        master.proc.send_signal(signal.SIGKILL)
        master.proc.wait(timeout=10)
        return LOOPBACK, master.port

    def wait_for_failover(self, timeout: float, *, old: Address | None = None) -> Address:
        """Wait until every live Sentinel names a master other than ``old`` (default: the one they
        name now), that server answers as a master, and no Sentinel is still failing over (the
        other replicas follow the new master); return its address. :attr:`last_failover` is set
        to when the promotion was first seen.

        Raises TimeoutError after ``timeout`` seconds."""
        old = old or self.master_address()
        deadline = time.monotonic() + timeout
        promoted: Address | None = None
        while True:
            named = {self._named_master(s) for s in self._live_sentinels()}
            new = next(iter(named)) if len(named) == 1 else None
            if new is not None and new != old and _role(new) == "master":
                if promoted != new:
                    promoted, self.last_failover = new, time.monotonic()
                if all(_settled(s.port, self.master_name) for s in self._live_sentinels()):
                    return new
            if time.monotonic() > deadline:
                raise TimeoutError(f"no failover from {old} within {timeout:g} s (Sentinels name {named})")
            time.sleep(POLL_INTERVAL)

    def failover_ready_at(self) -> float:
        """The ``time.monotonic()`` from which the Sentinels will fail the master over again."""
        return self.last_failover + 2 * self.failover_timeout

    def revive(self, address: Address, *, timeout: float = 30.0) -> RedisProcess:
        """Start a killed server again at ``address``, as a replica of the current master, and wait
        until it is in sync and the Sentinels count it again."""
        _, port = address
        dead = self._server(port, running=False)
        host, master_port = self.master_address()
        server = start_redis(dead.folder, "--replicaof", host, str(master_port), port=port, name=dead.name)
        self.servers[self.servers.index(dead)] = server
        _wait(lambda: _in_sync(server.port), timeout, f"revived {server.name} to sync")
        self.wait_until_watched(timeout)
        return server

    def wait_until_watched(self, timeout: float = 30.0) -> None:
        """Wait until every Sentinel sees the others and every running replica (they find each other
        through hello messages every 2 s): before that a failover may lack its quorum."""
        replicas = sum(1 for s in self.servers if s.running()) - 1
        others = len(self.sentinels) - 1
        for sentinel in self._live_sentinels():
            _wait(
                functools.partial(_watches, sentinel.port, self.master_name, replicas, others),
                timeout,
                f"sentinel {sentinel.name} to see {replicas} replicas and {others} other sentinels",
            )

    def stop(self) -> None:
        """Stop every Sentinel and server by PID (harmless for those already dead)."""
        for process in [*self.sentinels, *self.servers]:
            process.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _live_sentinels(self) -> list[SentinelProcess]:
        return [s for s in self.sentinels if s.running()]

    def _named_master(self, sentinel: SentinelProcess) -> Address | None:
        try:
            with redis.Redis(LOOPBACK, sentinel.port, socket_timeout=2, decode_responses=True) as client:
                host, port = client.execute_command("SENTINEL", "get-master-addr-by-name", self.master_name)
                return str(host), int(port)
        except (redis.RedisError, TypeError, ValueError):
            return None

    def _server(self, port: int, *, running: bool = True) -> RedisProcess:
        for server in self.servers:
            if server.port == port and server.running() == running:
                return server
        state = "running" if running else "stopped"
        raise ConfigurationError(f"no {state} redis-server of {self.folder} on port {port}")


def start_sentinel_cluster(
    folder: Path,
    *,
    replicas: int = 2,
    sentinels: int = 3,
    master_name: str = MASTER_NAME,
    down_after: int = 2000,
    failover_timeout: int = 5000,
    timeout: float = 30.0,
) -> SentinelCluster:
    """Start a master, ``replicas`` replicas and ``sentinels`` Sentinels under ``folder``, on free
    loopback ports, and return once the replicas are in sync and the Sentinels see all of them.

    ``down_after`` (milliseconds without an answer before a Sentinel deems the master down) and
    ``failover_timeout`` (milliseconds) are the Sentinels' settings; the quorum is a majority of
    the Sentinels. Nothing is persisted. Raises ConfigurationError when redis-server is missing or
    a process does not come up (everything started is stopped first); use the result as a context
    manager, or call its ``stop()``.
    """
    if shutil.which("redis-server") is None:
        raise ConfigurationError("redis-server is not installed (apt-get install -y redis-server)")
    started: list[Process] = []
    try:
        master = start_redis(folder / "master", name="master")
        started.append(master)
        servers = [master]
        for i in range(replicas):
            replica = start_redis(
                folder / f"replica-{i}", "--replicaof", LOOPBACK, str(master.port), name=f"replica-{i}"
            )
            started.append(replica)
            servers.append(replica)
        for replica in servers[1:]:
            _wait(functools.partial(_in_sync, replica.port), timeout, f"{replica.name} to sync")
        watchers: list[SentinelProcess] = []
        for i in range(sentinels):
            conf = _Conf(master_name, master.port, sentinels // 2 + 1, down_after, failover_timeout)
            watcher = _start_sentinel(folder / f"sentinel-{i}", f"sentinel-{i}", conf, timeout)
            started.append(watcher)
            watchers.append(watcher)
        cluster = SentinelCluster(
            folder=folder,
            master_name=master_name,
            servers=servers,
            sentinels=watchers,
            failover_timeout=failover_timeout / 1000,
        )
        cluster.wait_until_watched(timeout)
        return cluster
    except BaseException:
        for process in started:
            process.stop()
        raise


@dataclass(frozen=True)
class _Conf:
    master_name: str
    master_port: int
    quorum: int
    down_after: int
    failover_timeout: int

    def text(self, port: int, folder: Path) -> str:
        return "\n".join([
            f"port {port}",
            f"bind {LOOPBACK}",
            f"dir {folder}",
            f"sentinel monitor {self.master_name} {LOOPBACK} {self.master_port} {self.quorum}",
            f"sentinel down-after-milliseconds {self.master_name} {self.down_after}",
            f"sentinel failover-timeout {self.master_name} {self.failover_timeout}",
            f"sentinel parallel-syncs {self.master_name} 1",
            "",
        ])


def _start_sentinel(folder: Path, name: str, conf: _Conf, timeout: float) -> SentinelProcess:
    port = free_port()
    require_free(port, f"sentinel {name}")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "sentinel.conf"  # a Sentinel rewrites its file with what it learns: not shared
    path.write_text(conf.text(port, folder))
    server = shutil.which("redis-server") or "redis-server"
    log = folder / f"{name}.log"
    proc = spawn(
        [server, str(path), "--sentinel"],
        log=log,
        env=None,
        ready=lambda: _watches(port, conf.master_name, 0, 0),
        timeout=timeout,
        what=f"sentinel {name}",
    )
    return SentinelProcess(name=name, proc=proc, log=log, port=port, grace=5.0)


def _watches(port: int, master_name: str, replicas: int, others: int) -> bool:
    """The Sentinel at ``port`` sees ``master_name`` up, at least ``others`` other Sentinels, and
    at least ``replicas`` replicas up and linked to it (a dead server it once knew stays listed)."""
    with redis.Redis(LOOPBACK, port, socket_timeout=2, decode_responses=True) as client:
        master = _fields(client.execute_command("SENTINEL", "master", master_name))
        listed = [_fields(r) for r in client.execute_command("SENTINEL", "replicas", master_name)]
    healthy = [r for r in listed if r.get("flags") == "slave" and r.get("master-link-status") == "ok"]
    return (
        len(healthy) >= replicas
        and int(master["num-other-sentinels"]) >= others
        and "down" not in str(master["flags"])
    )


def _settled(port: int, master_name: str) -> bool:
    """The Sentinel at ``port`` sees its master up and is not in the middle of a failover."""
    with redis.Redis(LOOPBACK, port, socket_timeout=2, decode_responses=True) as client:
        flags = str(_fields(client.execute_command("SENTINEL", "master", master_name))["flags"])
    return "down" not in flags and "failover" not in flags


def _fields(reply: object) -> dict[str, str]:
    """A Sentinel reply of alternating names and values (or redis-py's dict of it) as a dict."""
    if isinstance(reply, dict):
        return {str(k): str(v) for k, v in reply.items()}
    flat = list(reply) if isinstance(reply, list) else []
    return {str(k): str(v) for k, v in zip(flat[::2], flat[1::2], strict=True)}


def _in_sync(port: int) -> bool:
    with redis.Redis(LOOPBACK, port, socket_timeout=2, decode_responses=True) as client:
        info = client.info("replication")
    return bool(info.get("role") == "slave" and info.get("master_link_status") == "up")


def _role(address: Address | None) -> str | None:
    if address is None:
        return None
    try:
        with redis.Redis(*address, socket_timeout=2, decode_responses=True) as client:
            return str(client.info("replication").get("role"))
    except redis.RedisError:
        return None


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        try:
            if condition():
                return
        except Exception as exc:  # not answering yet: try again
            last = f" (last check: {exc!r})"
        if time.monotonic() > deadline:
            raise ConfigurationError(f"timed out after {timeout:g} s waiting for {what}{last}")
        time.sleep(POLL_INTERVAL)
