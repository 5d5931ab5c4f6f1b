"""Lambda entry point of candle ingestion: on-demand backfills and the scheduled gap repair."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from tekoa.aws.secrets import database_conninfo
from tekoa.db.connection import LambdaDatabase
from tekoa.market.ingest import BackfillRequest, parse_event, run_backfill, run_scheduled_repair
from tekoa.observability import logger, tracer
from tekoa.settings import get_settings

settings = get_settings()
# Stop starting new series this long before the Lambda timeout; the next run resumes.
_SAFETY_MS = 60_000


database = LambdaDatabase(partial(database_conninfo, settings), timeout_s=settings.db_connect_timeout_s)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Backfill one series on demand, or repair every followed market on schedule."""
    request = parse_event(event)
    try:
        if isinstance(request, BackfillRequest):
            result = asyncio.run(run_backfill(request, database))
        else:
            result = asyncio.run(
                run_scheduled_repair(
                    database,
                    history_days=settings.market_history_days,
                    deadline=lambda: context.get_remaining_time_in_millis() < _SAFETY_MS,
                )
            )
    finally:
        # Runs are minutes apart: a connection kept open in the frozen environment would only
        # keep an auto-pausing (dev) Aurora awake, so each run opens its own.
        database.close()
    return result.as_dict()
