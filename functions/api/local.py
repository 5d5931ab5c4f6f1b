"""The API under uvicorn for `tekoa up` (the `api` part): one worker process per CPU core by
default (`TEKOA_API_WORKERS`), each with its own application context built once.

The part's main process only runs uvicorn's worker manager (which restarts a worker that
dies); each worker imports and builds the app (`worker_app`).
"""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

from tekoa.local.process import die_with_parent
from tekoa.settings import get_settings

if TYPE_CHECKING:
    from fastapi import FastAPI


def serve() -> None:
    """Serve the API on `api_host:api_port` until SIGTERM."""
    import uvicorn

    settings = get_settings()
    uvicorn.run(
        "functions.api.local:worker_app",
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        workers=settings.api_worker_count,
        lifespan="off",
        log_level="warning",
        access_log=False,
    )


def worker_app() -> FastAPI:
    """One worker's app (uvicorn calls this in each worker process)."""
    from functions.api.app import create_app
    from functions.api.context import ApiContext
    from tekoa.db.connection import PooledDatabase

    # A worker outlives nothing: if the part's main process dies, so does it (and its socket).
    die_with_parent(signal.SIGTERM)
    settings = get_settings()
    if settings.database_url is None:
        raise RuntimeError("the local API needs DATABASE_URL (tekoa up sets it)")
    database = PooledDatabase(settings.database_url, max_size=settings.db_pool_max)
    return create_app(ApiContext.build(settings, database))
