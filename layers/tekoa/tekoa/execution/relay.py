"""The outbox relay: committed events onto the bus, ten to a PutEvents call.

Order events are stored in `event_outbox` by the transaction that books the change they
announce (`execution.writes`). The relay takes them oldest first, locked (`FOR UPDATE SKIP
LOCKED`, so two relays never publish the same event), puts them on the bus in calls of ten
entries (EventBridge's limit) and deletes them in the same transaction: an event is published
at least once, and a crash between the publish and the commit publishes it again, which the
bus's consumers tolerate (they key on the order and its status).

Locally the executor part runs one continuously beside its pollers, so a batch never waits on
the bus; reconciliation drains what is older than a few seconds everywhere (events left by a
Lambda that died between its commit and its publish).
"""

from __future__ import annotations

import threading

from tekoa.aws.events import EventPublisher
from tekoa.db import outbox
from tekoa.db.connection import Database, service_transaction
from tekoa.observability import logger

TAKE = 100
"""Events per transaction: ten PutEvents calls."""


class OutboxRelay:
    """Publishes the outbox's events (see the module docstring)."""

    def __init__(self, database: Database, publisher: EventPublisher) -> None:
        self.database = database
        self.publisher = publisher

    def drain(self, *, older_than_s: float = 0.0, limit: int = 10_000) -> int:
        """Publish the events stored at least `older_than_s` ago, up to about `limit`; how many."""
        total = 0
        while total < limit:
            with self.database.connection() as conn, service_transaction(conn):
                taken = outbox.take_stale_events(conn, older_than_s=older_than_s, limit=TAKE)
                if not taken:
                    break
                self.publisher.publish([event for _, event in taken])
                outbox.delete_events(conn, [event_id for event_id, _ in taken])
            total += len(taken)
        return total

    def run(self, stop: threading.Event, *, idle_s: float = 0.05) -> None:
        """Drain until `stop` is set, pausing `idle_s` when the outbox is empty."""
        while not stop.is_set():
            try:
                if not self.drain():
                    stop.wait(idle_s)
            except Exception:
                logger.exception("relaying order events failed; retried shortly")
                stop.wait(1.0)
