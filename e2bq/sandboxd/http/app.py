"""sandboxd's ASGI app: the data plane for requests that name a sandbox, the control plane else."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from ..lifecycle.sandboxes import SandboxHost
from ..settings import HostSettings
from ..usage import UsageSampler
from .control import ControlPlane
from .proxy import DataPlane, is_data_plane
from .volumes import VolumeRoutes


class HostApp:
    """One origin for both planes, as E2B_API_URL = E2B_SANDBOX_URL expects."""

    def __init__(self, settings: HostSettings) -> None:
        self.host = SandboxHost(settings)
        self.data = DataPlane(self.host)
        self.usage = UsageSampler(self.host)

        @contextlib.asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            await self.host.start()
            sampling = asyncio.create_task(self.usage.run())
            try:
                yield
            finally:
                sampling.cancel()
                self.data.agents.close()
                await self.host.close()

        control = ControlPlane(self.host, self.usage)
        routes = control.routes() + VolumeRoutes(self.host).routes()
        self.control = Starlette(routes=routes, lifespan=lifespan)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_data_plane(scope):
            await self.data(scope, receive, send)
        else:
            await self.control(scope, receive, send)
