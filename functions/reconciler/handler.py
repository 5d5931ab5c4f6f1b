"""Lambda entry point of reconciliation, invoked every minute by an EventBridge schedule.

Checks every account's ledger, follows live orders and balances on their exchanges, resends
orders claimed but never queued, publishes events a crash left in the outbox, and triggers
resting paper orders that stored candles reached (`tekoa.execution.reconcile`).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from tekoa.aws.events import EventBridgePublisher
from tekoa.aws.queues import SqsOrderQueue
from tekoa.aws.secrets import database_conninfo
from tekoa.db.connection import LambdaDatabase
from tekoa.execution.admission import CostModel
from tekoa.execution.executor import Executor, ExecutorConfig
from tekoa.execution.live import CredentialBrokers
from tekoa.execution.reconcile import Reconciler
from tekoa.observability import logger, tracer
from tekoa.security import key_provider_for
from tekoa.settings import Settings, get_settings


def build_reconciler(settings: Settings) -> Reconciler:
    """The reconciler this deployment runs, wired to its database, exchanges, queue and bus."""
    database = LambdaDatabase(partial(database_conninfo, settings), timeout_s=settings.db_connect_timeout_s)
    brokers = CredentialBrokers(database, key_provider_for(settings))
    publisher = EventBridgePublisher(settings)
    executor = Executor(
        database, brokers, publisher=publisher, config=ExecutorConfig(costs=CostModel.from_settings(settings))
    )
    return Reconciler(database, executor, brokers, queue=SqsOrderQueue(settings), publisher=publisher)


_reconciler: Reconciler | None = None


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Run one reconciliation pass; answers what it found and did."""
    global _reconciler
    if _reconciler is None:
        _reconciler = build_reconciler(get_settings())
    return _reconciler.run().as_dict()
