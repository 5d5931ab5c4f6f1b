"""Lambda entry point of the push function: EventBridge events → WebSocket clients.

The bus rule (`tekoa.realtime.fanout.PUSHED_EVENTS`) invokes it with one event at a time; it
pushes what the event becomes to the connections allowed to see it (`tekoa.realtime.fanout`)
through the stage's `@connections` endpoint. Locally the `push` part calls this same handler
with the events the local bus routes to it.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from tekoa.aws.push import ManagementApiPusher
from tekoa.aws.secrets import database_conninfo
from tekoa.db.connection import LambdaDatabase
from tekoa.observability import logger
from tekoa.realtime.fanout import FanOut, position_lookup
from tekoa.settings import get_settings

settings = get_settings()
database = LambdaDatabase(partial(database_conninfo, settings), timeout_s=settings.db_connect_timeout_s)
fan_out = FanOut(
    database,
    ManagementApiPusher.from_boto3(settings.websocket_management_url, settings.aws_region),
    position_lookup(database),
)


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    """Push one bus event; a failed push is logged, not retried (a stale live update is worthless)."""
    report = fan_out.event(str(event["detail-type"]), dict(event["detail"]))
    return {
        "delivered": report.delivered,
        "gone": report.gone,
        "failed": report.failed,
        "closed": report.closed,
    }
