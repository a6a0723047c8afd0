"""Which root filesystem a create's ``template`` names.

A template built on this host (``e2bq template build``, kept in ``E2BQ_SANDBOXD_TEMPLATES_DIR``)
gives the sandbox its own ``/`` on that template's tree (see ``jail.rootfs``). The names E2B's SDKs
send by default (``code-interpreter-v1`` from the code interpreter SDK, ``base`` from the plain one)
are served on the host's system folders while no template of that name is built; any other name
that is neither a built template nor a snapshot is a 404.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import HostError, TemplateError
from ..jail import rootfs
from ..jail.rootlayers import LayerRoot
from ..templates.store import TemplateStore

# Served without a build, on the host's system folders, until a template of that name is built.
BUILT_IN = ("code-interpreter-v1", "base", "code-interpreter")


@dataclass(frozen=True)
class TemplateRoot:
    """What a create on a template starts from."""

    name: str
    rootfs: Path | None  # None: the host's system folders (a built-in name with no build)
    env: dict[str, str] = field(default_factory=dict)


class TemplateRoots:
    def __init__(self, folder: Path) -> None:
        self.store = TemplateStore(folder)

    def find(self, name: str) -> TemplateRoot:
        """The root ``name`` gives a sandbox. Raises HostError (404 unknown, 500 unusable)."""
        try:
            record = self.store.get(name)
        except TemplateError:
            if name in BUILT_IN:
                return TemplateRoot(name, None)
            served = sorted({*BUILT_IN, *(record["name"] for record in self.store.templates())})
            raise HostError(
                404,
                f"template '{name}' not found; this host serves {served} and snapshots by "
                f"id or name (build one with `e2bq template build {name} --from FILE`)",
            ) from None
        except (OSError, ValueError) as exc:
            raise HostError(500, f"template '{name}' cannot be read: {exc}") from exc
        path = Path(record["rootfs"])
        try:
            rootfs.check(path)
        except rootfs.RootfsError as exc:
            raise HostError(500, f"template '{name}': {exc}") from exc
        return TemplateRoot(name, path, dict(record.get("env", {})))

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
