"""Positions for the API: list and read them valued at the last trade, and close them.

Closing sells what the position holds at market, as a manual order of the position's owner
(its bot, or you): on paper the position's resting exits are canceled first in the same
transaction; on a live account they must be canceled first (the exchange holds them), and a
position whose exits already cover it answers 409.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from tekoa.aws.queues import OrderQueue
from tekoa.db import accounts as account_rows
from tekoa.db import markets as market_rows
from tekoa.db import orders as order_rows
from tekoa.db import positions as position_rows
from tekoa.db.connection import BeforeCommit, Database, tenant_transaction
from tekoa.domain.bots import TradingMode
from tekoa.domain.execution import AccountNotFound, Order, OrderAction, Position, PositionNotFound
from tekoa.domain.orders import OrderSide, OrderType
from tekoa.errors import Conflict
from tekoa.execution import booking
from tekoa.execution.admission import CostModel, OrderAsk
from tekoa.execution.writes import Writes
from tekoa.services.orders import claim_order, send_claimed
from tekoa.settings import Settings


class PositionCovered(Conflict):
    code = "POSITION_COVERED"


@dataclass(frozen=True, slots=True)
class PositionView:
    """A position and what it is worth at the market's last trade."""

    position: Position
    last_price: Decimal | None
    last_price_at: int | None

    @property
    def market_value(self) -> Decimal | None:
        return None if self.last_price is None else self.position.quantity * self.last_price

    @property
    def unrealized_pnl(self) -> Decimal | None:
        if self.last_price is None or self.position.closed_at is not None:
            return None
        return self.position.quantity * (self.last_price - self.position.average_entry)


def _views(database: Database, user_id: UUID, positions: list[Position]) -> list[PositionView]:
    with database.connection() as conn, tenant_transaction(conn, user_id):
        prices = {
            (p.exchange, p.symbol): market_rows.last_trade(conn, p.exchange, p.symbol)
            for p in positions
            if p.closed_at is None
        }
    views = []
    for position in positions:
        last = prices.get((position.exchange, position.symbol))
        views.append(PositionView(position, last.price if last else None, last.trade_time if last else None))
    return views


def list_positions(
    database: Database,
    user_id: UUID,
    *,
    is_open: bool | None,
    bot_id: UUID | None,
    account_id: UUID | None,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[PositionView]:
    """The caller's positions, newest opened first, open ones valued at the last trade."""
    with database.connection() as conn, tenant_transaction(conn, user_id):
        positions = position_rows.list_positions(
            conn, user_id, is_open=is_open, bot_id=bot_id, account_id=account_id, after=after, limit=limit
        )
    return _views(database, user_id, positions)


def get_position(database: Database, user_id: UUID, position_id: UUID) -> PositionView:
    with database.connection() as conn, tenant_transaction(conn, user_id):
        position = position_rows.get_position(conn, user_id, position_id)
    if position is None:
        raise PositionNotFound()
    return _views(database, user_id, [position])[0]


def close_position(
    database: Database,
    settings: Settings,
    queue: OrderQueue,
    user_id: UUID,
    position_id: UUID,
    *,
    before_commit: BeforeCommit[Order] | None = None,
) -> Order:
    """Sell what an open position holds at market (see the module docstring)."""
    with database.connection() as conn, tenant_transaction(conn, user_id):
        position = position_rows.get_position(conn, user_id, position_id)
        if position is None:
            raise PositionNotFound()
        account = account_rows.get_account(conn, user_id, position.account_id, for_update=True)
        if account is None:
            raise AccountNotFound()
        position = position_rows.get_position(conn, user_id, position_id)  # read again under the lock
        assert position is not None
        if position.closed_at is not None:
            raise Conflict("the position is already closed", field="position_id")
        exits = [
            o
            for o in order_rows.working_orders(
                conn, user_id, account.id, symbol=position.symbol, bot_id=position.bot_id, bot_filter=True
            )
            if o.side is OrderSide.SELL
        ]
        if exits and account.mode is TradingMode.LIVE:
            raise PositionCovered(
                f"{len(exits)} working exit orders hold this position on {account.exchange}: cancel them"
                " first",
                field="position_id",
            )
        if exits:
            writes = Writes()
            for order in exits:
                booking.finish(
                    writes, user_id, account, order, OrderAction.CANCEL, reason="position closed at market"
                )
            writes.flush(conn)
        order = claim_order(
            conn,
            user_id,
            account,
            CostModel.from_settings(settings),
            symbol=position.symbol,
            bot_id=position.bot_id,
            client_order_id=f"close{uuid.uuid4().hex[:28]}",
            ask=OrderAsk(
                side=OrderSide.SELL,
                type=OrderType.MARKET,
                quantity=position.quantity,
                limit_price=None,
                stop_price=None,
                reduce_only=True,
            ),
            strict=False,
            source="close",
        )
        if before_commit is not None:
            before_commit(conn, order)
    send_claimed(queue, user_id, order)
    return order


def close_all(
    database: Database,
    settings: Settings,
    queue: OrderQueue,
    user_id: UUID,
    *,
    bot_id: UUID | None = None,
    account_id: UUID | None = None,
) -> list[Order]:
    """Close every open position of the caller (of one bot or account when given)."""
    with database.connection() as conn, tenant_transaction(conn, user_id):
        positions = position_rows.list_positions(
            conn, user_id, is_open=True, bot_id=bot_id, account_id=account_id, after=None, limit=10_000
        )
    return [close_position(database, settings, queue, user_id, p.id) for p in positions]
