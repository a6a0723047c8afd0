"""At start-up: the filesystem-paused sandboxes an earlier run of sandboxd left, taken over.

Each is a folder of the state folder holding a record (``persist``) and the sandbox's disk image;
it becomes a paused sandbox of this run, resumed as any filesystem-paused one (``fspause``). A
record that cannot be read, or whose image is gone, is left where it is, with a warning.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..jail import bwrap
from ..jail.egress import EgressRules
from ..jail.limits import Limits
from ..volumes.mounts import Bind
from . import persist
from .launcher import Jail
from .pause import Lifecycle
from .ports import PortPublisher

if TYPE_CHECKING:
    from .sandboxes import Sandbox, SandboxHost

log = logging.getLogger("e2bq.sandboxd")


def kept_sandboxes(host: SandboxHost, make: type[Sandbox]) -> list[Sandbox]:
    """At start-up: the filesystem-paused sandboxes an earlier run of sandboxd left in the state
    folder, as paused sandboxes of this one (``make`` is the Sandbox class)."""
    assert host.launcher is not None, "start() the host first"
    adopted = []
    for path in sorted(host.state_dir.glob("i*/" + persist.RECORD)):
        record = persist.read(path.parent)
        if record is None:
            continue
        image = record["disk"]["image"]
        if image is not None and not (path.parent / image).is_file():
            log.warning("paused sandbox %s has lost its disk image: not adopted", record["sandbox_id"])
            continue
        paths = bwrap.JailPaths(path.parent)
        limits = Limits(**record["limits"])
        owner = record["disk"]["owner"]
        binds = _binds(host, record)
        if binds is None:
            continue
        jail = Jail(
            record["sandbox_id"],
            paths,
            None,
            limits,
            record["internet"],
            uid=owner,
            binds=tuple((bind.source, bind.target) for bind in binds),
            layers=tuple(record["disk"].get("layers", [])),
        )
        host.launcher.ids.reserve(jail.uid)
        sandbox = make(
            sandbox_id=record["sandbox_id"],
            template_id=record["template_id"],
            metadata=record["metadata"],
            envs=record["envs"],
            started_at=record["started_at"],
            end_at=record["end_at"],
            access_token=record["access_token"],
            traffic_token=record["traffic_token"],
            jail=jail,
            ports=PortPublisher(paths.forward_socket, host.settings.host, host.settings.advertised_host),
            state="paused",
            lifecycle=Lifecycle(**record["lifecycle"]),
            timeout=record["timeout"],
            paused_at=record["paused_at"],
            filesystem_paused=True,
            network=_network(record.get("network")),
            volume_mounts=[bind.mount() for bind in binds],
        )
        adopted.append(sandbox)
    return adopted


def _binds(host: SandboxHost, record: persist.PausedRecord) -> list[Bind] | None:
    """The volumes the sandbox mounts, found again by name; None (not adopted) if one is gone."""
    binds = []
    for mount in record.get("volume_mounts", []):
        volume = host.volumes.by_name(mount["name"])
        if volume is None:
            log.warning(
                "paused sandbox %s mounts volume %r, which is gone: not adopted",
                record["sandbox_id"],
                mount["name"],
            )
            return None
        binds.append(Bind(host.volumes.data(volume), mount["path"], volume))
    return binds


def _network(network: persist.NetworkRecord | None) -> EgressRules | None:
    if network is None:
        return None
    dns = network["dns_servers"]
    return EgressRules(
        tuple(network["allow_out"]), tuple(network["deny_out"]), None if dns is None else tuple(dns)
    )
