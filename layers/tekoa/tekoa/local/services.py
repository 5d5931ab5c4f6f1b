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
