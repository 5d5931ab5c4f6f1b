"""boto3 clients built from settings: the only place an AWS endpoint is chosen.

Locally the endpoint is the moto server; in AWS it is unset and boto3 uses the real one.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config

from tekoa.settings import Settings

_lock = threading.Lock()
_clients: dict[tuple[str, str | None, str], Any] = {}

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=3, read_timeout=10)
# S3 presigns with the legacy SigV2 in us-east-1 unless told otherwise; SigV4 works everywhere
# and is what the local endpoint checks presigned URLs against.
_SERVICE_CONFIG = {"s3": _CONFIG.merge(Config(signature_version="s3v4"))}


def aws_client(service: str, settings: Settings) -> Any:
    """A cached boto3 client for `service` (clients are thread-safe; sessions are not)."""
    key = (service, settings.aws_endpoint_url, settings.aws_region)
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = boto3.session.Session().client(
                service,  # type: ignore[call-overload]
                region_name=settings.aws_region,
                endpoint_url=settings.aws_endpoint_url,
                config=_SERVICE_CONFIG.get(service, _CONFIG),
            )
            _clients[key] = client
        return client
