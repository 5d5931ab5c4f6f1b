"""Chart images in S3 and render requests on the chart queue: small ports and boto3 adapters.

The API checks an object exists and presigns a GET for it; the chart function puts objects;
both queue render requests. Presigned URLs are signed with the caller's credentials, so the
signer needs s3:GetObject on the object, and a URL never outlives `chart_url_ttl_s`.
The boto3 clients are made on first use: most API requests never touch a chart, and a
client costs a Lambda cold start tens of milliseconds.
"""

from __future__ import annotations

import json
from functools import cached_property
from typing import Any, Protocol

from botocore.exceptions import ClientError

from tekoa.aws.clients import aws_client
from tekoa.settings import Settings

PNG = "image/png"
# Objects are immutable (content-addressed), so a browser may keep one as long as its URL lives.
_CACHE_CONTROL = "private, max-age=900, immutable"


class ChartObjects(Protocol):
    """Chart images by key."""

    def exists(self, key: str) -> bool: ...

    def put(self, key: str, png: bytes) -> None: ...

    def url(self, key: str) -> str: ...


class ChartRequests(Protocol):
    """Render requests for the chart function."""

    def send(self, message: dict[str, Any], *, delay_s: int = 0) -> None:
        """Queue `message`, visible after `delay_s` seconds (0-900)."""
        ...


class S3ChartObjects:
    """`ChartObjects` in the charts bucket."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.bucket = settings.charts_bucket_name
        self.ttl_s = settings.chart_url_ttl_s

    @cached_property
    def _s3(self) -> Any:
        return aws_client("s3", self._settings)

    def exists(self, key: str) -> bool:
        try:
            self._s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise
        return True

    def put(self, key: str, png: bytes) -> None:
        self._s3.put_object(
            Bucket=self.bucket, Key=key, Body=png, ContentType=PNG, CacheControl=_CACHE_CONTROL
        )

    def url(self, key: str) -> str:
        """A GET URL for `key` that stops working after `chart_url_ttl_s` seconds."""
        return str(
            self._s3.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=self.ttl_s
            )
        )


class SqsChartRequests:
    """`ChartRequests` on the chart queue (its URL looked up once, by name)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    @cached_property
    def _sqs(self) -> Any:
        return aws_client("sqs", self._settings)

    @cached_property
    def _queue_url(self) -> str:
        return str(self._sqs.get_queue_url(QueueName=self._settings.names.chart_queue)["QueueUrl"])

    def send(self, message: dict[str, Any], *, delay_s: int = 0) -> None:
        self._sqs.send_message(
            QueueUrl=self._queue_url,
            MessageBody=json.dumps(message, separators=(",", ":")),
            DelaySeconds=delay_s,
        )
