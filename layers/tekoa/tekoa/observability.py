"""Powertools Logger, Tracer and Metrics: one of each per process.

Import these rather than constructing new ones, so correlation ids appended by a handler
(request id, SQS message id) reach every log line of that invocation.

Powertools' Tracer only traces inside Lambda. A long-running process (the market-stream task)
calls `start_process_tracing` once and wraps each unit of work in `traced(name)`: its segments
go to the X-Ray daemon named by AWS_XRAY_DAEMON_ADDRESS (a sidecar in AWS); without that
variable (locally, in tests) both are no-ops.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE_NAME = "tekoa"
METRICS_NAMESPACE = "Tekoa"
CANDLE_AGE_METRIC = "MarketCandleAgeSeconds"
"""Seconds since the newest 1m candle of the stalest followed market closed (the market stream
publishes it every minute; the candle-freshness alarm watches it)."""

logger = Logger(service=SERVICE_NAME)
tracer = Tracer(service=SERVICE_NAME)
metrics = Metrics(service=SERVICE_NAME, namespace=METRICS_NAMESPACE)

_process_tracing = False


def start_process_tracing(service_name: str) -> bool:
    """Send this process's segments to the X-Ray daemon, if one is configured; return whether it is."""
    global _process_tracing
    if not os.environ.get("AWS_XRAY_DAEMON_ADDRESS") or os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        return False
    from aws_xray_sdk import global_sdk_config
    from aws_xray_sdk.core import patch, xray_recorder

    # Powertools' Tracer switched the X-Ray SDK off for the whole process (not in Lambda).
    global_sdk_config.set_sdk_enabled(True)
    # The recorder reads the daemon address from AWS_XRAY_DAEMON_ADDRESS itself. AWS calls made
    # inside a segment (EventBridge PutEvents) become its subsegments; outside one they are ignored.
    xray_recorder.configure(service=service_name, context_missing="IGNORE_ERROR")
    patch(["botocore"])
    _process_tracing = True
    return True


@contextmanager
def traced(name: str) -> Iterator[None]:
    """One unit of work of a long-running process as an X-Ray segment (no-op unless tracing started)."""
    if not _process_tracing:
        yield
        return
    from aws_xray_sdk.core import xray_recorder

    with xray_recorder.in_segment(name):
        yield
