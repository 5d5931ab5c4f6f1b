"""Lambda entry point of the evaluator: the EventBridge schedule (every minute), `candle.closed`
events, and the shards of a schedule tick that fanned out.

A schedule tick with more running bots than `evaluator_fanout_threshold` invokes this same
function asynchronously once per market shard (`evaluator_shards`) and does no work itself;
each shard evaluates the bots of its markets. Locally (`tekoa up`) the shards run inline.
"""

from __future__ import annotations

import json
import os
from functools import partial
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from tekoa.aws.clients import aws_client
from tekoa.aws.events import EventBridgePublisher
from tekoa.aws.queues import SqsOrderQueue
from tekoa.aws.secrets import database_conninfo
from tekoa.db import evaluations
from tekoa.db.connection import Database, LambdaDatabase, service_transaction
from tekoa.evaluation.invocation import ShardInvocation, UnknownInvocation, parse
from tekoa.evaluation.tick import Evaluator, EvaluatorConfig
from tekoa.execution.accounts import PaperDefaults
from tekoa.observability import logger, tracer
from tekoa.settings import Settings, get_settings


def config_from(settings: Settings) -> EvaluatorConfig:
    return EvaluatorConfig(
        max_skips=settings.evaluator_max_skips,
        max_feed_age_s=settings.evaluator_max_feed_age_s,
        fanout_threshold=settings.evaluator_fanout_threshold,
        shards=settings.evaluator_shards,
        paper=PaperDefaults.from_settings(settings),
    )


def build_evaluator(settings: Settings, database: Database | None = None) -> Evaluator:
    """The evaluator this deployment runs, wired to its database, order queue and bus."""
    if database is None:
        database = LambdaDatabase(
            partial(database_conninfo, settings), timeout_s=settings.db_connect_timeout_s
        )
    return Evaluator(
        database,
        SqsOrderQueue(settings),
        publisher=EventBridgePublisher(settings),
        config=config_from(settings),
    )


class EvaluatorHandler:
    """One invocation in, a summary out."""

    def __init__(self, evaluator: Evaluator) -> None:
        self.evaluator = evaluator

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        try:
            due, may_fan_out = parse(event)
        except (UnknownInvocation, ValueError) as exc:
            logger.warning("evaluator event dropped", extra={"reason": str(exc)[:300]})
            return {"dropped": str(exc)[:300]}
        config = self.evaluator.config
        if may_fan_out and self._running_bots() > config.fanout_threshold:
            shards = [ShardInvocation(shard=i, shards=config.shards) for i in range(config.shards)]
            return self._fan_out(shards, context)
        report = self.evaluator.tick(due)
        summary = {
            "bots": report.bots,
            "evaluated": report.evaluated,
            "skipped": report.skipped,
            "repeated": report.repeated,
            "intents": report.intents,
            "rejected": report.rejected,
            "failed_bots": report.failed_bots,
            "phases_ms": {name: round(seconds * 1000, 1) for name, seconds in report.phases.items()},
        }
        logger.info("evaluator tick", extra=summary)
        return summary

    def _running_bots(self) -> int:
        with self.evaluator.database.connection() as conn, service_transaction(conn):
            return evaluations.count_running_bots(conn)

    def _fan_out(self, shards: list[ShardInvocation], context: Any) -> dict[str, Any]:
        if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
            client = aws_client("lambda", get_settings())
            for shard in shards:
                client.invoke(
                    FunctionName=context.invoked_function_arn,
                    InvocationType="Event",
                    Payload=json.dumps(shard.model_dump()).encode(),
                )
            return {"fanned_out": len(shards)}
        # Locally there is no Lambda service: the shards run here, one after the other.
        results = [self(shard.model_dump(), context) for shard in shards]
        return {"fanned_out": len(shards), "shards": results}


_handler: EvaluatorHandler | None = None


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Evaluate what `event` makes due."""
    global _handler
    if _handler is None:
        _handler = EvaluatorHandler(build_evaluator(get_settings()))
    return _handler(event, context)
