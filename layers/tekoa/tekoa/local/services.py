"""The local platform's services, registered with the runtime in start order."""

from __future__ import annotations

import threading
import time
from typing import Any

from tekoa.local.runtime import RuntimeContext, register_service


class ApiServer:
    """The REST API under uvicorn on 127.0.0.1, in a background thread."""

    name = "api"

    def __init__(self, context: RuntimeContext) -> None:
        self.context = context
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def ports(self) -> list[int]:
        return [self.context.settings.api_port]

    def start(self) -> str:
        import uvicorn

        from functions.api.app import create_app

        settings = self.context.settings
        app = create_app(settings, self.context.database)
        config = uvicorn.Config(
            app, host=settings.api_host, port=settings.api_port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="api", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"API failed to start on {settings.api_host}:{settings.api_port}")
            time.sleep(0.02)
        return f"http://{settings.api_host}:{settings.api_port}"

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)


register_service("api", ApiServer)


class MarketStream:
    """The market-stream service (`tekoa.market.service`) on its own event loop in a thread.

    Streams the simulated exchange in real time (or `TEKOA_MARKET_EXCHANGE`), backfills the
    recent history on start so candles exist at once, and publishes to the local event bus.
    """

    name = "market-stream"

    def __init__(self, context: RuntimeContext) -> None:
        self.context = context
        self._loop: Any = None
        self._service: Any = None
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    def ports(self) -> list[int]:
        return [self.context.settings.market_health_port]

    def start(self) -> str:
        import asyncio

        from tekoa.aws.events import EventBridgePublisher
        from tekoa.market.service import MarketStreamService, build_source, config_from_settings

        settings = self.context.settings
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                source, clock = build_source(settings)
                self._service = MarketStreamService(
                    source,
                    self.context.database,
                    EventBridgePublisher(settings),
                    config_from_settings(settings),
                    clock_ms=clock,
                )
                ready.set()
                loop.run_until_complete(self._service.run())
            except BaseException as exc:  # reported by stop() and the table; the platform goes on
                self._failure = exc
                ready.set()
                raise
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="market-stream", daemon=True)
        self._thread.start()
        ready.wait(timeout=15)
        symbols = ", ".join(settings.market_symbol_list)
        return (
            f"{settings.market_exchange} {symbols}; "
            f"health http://{settings.market_health_host}:{settings.market_health_port}/health"
        )

    def stop(self) -> None:
        if self._loop is not None and self._service is not None and self._thread is not None:
            if self._thread.is_alive():
                self._loop.call_soon_threadsafe(self._service.request_stop)
            self._thread.join(timeout=30)


register_service("market-stream", MarketStream)
