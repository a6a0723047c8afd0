"""The sandbox host's settings: one frozen object, every environment variable named here."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .jail.limits import Limits

DEFAULT_RUNTIME = "/opt/e2bq/runtime"
DEFAULT_SANDBOX_UID = 64000
DEFAULT_TEMPLATES_DIR = "/var/lib/e2bq/templates"
# Sandboxes on a template map their ids onto host ranges of 65536 (jail.idmap), at most UID_RANGES
# of them from the base: the last id must stay below 2**32 - 1 (the kernel's "no id").
DEFAULT_UID_RANGE_BASE = 1 << 24
MIN_UID_RANGE_BASE = 1 << 20
UID_RANGES = 4096
MAX_UID_RANGE_BASE = (1 << 32) - 2 - UID_RANGES * 65536
DEFAULT_DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEFAULT_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def generate_api_key() -> str:
    """A key of E2B's form (``e2b_`` + 40 hex digits), which every SDK release accepts."""
    return "e2b_" + secrets.token_hex(20)


@dataclass(frozen=True)
class HostSettings:
    """How ``e2bq sandboxd`` runs.

    Environment variables (read by :meth:`from_env`, explicit arguments win):

    - ``E2BQ_SANDBOXD_HOST`` / ``E2BQ_SANDBOXD_PORT``: where to listen (127.0.0.1:49982).
    - ``E2BQ_SANDBOXD_API_KEY``: the key clients send as ``X-API-KEY`` (falls back to
      ``E2B_API_KEY``; generated and printed when neither is set).
    - ``E2BQ_SANDBOXD_PUBLIC_HOST``: host name put in the URLs of published ports (the listen host).
    - ``E2BQ_SANDBOX_RUNTIME``: the Python environment sandboxes run (``/opt/e2bq/runtime``).
    - ``E2BQ_SANDBOXD_STATE_DIR``: where sandboxes' homes and sockets live (a new temporary folder).
    - ``E2BQ_SANDBOXD_MAX_SANDBOXES``: live sandboxes at most; past it creates answer 429 (100).
    - ``E2BQ_SANDBOXD_MAX_PAUSED``: sandboxes paused with their memory (held in RAM) at most (20);
      past it, the one paused longest is moved to disk (a filesystem pause, see
      ``lifecycle.fspause``). 0: every pause keeps only the disk.
    - ``E2BQ_SANDBOXD_WARM_POOL``: sandboxes kept launched ahead of creates (0); a create with the
      host's limits, internet access and no environment variables takes one at once. Each costs the
      memory of an idle sandbox, and does not count against the maximum. With no maximum below, a
      fixed size; with one, the floor.
    - ``E2BQ_SANDBOX_CA_BUNDLE``: a PEM file sandboxes on a template trust instead of the
      template's own CA certificates (bound read-only at ``/etc/ssl/certs/ca-certificates.crt``).
    - ``E2BQ_SANDBOXD_WARM_POOL_TEMPLATES``: ``name=count,...``, a fixed warm pool per template
      besides the host's own (which is made on ``code-interpreter-v1``).
    - ``E2BQ_SANDBOXD_WARM_POOL_MAX``: how far the warm pool may grow past that floor: to the
      largest burst of creates it could serve (within 10 s) seen in the last 5 minutes, while the
      host has 1 GiB of memory available (0: it does not grow). It shrinks back after that.
    - ``E2BQ_SANDBOXD_FORK_KERNELS=0``: bwrap starts every agent and every agent spawns its own
      kernel; none is forked by the host's fork server (which sandboxd runs when it is root; see
      ``agent.forkserver``).
    - ``E2BQ_SANDBOXD_MAX_SNAPSHOTS``: snapshots kept at most; past it ``create_snapshot`` answers
      400 (100).
    - ``E2BQ_SANDBOXD_MAX_TIMEOUT``: the longest sandbox lifetime a client may ask for, seconds.
    - ``E2BQ_SANDBOX_UID``: the unprivileged host uid sandboxes run as when sandboxd is root.
    - ``E2BQ_SANDBOX_UID_RANGE_BASE``: the first host id of the ranges sandboxes on a template map
      their ids onto (65536 each, 4096 ranges at most; ``2**24``). Hosts sharing a kernel (two
      nodes on one machine) need bases at least ``2**28`` apart, so no two sandboxes share an id.
    - ``E2BQ_SANDBOX_PRIVATE_NETWORKS=allow``: let sandboxes with internet reach private and
      link-local addresses (blocked by default: cloud metadata, a deployment's Redis and workers).
    - ``E2BQ_SANDBOX_MEMORY_MB``, ``E2BQ_SANDBOX_PIDS``, ``E2BQ_SANDBOX_CPU``, ``E2BQ_SANDBOX_DISK_MB``,
      ``E2BQ_SANDBOX_OPEN_FILES``, ``E2BQ_SANDBOX_OUTPUT_BYTES``: each sandbox's limits (see
      :class:`Limits`); a sandbox may ask for less at create time, never more.
    - ``E2BQ_SANDBOXD_VOLUME_MB``: the size of every new volume, MiB (1024): writing past it fails
      with "No space left on device" inside and 507 through the volume content API (needs root).
    - ``E2BQ_SANDBOXD_TEMPLATES_DIR``: where built templates live (``/var/lib/e2bq/templates``).
    - ``E2BQ_SANDBOXD_HOST_ROOT=1``: serve ``code-interpreter-v1`` and ``base`` on the host's own
      system folders (bound read-only) while they are not built; off by default, when a create on a
      template not built answers 404 naming the command that builds it. For development only: the
      sandboxes then see whatever the host keeps under ``/usr``.
    - ``E2BQ_SANDBOXD_BUILD_TEMPLATES=1``: at start, build those of ``code-interpreter-v1`` and
      ``base`` not built yet (``--build-templates``; the deployments' first start).
    - ``E2BQ_TEMPLATE_DEBIAN_MIRROR``: the Debian archive template builds install from
      (``http://deb.debian.org/debian``).
    - ``E2BQ_TEMPLATE_PIP_INDEX_URL`` (else ``PIP_INDEX_URL``) and ``E2BQ_TEMPLATE_NPM_REGISTRY`` (else
      ``npm_config_registry``): the package indexes a build's pip and npm use inside the root
      filesystem (empty: their own defaults, PyPI and the npm registry).
    - ``E2BQ_TEMPLATE_CA_BUNDLE`` (else ``PIP_CERT``, else ``SSL_CERT_FILE``): the certificates a
      build's pip, npm, curl and git trust, this host's own (``/etc/ssl/certs/ca-certificates.crt``);
      shown to the build's steps only, never kept in the template.
    """

    host: str = "127.0.0.1"
    port: int = 49982
    api_key: str = ""
    public_host: str = ""
    runtime: Path = Path(DEFAULT_RUNTIME)
    state_dir: Path | None = None
    max_sandboxes: int = 100
    max_paused: int = 20
    max_snapshots: int = 100
    warm_pool: int = 0
    warm_pool_max: int = 0
    # (template name, count): a fixed warm pool per named template, besides the host's own
    warm_pool_templates: tuple[tuple[str, int], ...] = ()
    default_timeout: int = 300
    max_timeout: int = 86_400
    sandbox_uid: int = DEFAULT_SANDBOX_UID
    uid_range_base: int = DEFAULT_UID_RANGE_BASE
    ready_timeout: float = 30.0
    limits: Limits = field(default_factory=Limits)
    block_private_networks: bool = True
    fork_kernels: bool = True
    volume_mb: int = 1024
    templates_dir: Path = Path(DEFAULT_TEMPLATES_DIR)
    template_mirror: str = DEFAULT_DEBIAN_MIRROR
    template_pip_index: str = ""
    template_npm_registry: str = ""
    template_ca_bundle: Path = Path(DEFAULT_CA_BUNDLE)
    # Certificates sandboxes on a template trust instead of the template's own (a proxy's CA)
    sandbox_ca_bundle: Path | None = None
    # E2B's template build API (Template.build): its steps run as root in the build's jail, on the
    # host's network, so it is off unless asked for; off, only `e2bq template build` on the host builds.
    template_builds: bool = False
    # code-interpreter-v1 and base not built: run their sandboxes on the host's system folders
    host_root: bool = False
    # at start, build the shipped templates not built yet
    build_templates: bool = False
    key_generated: bool = False  # no key was given, so from_env made one (to be printed)

    def __post_init__(self) -> None:
        if self.warm_pool < 0 or self.warm_pool_max < 0 or self.max_sandboxes < 1:
            raise ValueError("the warm pool must be 0 or more sandboxes, and the maximum 1 or more")
        if self.volume_mb < 8:
            raise ValueError("volumes must be 8 MiB or more (E2BQ_SANDBOXD_VOLUME_MB)")
        if self.max_paused < 0:
            raise ValueError("E2BQ_SANDBOXD_MAX_PAUSED must be 0 or more sandboxes")
        if self.max_snapshots < 0:
            raise ValueError("the maximum of snapshots must be 0 or more")
        if not MIN_UID_RANGE_BASE <= self.uid_range_base <= MAX_UID_RANGE_BASE:
            raise ValueError(
                f"E2BQ_SANDBOX_UID_RANGE_BASE must be from {MIN_UID_RANGE_BASE} (above the ids accounts "
                f"and their subordinate ranges use) to {MAX_UID_RANGE_BASE} (room for {UID_RANGES} ranges)"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> HostSettings:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        simple = {
            "host": ("E2BQ_SANDBOXD_HOST", str),
            "port": ("E2BQ_SANDBOXD_PORT", int),
            "public_host": ("E2BQ_SANDBOXD_PUBLIC_HOST", str),
            "runtime": ("E2BQ_SANDBOX_RUNTIME", Path),
            "state_dir": ("E2BQ_SANDBOXD_STATE_DIR", Path),
            "max_sandboxes": ("E2BQ_SANDBOXD_MAX_SANDBOXES", int),
            "max_paused": ("E2BQ_SANDBOXD_MAX_PAUSED", int),
            "max_snapshots": ("E2BQ_SANDBOXD_MAX_SNAPSHOTS", int),
            "warm_pool": ("E2BQ_SANDBOXD_WARM_POOL", int),
            "warm_pool_max": ("E2BQ_SANDBOXD_WARM_POOL_MAX", int),
            "max_timeout": ("E2BQ_SANDBOXD_MAX_TIMEOUT", int),
            "sandbox_uid": ("E2BQ_SANDBOX_UID", int),
            "uid_range_base": ("E2BQ_SANDBOX_UID_RANGE_BASE", int),
            "volume_mb": ("E2BQ_SANDBOXD_VOLUME_MB", int),
            "templates_dir": ("E2BQ_SANDBOXD_TEMPLATES_DIR", Path),
            "template_mirror": ("E2BQ_TEMPLATE_DEBIAN_MIRROR", str),
            "sandbox_ca_bundle": ("E2BQ_SANDBOX_CA_BUNDLE", Path),
        }
        for name, (var, convert) in simple.items():
            if env.get(var):
                values[name] = convert(env[var])
        limits = {
            name: (float if name == "cpu" else int)(env[f"E2BQ_SANDBOX_{name.upper()}"])
            for name in (f.name for f in fields(Limits))
            if env.get(f"E2BQ_SANDBOX_{name.upper()}")
        }
        limit_overrides = overrides.pop("limits", None) or {}
        values["limits"] = replace(Limits(), **{**limits, **limit_overrides}).validate()
        if env.get("E2BQ_SANDBOX_PRIVATE_NETWORKS", "").lower() in ("allow", "1", "true", "yes"):
            values["block_private_networks"] = False
        if env.get("E2BQ_SANDBOXD_FORK_KERNELS", "").lower() in ("0", "false", "no"):
            values["fork_kernels"] = False
        if env.get("E2BQ_SANDBOXD_TEMPLATE_BUILDS", "").lower() in ("1", "true", "yes"):
            values["template_builds"] = True
        if env.get("E2BQ_SANDBOXD_HOST_ROOT", "").lower() in ("1", "true", "yes"):
            values["host_root"] = True
        if env.get("E2BQ_SANDBOXD_BUILD_TEMPLATES", "").lower() in ("1", "true", "yes"):
            values["build_templates"] = True
        # pip and npm inside a build use the index this host's own pip and npm were pointed at.
        values["template_pip_index"] = env.get("E2BQ_TEMPLATE_PIP_INDEX_URL") or env.get("PIP_INDEX_URL", "")
        values["template_npm_registry"] = env.get("E2BQ_TEMPLATE_NPM_REGISTRY") or env.get(
            "npm_config_registry", ""
        )
        if env.get("E2BQ_SANDBOXD_WARM_POOL_TEMPLATES"):
            values["warm_pool_templates"] = parse_warm_pools(env["E2BQ_SANDBOXD_WARM_POOL_TEMPLATES"])
        bundle = env.get("E2BQ_TEMPLATE_CA_BUNDLE") or env.get("PIP_CERT") or env.get("SSL_CERT_FILE")
        if bundle:
            values["template_ca_bundle"] = Path(bundle)
        key = env.get("E2BQ_SANDBOXD_API_KEY") or env.get("E2B_API_KEY")
        if key:
            values["api_key"] = key
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        if not settings.api_key:
            settings = replace(settings, api_key=generate_api_key(), key_generated=True)
        return settings

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def advertised_host(self) -> str:
        return self.public_host or self.host

    @property
    def python(self) -> Path:
        return self.runtime / "bin" / "python"


def parse_warm_pools(text: str) -> tuple[tuple[str, int], ...]:
    """``"base=2,mine=1"`` → (("base", 2), ("mine", 1)). Raises ValueError naming the bad entry."""
    pools = []
    for entry in filter(None, (part.strip() for part in text.split(","))):
        name, _, count = entry.partition("=")
        if not name.strip() or not count.strip().isdigit():
            raise ValueError(
                f"E2BQ_SANDBOXD_WARM_POOL_TEMPLATES entry {entry!r}: write NAME=COUNT, e.g. base=2"
            )
        pools.append((name.strip(), int(count)))
    return tuple(pools)
