"""E2BTools: the toolkit as an agno Toolkit, for ``Agent(tools=[E2BTools()])``.

Every tool of :class:`~e2bq.E2BToolkit` is registered with agno under its own name, signature and
docstring, so agno builds its schema and injects ``agent`` where the signature asks (the download
methods). A tool returns the JSON of the toolkit's result dict: agno hands the model ``str()`` of
what a tool returns, which for a dict would be Python's repr, not JSON.

Images: agno 3.1 takes a tool's images from the ``ToolResult`` it returns (as agno's own E2B tools
do), not through the agent. So the download methods get, as their ``agent``, a collector of the
images they attach, and those come back as ``ToolResult(content=<the JSON>, images=[...])``, which
agno adds to the run of whichever agent or team called the tool.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any, get_type_hints

try:
    from agno.media import Image
    from agno.tools import Toolkit
    from agno.tools.function import ToolResult
except ImportError as exc:  # the extra is optional: say how to get it
    raise ImportError("e2bq.integrations.agno needs agno: pip install 'e2bq[agno]'") from exc

from ..client.manager import SandboxManager
from ..client.toolkit import E2BToolkit
from ..errors import InvalidInputError


class E2BTools(Toolkit):
    """E2BToolkit's tools for agno agents and teams.

    ``sandbox_manager``, ``auto_create_default`` and ``global_workers`` make the E2BToolkit (a
    default SandboxManager if none is given), unless ``toolkit`` is passed to share one already
    made. ``kwargs`` go to agno's Toolkit (``include_tools``, ``exclude_tools``, ``instructions``,
    …; ``name`` defaults to the toolkit's, "e2b_tools").

    Attributes agno's Toolkit does not have come from the wrapped toolkit: ``tools.manager``,
    ``tools.run_python_code(...)`` and ``tools.call(...)`` are the E2BToolkit's, while ``name``,
    ``tools`` and ``functions`` are agno's. Raises InvalidInputError for a ``sandbox_manager``
    that is not the given ``toolkit``'s.
    """

    def __init__(
        self,
        sandbox_manager: SandboxManager | None = None,
        auto_create_default: bool = True,
        global_workers: int = 10,
        *,
        toolkit: E2BToolkit | None = None,
        **kwargs: Any,
    ) -> None:
        if toolkit is None:
            toolkit = E2BToolkit(
                sandbox_manager if sandbox_manager is not None else SandboxManager(),
                auto_create_default=auto_create_default,
                global_workers=global_workers,
            )
        elif sandbox_manager is not None and sandbox_manager is not toolkit.manager:
            raise InvalidInputError("pass sandbox_manager or toolkit, not both: a toolkit has its manager")
        self.toolkit = toolkit
        kwargs.setdefault("name", toolkit.name)
        super().__init__(tools=[agno_entrypoint(toolkit, name) for name in toolkit.functions], **kwargs)

    def __getattr__(self, name: str) -> Any:
        # Called only for what neither E2BTools nor agno's Toolkit has; private names are not
        # passed on, so that agno's checks for its own hooks never find the toolkit's internals.
        if name.startswith("_") or name == "toolkit":
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return getattr(self.toolkit, name)

    def __deepcopy__(self, memo: dict[int, Any]) -> E2BTools:
        # agno deep-copies an agent's tools for each copy of the agent. The toolkit is a client
        # of Redis and the queue, whose state (sandboxes, jobs, the last results) lives there and
        # must be shared: a copy would open new connections and forget which PNG came last.
        return self


def agno_entrypoint(toolkit: E2BToolkit, name: str) -> Callable[..., str | ToolResult]:
    """The tool ``name`` as agno calls it: keyword arguments in (checked by ``toolkit.call``),
    the JSON of its result out; with the images it attached, a ToolResult carrying them."""
    method = toolkit.functions[name]
    signature = inspect.signature(method)
    takes_agent = "agent" in signature.parameters

    def entrypoint(**arguments: Any) -> str | ToolResult:
        images = _Images()
        if takes_agent:  # agno injected its agent: agno takes the images from the ToolResult
            arguments.pop("agent", None)
        result = toolkit.call(name, arguments, injected={"agent": images})
        content = json.dumps(result)
        if images.taken:
            return ToolResult(content=content, images=images.taken)
        return content

    # agno reads the tool's name, docstring, signature and type hints from the entrypoint. The
    # parameters are keyword-only because agno passes them so, and pydantic's validate_call
    # (which agno wraps tools in) would otherwise pass them on by position.
    entrypoint.__name__ = entrypoint.__qualname__ = name
    entrypoint.__doc__ = method.__doc__
    hints = get_type_hints(method)
    hints["return"] = str | ToolResult
    entrypoint.__annotations__ = hints
    vars(entrypoint)["__signature__"] = signature.replace(  # what inspect.signature reports
        parameters=[
            parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=hints.get(pname, Any))
            for pname, parameter in signature.parameters.items()
        ],
        return_annotation=hints["return"],
    )
    return entrypoint


class _Images:
    """What a download method takes as its ``agent``: it keeps the images attached to it."""

    def __init__(self) -> None:
        self.taken: list[Image] = []

    def add_image(self, image: Image) -> None:
        self.taken.append(image)
