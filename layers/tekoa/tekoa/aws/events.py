"""Publishing to the platform's EventBridge bus: a small port and its boto3 adapter.

Logic depends on `EventPublisher` (a Protocol); tests and the local cloud pass the boto3
adapter pointed at moto, pure tests can pass an in-memory list.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from tekoa.aws.clients import aws_client
from tekoa.names import EVENT_SOURCE
from tekoa.observability import logger
from tekoa.settings import Settings

MAX_ENTRIES_PER_CALL = 10
"""PutEvents accepts at most ten entries per request."""


@dataclass(frozen=True, slots=True)
class BusEvent:
    """One event for the bus: `detail_type` from `tekoa.names.EventType`, a JSON-able detail."""

    detail_type: str
    detail: dict[str, Any]


class PublishFailed(RuntimeError):
    """Some entries were still refused after the retries; `failed` says how many."""

    def __init__(self, failed: int, message: str) -> None:
        super().__init__(message)
        self.failed = failed


class EventPublisher(Protocol):
    """Delivers events to the bus, all or raise."""

    def publish(self, events: Sequence[BusEvent]) -> None: ...


class EventBridgePublisher:
    """`EventPublisher` on EventBridge: batches of ten, failed entries retried with backoff."""

    def __init__(self, settings: Settings, *, attempts: int = 4, base_delay_s: float = 0.2) -> None:
        self._settings = settings
        self._bus = settings.names.event_bus
        self._attempts = max(1, attempts)
        self._base_delay_s = base_delay_s

    @property
    def _client(self) -> Any:
        # Built on first use (and cached by `aws_client`): building a publisher costs nothing.
        return aws_client("events", self._settings)

    def publish(self, events: Sequence[BusEvent]) -> None:
        """Put every event on the bus; raise PublishFailed if some never got accepted."""
        for start in range(0, len(events), MAX_ENTRIES_PER_CALL):
            self._put_batch(events[start : start + MAX_ENTRIES_PER_CALL])

    def _put_batch(self, events: Sequence[BusEvent]) -> None:
        entries = [
            {
                "Source": EVENT_SOURCE,
                "DetailType": event.detail_type,
                "Detail": json.dumps(event.detail, separators=(",", ":")),
                "EventBusName": self._bus,
            }
            for event in events
        ]
        for attempt in range(self._attempts):
            response = self._client.put_events(Entries=entries)
            if not response.get("FailedEntryCount"):
                return
            # Results are positional: keep only the entries that carry an error code.
            results = response.get("Entries", [])
            failed = [
                entry for entry, result in zip(entries, results, strict=False) if result.get("ErrorCode")
            ]
            codes = sorted({str(result.get("ErrorCode")) for result in results if result.get("ErrorCode")})
            logger.warning(
                "event bus refused entries",
                extra={"failed": len(failed), "codes": codes, "attempt": attempt + 1, "bus": self._bus},
            )
            entries = failed
            if attempt + 1 < self._attempts:
                time.sleep(self._base_delay_s * 2**attempt)
        raise PublishFailed(len(entries), f"{len(entries)} events refused by {self._bus}")
