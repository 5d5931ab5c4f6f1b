"""Opening and resetting trading accounts (inside the caller's transaction)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg

from tekoa.aws.events import BusEvent
from tekoa.db import accounts as account_rows
from tekoa.db import activity as activity_rows
from tekoa.db import ledger as ledger_rows
from tekoa.db import orders as order_rows
from tekoa.db import positions as position_rows
from tekoa.domain.bots import TradingMode
from tekoa.domain.execution import Account, AccountNotFound, OrderAction
from tekoa.domain.resources import ActivityLevel
from tekoa.errors import ValidationFailed
from tekoa.execution import booking, ledger
from tekoa.execution.writes import Writes
from tekoa.settings import Settings


@dataclass(frozen=True, slots=True)
class PaperDefaults:
    """What a paper account starts with when it is opened on first use."""

    quote_currency: str = "USDT"
    starting_balance: Decimal = Decimal(10_000)

    @classmethod
    def from_settings(cls, settings: Settings) -> PaperDefaults:
        return cls(
            quote_currency=settings.paper_quote_currency, starting_balance=settings.paper_starting_balance
        )


def open_account(
    conn: psycopg.Connection[Any],
    user_id: UUID,
    *,
    exchange: str,
    mode: TradingMode,
    paper: PaperDefaults,
    credential_id: UUID | None = None,
) -> Account:
    """The owner's account for (exchange, mode), opened if missing: a new paper account is
    credited its starting balance in the same transaction."""
    account, created = account_rows.ensure_account(
        conn,
        user_id,
        exchange=exchange,
        mode=mode,
        quote_currency=paper.quote_currency,
        starting_balance=paper.starting_balance if mode is TradingMode.PAPER else None,
        credential_id=credential_id,
    )
    if created and mode is TradingMode.PAPER:
        ledger_rows.post(
            conn, user_id, account.id, [ledger.deposit(account.quote_currency, paper.starting_balance)]
        )
        activity_rows.insert_activity(
            conn,
            user_id,
            level=ActivityLevel.INFO,
            message=f"Paper account opened on {exchange} with"
            f" {paper.starting_balance} {paper.quote_currency}",
            data={"account_id": str(account.id)},
        )
    return account


def reset_paper_account(
    conn: psycopg.Connection[Any], user_id: UUID, account_id: UUID
) -> tuple[Account, list[tuple[UUID, BusEvent]]]:
    """Cancel every working order, close every position without a trade, and restore the
    starting balance; the ledger keeps the history. Returns the account and outbox events."""
    account = account_rows.get_account(conn, user_id, account_id, for_update=True)
    if account is None:
        raise AccountNotFound()
    if account.mode is not TradingMode.PAPER or account.starting_balance is None:
        raise ValidationFailed("only paper accounts can be reset", field="account_id")
    events: list[tuple[UUID, BusEvent]] = []
    writes = Writes()
    for order in order_rows.working_orders(conn, user_id, account.id):
        booked = booking.finish(writes, user_id, account, order, OrderAction.CANCEL, reason="account reset")
        events += booked.events
    writes.flush(conn)  # the holds are released before the books are read
    position_rows.close_all_at_reset(conn, user_id, account.id)
    books = ledger_rows.books(conn, user_id, account.id)
    ledger_rows.post(
        conn, user_id, account.id, [ledger.reset(books, account.quote_currency, account.starting_balance)]
    )
    account = account_rows.count_reset(conn, user_id, account.id)
    activity_rows.insert_activity(
        conn,
        user_id,
        level=ActivityLevel.WARNING,
        message=f"Paper account on {account.exchange} reset to"
        f" {account.starting_balance} {account.quote_currency}",
        data={"account_id": str(account.id), "resets": account.resets},
    )
    return account, events
