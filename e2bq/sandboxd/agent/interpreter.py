"""Placeholder: being written."""

from __future__ import annotations

from starlette.routing import BaseRoute

from .config import AgentConfig


class InterpreterService:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config

    def routes(self) -> list[BaseRoute]:
        return []

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None
