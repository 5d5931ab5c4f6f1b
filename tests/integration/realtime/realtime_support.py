"""The WebSocket side of the platform for tests: the local gateway serving the real route
handler on a loopback port, against the test's database and the moto endpoint."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
import websockets

from functions.api.websocket import route
from tekoa.auth.service import Accounts
from tekoa.db.connection import PooledDatabase
from tekoa.local.websocket_gateway import WebSocketGateway
from tekoa.realtime.connections import WebSocketRoutes
from tests.conftest import LiveServer


class Gateway:
    """A running local gateway: its URL, its app (open connections) and the route logic."""

    def __init__(self, server: LiveServer, app: WebSocketGateway, routes: WebSocketRoutes) -> None:
        self.url = server.url
        self.ws_url = server.url.replace("http://", "ws://")
        self.app = app
        self.routes = routes


@pytest.fixture
def gateway(settings: Any) -> Iterator[Gateway]:
    database = PooledDatabase(settings.database_url, max_size=4)
    routes = WebSocketRoutes(database, Accounts.from_settings(settings))
    app = WebSocketGateway(lambda event, _context: route(routes, event), settings)
    with LiveServer(app, app.uvicorn_config) as server:
        yield Gateway(server, app, routes)
    database.close()


async def receive_json(socket: Any, timeout_s: float = 5.0) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(socket.recv(), timeout_s))
    return message


async def request(socket: Any, body: dict[str, Any]) -> dict[str, Any]:
    """Send one action and return the answer."""
    await socket.send(json.dumps(body))
    return await receive_json(socket)


def connect(gateway: Gateway, token: str | None = None, **options: Any) -> Any:
    url = gateway.ws_url + ("/" if token is None else f"/?token={token}")
    return websockets.connect(url, open_timeout=5, **options)
