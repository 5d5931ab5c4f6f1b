"""Lambda entry point of the REST API (API Gateway HTTP API v2 events, through Mangum)."""

from __future__ import annotations

from functools import partial
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from mangum import Mangum

from functions.api.app import create_app
from functions.api.context import ApiContext
from tekoa.aws.secrets import database_conninfo
from tekoa.db.connection import LambdaDatabase
from tekoa.observability import logger, tracer
from tekoa.settings import get_settings

settings = get_settings()


app = create_app(
    ApiContext.build(
        settings,
        LambdaDatabase(partial(database_conninfo, settings), timeout_s=settings.db_connect_timeout_s),
    )
)
_asgi = Mangum(app, lifespan="off")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Answer one API Gateway request."""
    return _asgi(event, context)  # type: ignore[arg-type]
