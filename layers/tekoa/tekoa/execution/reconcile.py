"""Reconciliation: the scheduled check that the books and the world agree.

Runs every minute (an EventBridge schedule in AWS, the local scheduler in `tekoa up`):

* **Ledger** (every account): stored books equal the sums of their entries, every posting
  balances, and the held books equal what working orders hold. A mismatch is a bug: it is
  logged as an error and reported in the owner's activity feed; nothing is "fixed" silently.
* **Live accounts**: every working order is looked up by client id and its new fills booked;
  an order the exchange does not know is counted and declared lost only after repeated
  not-found answers; exchange orders carrying a client id we know but do not have working are
  reported as drift. Balances are compared with the exchange's totals and the difference is
  booked as an adjustment (the exchange is the truth for a live account) and reported.
* **Stuck orders**: an order claimed by the API but never sent (a crash between its commit and
  the queue) is sent again (its client id makes the resend harmless).
* **Outbox**: events a crash left unpublished are published.
* **Paper sweep**: resting paper orders are compared with the stored 1m candles since they
  were placed; one the market reached gets a trigger message (the market stream does this on
  every trade; the sweep makes it survive a restart of any process).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg

from tekoa.aws.events import EventPublisher
from tekoa.aws.queues import OrderQueue
from tekoa.db import accounts as account_rows
from tekoa.db import activity as activity_rows
from tekoa.db import ledger as ledger_rows
from tekoa.db import orders as order_rows
from tekoa.db.connection import Database, service_transaction, tenant_transaction
from tekoa.domain.execution import Account, OrderStatus
from tekoa.domain.resources import ActivityLevel
from tekoa.exchanges.capabilities import capabilities
from tekoa.execution import ledger
from tekoa.execution.brokers import ExchangeUnavailable
from tekoa.execution.executor import BrokerProvider, Executor, OrderPending
from tekoa.execution.ledger import Book
from tekoa.execution.ledger_check import ledger_problems
from tekoa.execution.messages import ExecuteMessage, OrderMessage, TriggerMessage
from tekoa.execution.relay import OutboxRelay
from tekoa.observability import logger

BALANCE_TOLERANCE = Decimal("1e-8")
TEKOA_CLIENT_ID_PREFIXES = ("tk", "m", "close")
"""How the client ids Tekoa makes start (bots' decisions, manual orders, position closes)."""


@dataclass
class ReconcileReport:
    """What one run found and did."""

    accounts_checked: int = 0
    ledger_mismatches: int = 0
    live_orders_checked: int = 0
    live_orders_updated: int = 0
    balance_adjustments: int = 0
    drift: list[str] = field(default_factory=list)
    resent: int = 0
    triggers: int = 0
    events_published: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "drift": list(self.drift)}


@dataclass(frozen=True, slots=True)
class ReconcileConfig:
    stuck_after_s: float = 30.0
    """An API-claimed order still `new` after this long is sent again."""
    outbox_after_s: float = 10.0
    sweep_window_ms: int = 3 * 86_400_000
    """How far back the paper sweep looks for candles (the stream covers the live edge)."""
    ledger_window_s: float = 600.0
    """Accounts whose ledger moved this recently are checked on every run..."""
    full_check_every_s: float = 86_400.0
    """...and every account this often (and on the first run)."""


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Reconciler:
    """See the module docstring; `run()` once per schedule tick."""

    def __init__(
        self,
        database: Database,
        executor: Executor,
        brokers: BrokerProvider,
        *,
        queue: OrderQueue | None,
        publisher: EventPublisher | None,
        config: ReconcileConfig | None = None,
        clock_ms: Callable[[], int] = _now_ms,
    ) -> None:
        self.database = database
        self.executor = executor
        self.brokers = brokers
        self.queue = queue
        self.publisher = publisher
        self.config = config or ReconcileConfig()
        self.clock_ms = clock_ms
        self._last_full_check: float | None = None
        self._reported: set[tuple[UUID, str]] = set()

    def run(self) -> ReconcileReport:
        report = ReconcileReport()
        for step in (
            self.check_ledgers,
            self.reconcile_live,
            self.resend_stuck,
            self.sweep_paper,
            self.publish_outbox,
        ):
            try:
                step(report)
            except Exception:
                logger.exception("reconciliation step failed", extra={"step": step.__name__})
        logger.info("reconciliation done", extra=report.as_dict())
        return report

    # -- ledger ----------------------------------------------------------------------------

    def check_ledgers(self, report: ReconcileReport) -> None:
        """The books of every account the ledger moved lately (all accounts, once a day)
        against their entries and their working orders."""
        full = (
            self._last_full_check is None
            or time.monotonic() - self._last_full_check >= self.config.full_check_every_s
        )
        with self.database.connection() as conn, service_transaction(conn):
            if full:
                owners = conn.execute("SELECT user_id, id FROM accounts ORDER BY id").fetchall()
            else:
                owners = conn.execute(
                    "SELECT DISTINCT user_id, account_id FROM ledger_entries"
                    " WHERE created_at > now() - make_interval(secs => %s)",
                    (self.config.ledger_window_s,),
                ).fetchall()
        if full:
            self._last_full_check = time.monotonic()
        for user_id, account_id in owners:
            report.accounts_checked += 1
            problems = ledger_problems(self.database, user_id, account_id)
            if problems:
                report.ledger_mismatches += 1
                report.drift += [f"account {account_id}: {p}" for p in problems]
                logger.error("ledger mismatch", extra={"account_id": str(account_id), "problems": problems})
                self._report(
                    user_id, f"Ledger check failed: {'; '.join(problems)}", {"account_id": str(account_id)}
                )

    # -- live ------------------------------------------------------------------------------

    def reconcile_live(self, report: ReconcileReport) -> None:
        with self.database.connection() as conn, service_transaction(conn):
            live = account_rows.list_live_accounts(conn)
        for user_id, account in live:
            try:
                self.reconcile_live_account(user_id, account, report)
            except ExchangeUnavailable as exc:
                logger.warning(
                    "live reconciliation skipped", extra={"account_id": str(account.id), "reason": str(exc)}
                )

    def reconcile_live_account(self, user_id: UUID, account: Account, report: ReconcileReport) -> None:
        """Orders, then balances, of one live account against its exchange."""
        if account.credential_id is None:
            return
        broker = self.brokers.live(user_id, account)
        with self.database.connection() as conn, tenant_transaction(conn, user_id):
            working = order_rows.working_orders(conn, user_id, account.id)
            symbols = sorted({o.symbol for o in working} | _traded_symbols(conn, user_id, account.id))
        for order in working:
            if order.status is OrderStatus.NEW:
                continue  # never sent: resend_stuck owns it
            report.live_orders_checked += 1
            try:
                result = self.executor.follow_up(user_id, account.id, order.id)
            except OrderPending:
                continue
            if result.status is not order.status or result.events:
                report.live_orders_updated += 1
        ours = {capabilities(account.exchange).exchange_client_id(o.client_order_id) for o in working}
        for found in broker.open_orders(symbols):
            # An order Tekoa placed (its id says so) that is open on the exchange but not working
            # here: lost or ended in our books, alive there. Orders placed by hand are not drift.
            client_id = found.client_order_id or ""
            if client_id in ours or not client_id.startswith(TEKOA_CLIENT_ID_PREFIXES):
                continue
            note = (
                f"order {client_id} ({found.symbol}) is open on {account.exchange}"
                " but not working in Tekoa: check it on the exchange"
            )
            report.drift.append(note)
            if (account.id, client_id) not in self._reported:
                self._reported.add((account.id, client_id))
                self._report(user_id, f"Drift: {note}", {"account_id": str(account.id)})
        self.sync_balances(user_id, account, broker.balances(), report)

    def sync_balances(
        self, user_id: UUID, account: Account, exchange_totals: dict[str, Decimal], report: ReconcileReport
    ) -> None:
        """Book the difference between the exchange's totals and the ledger as adjustments."""
        with self.database.connection() as conn, tenant_transaction(conn, user_id):
            locked = account_rows.get_account(conn, user_id, account.id, for_update=True)
            if locked is None:
                return
            books = ledger_rows.books(conn, user_id, account.id)
            assets = set(exchange_totals) | {a for (a, b) in books if b in (Book.AVAILABLE, Book.HELD)}
            postings = []
            for asset in sorted(assets):
                ours = books.get((asset, Book.AVAILABLE), Decimal(0)) + books.get(
                    (asset, Book.HELD), Decimal(0)
                )
                difference = exchange_totals.get(asset, Decimal(0)) - ours
                if abs(difference) <= BALANCE_TOLERANCE:
                    continue
                available = books.get((asset, Book.AVAILABLE), Decimal(0))
                if available + difference < 0:
                    difference = -available  # holds are the orders'; the next run sees the rest
                if difference == 0:
                    continue
                postings.append(ledger.adjustment(asset, difference))
                report.drift.append(
                    f"account {account.id}: {asset} {difference:+} to match {account.exchange}"
                )
            if postings:
                ledger_rows.post(conn, user_id, account.id, postings)
                report.balance_adjustments += len(postings)
                activity_rows.insert_activity(
                    conn,
                    user_id,
                    level=ActivityLevel.WARNING,
                    message=f"Balances on {account.exchange} synced: "
                    + ", ".join(
                        f"{p.entries[0].asset} {p.change(p.entries[0].asset, Book.AVAILABLE):+}"
                        for p in postings
                    ),
                    data={"account_id": str(account.id)},
                )

    # -- stuck orders, outbox, paper sweep -------------------------------------------------

    def resend_stuck(self, report: ReconcileReport) -> None:
        """Send again the orders the API claimed but never got onto the queue."""
        if self.queue is None:
            return
        with self.database.connection() as conn, service_transaction(conn):
            stuck = order_rows.find_working(
                conn, statuses=[OrderStatus.NEW], older_than_s=self.config.stuck_after_s
            )
        messages: list[OrderMessage] = [
            ExecuteMessage(
                user_id=ref.user_id,
                account_id=ref.account_id,
                order_id=ref.order_id,
                client_order_id=ref.client_order_id,
                enqueued_at=self.clock_ms(),
            )
            for ref in stuck
        ]
        if messages:
            self.queue.send(messages)
            report.resent += len(messages)
            logger.warning("stuck orders sent again", extra={"orders": len(messages)})

    def publish_outbox(self, report: ReconcileReport) -> None:
        """Events left behind by a crash between a commit and its publish."""
        if self.publisher is None:
            return
        relay = OutboxRelay(self.database, self.publisher)
        report.events_published += relay.drain(older_than_s=self.config.outbox_after_s)

    def sweep_paper(self, report: ReconcileReport) -> None:
        """Trigger resting paper orders that a stored candle reached since they were placed."""
        if self.queue is None:
            return
        since = self.clock_ms() - self.config.sweep_window_ms
        with self.database.connection() as conn, service_transaction(conn):
            reached = _reached_by_candles(conn, since)
        messages: list[OrderMessage] = [
            TriggerMessage(
                user_id=row["user_id"],
                account_id=row["account_id"],
                order_id=row["order_id"],
                client_order_id=row["client_order_id"],
                trade_id=f"candle-{row['open_time']}",
                trade_time=row["open_time"],
                candle=(row["open"], row["high"], row["low"], row["close"]),
                enqueued_at=self.clock_ms(),
            )
            for row in reached
        ]
        if messages:
            self.queue.send(messages)
            report.triggers += len(messages)

    def _report(self, user_id: UUID, message: str, data: dict[str, Any]) -> None:
        with self.database.connection() as conn, tenant_transaction(conn, user_id):
            activity_rows.insert_activity(
                conn, user_id, level=ActivityLevel.ERROR, message=message[:2000], data=data
            )


def _nonzero(books: dict[tuple[str, Book], Decimal]) -> dict[tuple[str, Book], Decimal]:
    return {key: value for key, value in books.items() if value != 0}


def _traded_symbols(conn: psycopg.Connection[Any], user_id: UUID, account_id: UUID) -> set[str]:
    rows = conn.execute(
        "SELECT DISTINCT symbol FROM orders WHERE user_id = %s AND account_id = %s AND created_at > now() -"
        " interval '7 days'",
        (user_id, account_id),
    ).fetchall()
    return {row[0] for row in rows}


def _reached_by_candles(conn: psycopg.Connection[Any], since_ms: int) -> list[dict[str, Any]]:
    """Resting paper limit/stop orders and the first stored 1m candle, opening after the minute
    they were placed in, whose range reaches them."""
    from psycopg.rows import dict_row

    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT o.user_id, o.account_id, o.id AS order_id, o.client_order_id, c.open_time, c.open,"
            " c.high,"
            " c.low, c.close"
            " FROM orders o JOIN accounts a ON a.id = o.account_id"
            " JOIN candle_series s ON (s.exchange, s.symbol, s.timeframe) = (o.exchange, o.symbol, '1m')"
            " CROSS JOIN LATERAL ("
            "   SELECT c.open_time, c.open, c.high, c.low, c.close FROM candles c"
            "   WHERE c.series_id = s.id"
            "   AND c.open_time >= greatest(%(since)s,"
            "       (floor(extract(epoch FROM o.created_at) * 1000 / 60000) + 1)::bigint * 60000)"
            "   AND CASE"
            "     WHEN o.type = 'limit' AND o.side = 'buy' THEN c.low <= o.limit_price"
            "     WHEN o.type = 'limit' AND o.side = 'sell' THEN c.high >= o.limit_price"
            "     WHEN o.type = 'stop' AND o.side = 'buy' THEN c.high >= o.stop_price"
            "     WHEN o.type = 'stop' AND o.side = 'sell' THEN c.low <= o.stop_price"
            "     ELSE false END"
            "   ORDER BY c.open_time LIMIT 1) c"
            " WHERE o.status IN ('open', 'partially_filled') AND a.mode = 'paper'",
            {"since": since_ms},
        )
        return list(cur.fetchall())
