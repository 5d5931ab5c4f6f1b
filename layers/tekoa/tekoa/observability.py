"""Powertools Logger, Tracer and Metrics: one of each per process.

Import these rather than constructing new ones, so correlation ids appended by a handler
(request id, SQS message id) reach every log line of that invocation.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE_NAME = "tekoa"
METRICS_NAMESPACE = "Tekoa"
CANDLE_AGE_METRIC = "MarketCandleAgeSeconds"
"""Seconds since the newest 1m candle of the stalest followed market closed (the market stream
publishes it every minute; the candle-freshness alarm watches it)."""

logger = Logger(service=SERVICE_NAME)
tracer = Tracer(service=SERVICE_NAME)
metrics = Metrics(service=SERVICE_NAME, namespace=METRICS_NAMESPACE)
