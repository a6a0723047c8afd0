"""A model for agno agents that answers from a script instead of an LLM: each turn either calls
tools (as a Chat Completions response would) or ends with text. It records the tools agno offered
it, so a test sees them as a real model would, through the agent's own tool resolution."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from agno.models.base import Model
from agno.models.response import ModelResponse


def calls(*tools: tuple[str, dict[str, Any]]) -> ModelResponse:
    """A turn that calls ``tools`` (name, arguments), each with its arguments as a JSON string."""
    return ModelResponse(
        role="assistant",
        tool_calls=[
            {"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
            for i, (name, args) in enumerate(tools)
        ],
    )


def says(text: str) -> ModelResponse:
    return ModelResponse(role="assistant", content=text)


@dataclass
class ScriptedModel(Model):
    id: str = "scripted"
    provider: str = "tests"
    script: list[ModelResponse] = field(default_factory=list)
    offered: list[list[dict[str, Any]]] = field(default_factory=list)  # the tools of each turn

    def invoke(self, *args: Any, **kwargs: Any) -> ModelResponse:
        self.offered.append(list(kwargs.get("tools") or []))
        return self.script.pop(0) if self.script else says("done")

    async def ainvoke(self, *args: Any, **kwargs: Any) -> ModelResponse:
        return self.invoke(*args, **kwargs)

    def invoke_stream(self, *args: Any, **kwargs: Any) -> Iterator[ModelResponse]:
        yield self.invoke(*args, **kwargs)

    async def ainvoke_stream(self, *args: Any, **kwargs: Any) -> AsyncIterator[ModelResponse]:
        yield self.invoke(*args, **kwargs)

    def _parse_provider_response(self, response: Any, **kwargs: Any) -> ModelResponse:
        return response  # type: ignore[no-any-return]

    def _parse_provider_response_delta(self, response: Any) -> ModelResponse:
        return response  # type: ignore[no-any-return]
