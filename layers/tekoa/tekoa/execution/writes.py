"""A transaction's writes, collected by the bookings and written at its end by `flush`.

Bookings (`tekoa.execution.booking`) compute the new state of orders, fills, positions and the
ledger in Python, under the account's lock, and record it here. `flush` writes everything in
a handful of multi-row statements — one per table, in the order foreign keys need — so a
message costs the same few statements however many events and postings it produced, instead
of one statement per row. An order inserted and then moved in the same transaction is
written once, in its last state.

Reads inside the transaction do not see unflushed writes: `available` adds the collected
postings to what the database holds, which is all a booking needs to read.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import psycopg

from tekoa.aws.events import BusEvent
from tekoa.db import activity as activity_rows
from tekoa.db import ledger as ledger_rows
from tekoa.db import orders as order_rows
from tekoa.db import outbox
from tekoa.db import positions as position_rows
from tekoa.domain.execution import Fill, Order, Position
from tekoa.domain.resources import ActivityLevel
from tekoa.execution.ledger import Book, Posting


@dataclass
class Writes:
    """Collected writes of one transaction (see the module docstring)."""

    new_orders: dict[UUID, tuple[UUID, Order]] = field(default_factory=dict)
    changed_orders: dict[UUID, tuple[UUID, Order]] = field(default_factory=dict)
    new_positions: dict[UUID, tuple[UUID, Position]] = field(default_factory=dict)
    changed_positions: dict[UUID, tuple[UUID, Position]] = field(default_factory=dict)
    fills: list[tuple[UUID, Fill]] = field(default_factory=list)
    events: list[tuple[UUID, order_rows.NewEvent]] = field(default_factory=list)
    postings: list[ledger_rows.PostingRow] = field(default_factory=list)
    outbox: list[tuple[UUID, UUID, BusEvent]] = field(default_factory=list)
    activity: list[activity_rows.NewActivity] = field(default_factory=list)
    _deltas: dict[tuple[UUID, str, Book], Decimal] = field(default_factory=lambda: defaultdict(Decimal))

    # -- collecting ------------------------------------------------------------------------

    def order(self, user_id: UUID, order: Order, *, new: bool = False) -> Order:
        if new or order.id in self.new_orders:
            self.new_orders[order.id] = (user_id, order)
        else:
            self.changed_orders[order.id] = (user_id, order)
        return order

    def position(self, user_id: UUID, position: Position, *, new: bool = False) -> Position:
        if new or position.id in self.new_positions:
            self.new_positions[position.id] = (user_id, position)
        else:
            self.changed_positions[position.id] = (user_id, position)
        return position

    def fill(self, user_id: UUID, fill: Fill) -> None:
        self.fills.append((user_id, fill))

    def event(self, user_id: UUID, event: order_rows.NewEvent) -> None:
        self.events.append((user_id, event))

    def post(
        self,
        user_id: UUID,
        account_id: UUID,
        postings: list[Posting],
        *,
        order_id: UUID | None = None,
        fill_id: UUID | None = None,
    ) -> None:
        for posting in postings:
            if posting.empty:
                continue
            self.postings.append(ledger_rows.PostingRow(user_id, account_id, posting, order_id, fill_id))
            for entry in posting.entries:
                self._deltas[(account_id, entry.asset, entry.book)] += entry.amount

    def publish(self, user_id: UUID, event: BusEvent) -> tuple[UUID, BusEvent]:
        event_id = uuid4()
        self.outbox.append((user_id, event_id, event))
        return event_id, event

    def note(
        self,
        user_id: UUID,
        *,
        level: ActivityLevel,
        message: str,
        bot_id: UUID | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        self.activity.append(activity_rows.NewActivity(user_id, level, message, bot_id, data or {}))

    def absorb(self, other: Writes) -> None:
        """Take over `other`'s writes (another record of a batch, on another account)."""
        self.new_orders.update(other.new_orders)
        self.changed_orders.update(other.changed_orders)
        self.new_positions.update(other.new_positions)
        self.changed_positions.update(other.changed_positions)
        self.fills += other.fills
        self.events += other.events
        self.postings += other.postings
        self.outbox += other.outbox
        self.activity += other.activity
        for key, amount in other._deltas.items():
            self._deltas[key] += amount

    # -- reading through -------------------------------------------------------------------

    def available(
        self, conn: psycopg.Connection[Any], user_id: UUID, account_id: UUID, asset: str
    ) -> Decimal:
        """The available balance including what this transaction has posted so far."""
        stored = ledger_rows.available(conn, user_id, account_id, asset)
        return stored + self._deltas.get((account_id, asset, Book.AVAILABLE), Decimal(0))

    def change(self, account_id: UUID, asset: str, book: Book) -> Decimal:
        """What this transaction's postings move `book` of `asset` by."""
        return self._deltas.get((account_id, asset, book), Decimal(0))

    # -- writing ---------------------------------------------------------------------------

    def flush(self, conn: psycopg.Connection[Any]) -> None:
        """Write everything collected, parents before children, one statement per table."""
        position_rows.insert_positions(conn, list(self.new_positions.values()))
        position_rows.update_positions(conn, list(self.changed_positions.values()))
        order_rows.insert_orders(conn, list(self.new_orders.values()))
        order_rows.update_orders(conn, list(self.changed_orders.values()))
        order_rows.insert_fills(conn, self.fills)
        order_rows.insert_events(conn, self.events)
        ledger_rows.post_rows(conn, self.postings)
        outbox.add_events(conn, self.outbox)
        activity_rows.insert_activities(conn, self.activity)
        self.clear()

    def clear(self) -> None:
        """Forget everything collected (after a flush, each row is written once)."""
        for collection in (
            self.new_orders,
            self.changed_orders,
            self.new_positions,
            self.changed_positions,
            self.fills,
            self.events,
            self.postings,
            self.outbox,
            self.activity,
            self._deltas,
        ):
            collection.clear()
