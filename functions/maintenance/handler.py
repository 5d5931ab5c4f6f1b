"""Lambda entry point of scheduled housekeeping (`tekoa.schedules`: "maintenance", daily)."""

from __future__ import annotations

from functools import partial
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from tekoa.aws.secrets import database_conninfo
from tekoa.db.connection import LambdaDatabase
from tekoa.maintenance import purge_expired
from tekoa.observability import logger
from tekoa.settings import get_settings

settings = get_settings()
database = LambdaDatabase(partial(database_conninfo, settings), timeout_s=settings.db_connect_timeout_s)


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    """Purge what has expired (the scheduled event carries nothing else)."""
    return purge_expired(database, settings).as_dict()
