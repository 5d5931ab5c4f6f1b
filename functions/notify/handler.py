"""Lambda entry point of the notify function: bus events and due retries → users' channels.

Three sources invoke it: the bus rule `tekoa.bus_rules.NOTIFY` (an EventBridge event), the
notification retry queue (SQS records, each a `Notification` whose delay has passed), and the
daily schedule `notify-daily-summary` (`tekoa.schedules`). Each
channel is tried once per invocation; a failure goes back to the retry queue, so nothing here
is retried by raising (one failing channel must not send the others twice).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from tekoa.aws.secrets import database_conninfo
from tekoa.db.connection import LambdaDatabase
from tekoa.notify.delivery import Notification, Notifier, SqsRetryQueue
from tekoa.observability import logger
from tekoa.security import key_provider_for
from tekoa.settings import get_settings

settings = get_settings()
notifier = Notifier(
    LambdaDatabase(partial(database_conninfo, settings), timeout_s=settings.db_connect_timeout_s),
    key_provider_for(settings),
    settings,
    SqsRetryQueue(settings),
)


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    """Deliver a bus event's notifications, the due retries of an SQS batch, or the daily summaries."""
    if event.get("detail-type") == "Scheduled Event":
        return {"attempted": notifier.daily_summaries()}
    if "Records" in event:
        delivered = sum(notifier.retry(Notification.model_validate_json(r["body"])) for r in event["Records"])
        return {"attempted": len(event["Records"]), "delivered": delivered}
    return {"attempted": notifier.event(str(event["detail-type"]), dict(event["detail"]))}
