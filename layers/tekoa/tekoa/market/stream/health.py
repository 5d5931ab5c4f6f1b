"""GET /health of the market-stream service (aiohttp): per-market freshness and counters."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aiohttp import web


class HealthServer:
    """Serves `report()` as JSON: 200 when its `status` is "ok", else 503."""

    def __init__(self, host: str, port: int, report: Callable[[], dict[str, Any]]) -> None:
        self.host = host
        self.port = port
        self.report = report
        self.url: str | None = None
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        async def handle(_: web.Request) -> web.Response:
            body = self.report()
            status = 200 if body["status"] == "ok" else 503
            return web.Response(text=json.dumps(body), status=status, content_type="application/json")

        app = web.Application()
        app.router.add_get("/health", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        port = self.port
        server = getattr(site, "_server", None)
        if port == 0 and server is not None and server.sockets:
            port = int(server.sockets[0].getsockname()[1])
        self.url = f"http://{self.host}:{port}/health"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
