"""Which root filesystem a create's ``template`` names.

A template built on this host (``e2bq template build``, kept in ``E2BQ_SANDBOXD_TEMPLATES_DIR``)
gives the sandbox its own ``/`` on that template's tree (see ``jail.rootfs``). The names E2B's SDKs
send by default are ``code-interpreter-v1`` (the code interpreter SDK) and ``base`` (the plain one),
both shipped with e2bq and built by ``make install`` and ``e2bq up``; ``code-interpreter`` is
another name of the first. A name that is neither a built template nor a snapshot is a 404 naming
the command that builds it; only with ``E2BQ_SANDBOXD_HOST_ROOT=1`` are the shipped names served
on the host's own system folders while they are not built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import HostError, TemplateError
from ..jail import rootfs
from ..jail.rootlayers import LayerRoot
from ..templates.store import TemplateRecord, TemplateStore

# Shipped with e2bq (templates/defs); with E2BQ_SANDBOXD_HOST_ROOT=1 served on the host's system
# folders until built.
BUILT_IN = ("code-interpreter-v1", "base", "code-interpreter")
# Names E2B's SDKs have sent for a shipped template: served by that template's build.
ALIASES = {"code-interpreter": "code-interpreter-v1"}


@dataclass(frozen=True)
class TemplateRoot:
    """What a create on a template starts from."""

    name: str
    rootfs: Path | None  # None: the host's system folders (a built-in name with no build)
    env: dict[str, str] = field(default_factory=dict)


class TemplateRoots:
    def __init__(self, folder: Path, *, host_root: bool = False) -> None:
        self.store = TemplateStore(folder)
        self.host_root = host_root  # shipped names not built: the host's system folders

    def find(self, name: str) -> TemplateRoot:
        """The root ``name`` gives a sandbox. Raises HostError (404 unknown, 500 unusable)."""
        try:
            record = self._record(name)
        except TemplateError:
            if name in BUILT_IN and self.host_root:
                return TemplateRoot(name, None)
            raise HostError(404, self._not_built(name)) from None
        except (OSError, ValueError) as exc:
            raise HostError(500, f"template '{name}' cannot be read: {exc}") from exc
        path = Path(record["rootfs"])
        try:
            rootfs.check(path)
        except rootfs.RootfsError as exc:
            raise HostError(500, f"template '{name}': {exc}") from exc
        return TemplateRoot(name, path, dict(record.get("env", {})))

    def _record(self, name: str) -> TemplateRecord:
        """The built template ``name`` names (an alias: its template's). Raises TemplateError."""
        try:
            return self.store.get(name)
        except TemplateError:
            if name not in ALIASES:
                raise
            return self.store.get(ALIASES[name])

    def _not_built(self, name: str) -> str:
        built = sorted(record["name"] for record in self.store.templates())
        if name in BUILT_IN:
            shipped = ALIASES.get(name, name)
            return (
                f"template '{name}' is not built on this host (built: {built}): build it with "
                f"`e2bq template build {shipped}` (`make install` and `e2bq up` build the shipped ones)"
            )
        return (
            f"template '{name}' not found; this host serves the templates built on it ({built}) and "
            f"snapshots by id or name (build one with `e2bq template build {name} --from FILE`)"
        )

    def of_layer(self, name: str, root: LayerRoot | None) -> TemplateRoot:
        """The root of a sandbox made from a layer (a snapshot's or a fork's, ``name``): the template
        build the layer's root parts were taken on, even if the template's name points at another
        build since; the host's root for a layer without root parts. Raises HostError 410 when
        that build is gone (a layer's root parts on any other tree would be a wrong root)."""
        if root is None:
            return TemplateRoot(name, None)
        path = Path(root["rootfs"])
        try:
            rootfs.check(path)
        except rootfs.RootfsError:
            raise HostError(410, self._gone(root)) from None
        return TemplateRoot(name, path)

    def _gone(self, root: LayerRoot) -> str:
        template = root["template"]
        try:
            current = self.store.get(template)["rootfs"]
        except (TemplateError, OSError, ValueError):
            current = None
        what = "was deleted" if current is None else "was rebuilt and its old build deleted"
        return (
            f"template '{template}', whose build this snapshot's files lie on ({root['rootfs']}), {what}: "
            "a sandbox cannot be made from the snapshot; take a new one on the template as it is now"
        )
