"""Everything the executor needs to decide about one order, read in one round trip after
taking the account's row lock.

The executor handles a message in a few round trips: this read, then the writes (pipelined,
without RETURNING), then the commit. Over RDS Proxy a round trip costs about a millisecond,
so reading the account, bot, market rules, last trade, platform state, the order, its
position, the working sells and the balances one query each would cost more than the
booking itself.

The lock is its own statement, sent in the same pipeline just before the read: under READ
COMMITTED a statement that waits for a row lock still reads the other tables as they were when
it started, so a read that locked the account itself could miss the order or position a
concurrent transaction committed while it waited. The read that follows the lock starts after
the wait. Because the account row is locked (and every writer of an account's orders,
positions and ledger locks it first), what it reads cannot change until the commit: an order id
found absent cannot be claimed by anyone else meanwhile, and the booked trade ids are complete.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from tekoa.db.markets import LastTrade
from tekoa.db.orders import order_from_row
from tekoa.domain.bots import TradingMode
from tekoa.domain.execution import Account, Order, Position, TradingState
from tekoa.exchanges.rules import MarketRules

_ORDER = [
    "id",
    "account_id",
    "bot_id",
    "position_id",
    "client_order_id",
    "exchange",
    "symbol",
    "side",
    "type",
    "quantity",
    "limit_price",
    "stop_price",
    "reduce_only",
    "status",
    "filled_quantity",
    "average_price",
    "fees",
    "held_asset",
    "held_amount",
    "exchange_order_id",
    "reason",
    "reject_code",
    "intent",
    "not_found_count",
    "created_at",
    "updated_at",
    "submitted_at",
    "closed_at",
]
_POSITION = [
    "id",
    "account_id",
    "bot_id",
    "exchange",
    "symbol",
    "quantity",
    "average_entry",
    "entry_quantity",
    "exit_quantity",
    "exit_value",
    "realized_pnl",
    "fees",
    "protection",
    "opened_at",
    "closed_at",
    "close_reason",
    "updated_at",
]
_ACCOUNT = [
    "id",
    "exchange",
    "mode",
    "quote_currency",
    "starting_balance",
    "credential_id",
    "trading_state",
    "trading_state_reason",
    "resets",
    "created_at",
    "updated_at",
]
_RULES = [
    "exchange",
    "symbol",
    "base",
    "quote",
    "amount_step",
    "price_step",
    "min_amount",
    "max_amount",
    "min_price",
    "max_price",
    "min_notional",
    "max_notional",
    "active",
]


# Simple statements, sent together in a pipeline: each is an index lookup that plans in
# microseconds (one query joining them all cost a millisecond of planning per call, and
# server-side prepared statements would pin RDS Proxy connections).
_ACCOUNT_LOCKED = (
    f"SELECT {', '.join(_ACCOUNT)}, (SELECT state FROM platform_trading_state) AS platform_state,"  # noqa: S608 -- fixed column lists
    " (SELECT reason FROM platform_trading_state) AS platform_reason"
    " FROM accounts WHERE user_id = %(user_id)s AND id = %(account_id)s FOR UPDATE"
)
_ORDER_BY_ID = f"SELECT {', '.join(_ORDER)} FROM orders WHERE user_id = %(user_id)s AND id = %(order_id)s"  # noqa: S608 -- fixed column lists
_ORDER_BY_CLIENT_ID = (
    f"SELECT {', '.join(_ORDER)} FROM orders WHERE user_id = %(user_id)s AND account_id = %(account_id)s"  # noqa: S608 -- fixed column lists
    " AND client_order_id = %(client_order_id)s"
)
_MARKET = (
    f"SELECT {', '.join('r.' + c for c in _RULES)}, lt.price AS last_price, lt.trade_time AS last_trade_time"  # noqa: S608 -- fixed column lists
    " FROM (SELECT %(exchange)s::text AS exchange, %(symbol)s::text AS symbol) AS m"
    " LEFT JOIN market_rules r ON (r.exchange, r.symbol) = (m.exchange, m.symbol)"
    " LEFT JOIN market_last_trades lt ON (lt.exchange, lt.symbol) = (m.exchange, m.symbol)"
)
_BOT = (
    "SELECT id, exchange, symbol, mode, archived_at FROM bots WHERE user_id = %(user_id)s AND id = %(bot_id)s"
)
_POSITION_OPEN = (
    f"SELECT {', '.join(_POSITION)} FROM positions WHERE user_id = %(user_id)s AND account_id ="  # noqa: S608 -- fixed column lists
    " %(account_id)s"
    " AND bot_id IS NOT DISTINCT FROM %(bot_id)s AND symbol = %(symbol)s AND closed_at IS NULL"
)
_PENDING_SELLS = (
    "SELECT coalesce(sum(quantity - filled_quantity), 0) AS amount FROM orders WHERE user_id = %(user_id)s"
    " AND account_id = %(account_id)s AND symbol = %(symbol)s AND bot_id IS NOT DISTINCT FROM %(bot_id)s"
    " AND side = 'sell' AND status IN ('new', 'submitted', 'open', 'partially_filled')"
    " AND client_order_id IS DISTINCT FROM %(client_order_id)s"
)
_AVAILABLE = (
    "SELECT asset, amount FROM balances WHERE user_id = %(user_id)s AND account_id = %(account_id)s"
    " AND book = 'available'"
)
_BOOKED = "SELECT trade_id FROM fills WHERE user_id = %(user_id)s AND order_id = %(order_id)s"


@dataclass(frozen=True, slots=True)
class BotRef:
    id: UUID
    exchange: str
    symbol: str
    mode: TradingMode
    archived_at: datetime | None


@dataclass(frozen=True, slots=True)
class OrderContext:
    """What one statement read under the account's lock (see the module docstring)."""

    account: Account
    platform_state: TradingState
    platform_reason: str | None
    bot: BotRef | None
    order: Order | None
    rules: MarketRules | None
    last_trade: LastTrade | None
    position: Position | None
    pending_sells: Decimal
    """What the position's other working sells already promise."""
    base_available: Decimal
    quote_available: Decimal
    booked_trade_ids: frozenset[str]
    """Trade ids already recorded for the order."""

    def available(self, asset: str) -> Decimal:
        """The available balance of the market's base or quote asset."""
        assert self.rules is not None
        if asset == self.rules.base:
            return self.base_available
        if asset == self.rules.quote:
            return self.quote_available
        raise ValueError(f"{asset} is neither base nor quote of {self.rules.symbol}")


def load_order_context(
    conn: psycopg.Connection[Any],
    user_id: UUID,
    account_id: UUID,
    *,
    symbol: str | None = None,
    bot_id: UUID | None = None,
    order_id: UUID | None = None,
    client_order_id: str | None = None,
) -> OrderContext | None:
    """Lock the account, then read the order's world; None when the user has no such account.

    The order is looked up by `order_id` or `client_order_id`; when it exists, its own market
    and bot decide the rules, position and pending sells, else `symbol` and `bot_id` do.
    """
    params: dict[str, Any] = {
        "user_id": user_id,
        "account_id": account_id,
        "order_id": order_id,
        "client_order_id": client_order_id,
    }
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_ACCOUNT_LOCKED, params)
        found = cur.fetchone()
        if found is None:
            return None
        platform_state, platform_reason = found.pop("platform_state"), found.pop("platform_reason")
        account = Account.model_validate(found)
        order_cursor = conn.cursor(row_factory=dict_row)
        order_cursor.execute(_ORDER_BY_ID if order_id is not None else _ORDER_BY_CLIENT_ID, params)
        if symbol is None:  # the order's own market and bot decide: wait for it
            row = order_cursor.fetchone()
            if row is None:
                return _context(
                    account, platform_state, platform_reason, None, None, None, None, None, {}, 0, frozenset()
                )
            symbol, bot_id = row["symbol"], row["bot_id"]
            order_rows_read: list[dict[str, Any]] | None = [row]
        else:
            order_rows_read = None
        params.update(exchange=account.exchange, symbol=symbol, bot_id=bot_id)
        queued = {
            name: _queue(conn, statement, params)
            for name, statement in (
                ("market", _MARKET),
                ("bot", _BOT),
                ("position", _POSITION_OPEN),
                ("pending", _PENDING_SELLS),
                ("available", _AVAILABLE),
            )
        }
        if order_rows_read is None:
            order_rows_read = order_cursor.fetchall()
        order = order_from_row(order_rows_read[0]) if order_rows_read else None
        booked: frozenset[str] = frozenset()
        if order is not None and order.filled_quantity > 0:
            cur.execute(_BOOKED, {**params, "order_id": order.id})
            booked = frozenset(row["trade_id"] for row in cur.fetchall())
        results = {name: each.fetchall() for name, each in queued.items()}
        for each in queued.values():
            each.close()
        order_cursor.close()
    market = results["market"][0]
    rules = None if market["exchange"] is None else MarketRules(**{c: market[c] for c in _RULES})
    last = (
        None
        if market["last_price"] is None
        else LastTrade(account.exchange, symbol, market["last_price"], market["last_trade_time"])
    )
    bot = results["bot"][0] if results["bot"] else None
    return _context(
        account,
        platform_state,
        platform_reason,
        None
        if bot is None
        else BotRef(bot["id"], bot["exchange"], bot["symbol"], TradingMode(bot["mode"]), bot["archived_at"]),
        order,
        rules,
        last,
        results["position"][0] if results["position"] else None,
        {row["asset"]: row["amount"] for row in results["available"]},
        results["pending"][0]["amount"],
        booked,
    )


def _queue(
    conn: psycopg.Connection[Any], statement: str, params: dict[str, Any]
) -> psycopg.Cursor[dict[str, Any]]:
    cursor = conn.cursor(row_factory=dict_row)
    cursor.execute(statement, params)
    return cursor


def _context(
    account: Account,
    platform_state: str | None,
    platform_reason: str | None,
    bot: BotRef | None,
    order: Order | None,
    rules: MarketRules | None,
    last: LastTrade | None,
    position: dict[str, Any] | None,
    available: dict[str, Decimal],
    pending_sells: Decimal | int,
    booked: frozenset[str],
) -> OrderContext:
    return OrderContext(
        account=account,
        # A missing platform row reads as halted: fail closed.
        platform_state=TradingState.HALTED if platform_state is None else TradingState(platform_state),
        platform_reason="platform trading state is missing" if platform_state is None else platform_reason,
        bot=bot,
        order=order,
        rules=rules,
        last_trade=last,
        position=None if position is None else Position.model_validate(position),
        pending_sells=Decimal(pending_sells),
        base_available=available.get(rules.base, Decimal(0)) if rules else Decimal(0),
        quote_available=available.get(rules.quote, Decimal(0)) if rules else Decimal(0),
        booked_trade_ids=booked,
    )


# -- a batch of new orders -----------------------------------------------------------------
# The same reads for a batch of place messages, one statement per table however many orders:
# the keys travel as arrays and `unnest ... WITH ORDINALITY` numbers them, so each row comes
# back with the index of the order it belongs to. The caller's transaction is the service
# role's (the batch spans tenants): every statement matches the message's (user, account) pair,
# so a message can only ever reach its own user's rows.


@dataclass(frozen=True, slots=True)
class PlaceKey:
    """What a place message names: whose account, which bot and market, which client id."""

    user_id: UUID
    account_id: UUID
    bot_id: UUID
    symbol: str
    client_order_id: str


_ACCOUNTS_LOCKED = (
    f"SELECT user_id, {', '.join(_ACCOUNT)}, (SELECT state FROM platform_trading_state) AS platform_state,"  # noqa: S608 -- fixed column lists
    " (SELECT reason FROM platform_trading_state) AS platform_reason FROM accounts"
    " WHERE (user_id, id) IN (SELECT * FROM unnest(%(users)s::uuid[], %(accounts)s::uuid[]))"
    " ORDER BY id FOR UPDATE"
)
_KEYS = (
    "unnest(%(users)s::uuid[], %(accounts)s::uuid[], %(bots)s::uuid[], %(symbols)s::text[],"
    " %(client_ids)s::text[]) WITH ORDINALITY AS k(user_id, account_id, bot_id, symbol, client_order_id, idx)"
)
_BATCH_ORDERS = (
    f"SELECT k.idx, {', '.join('o.' + c for c in _ORDER)} FROM {_KEYS} JOIN orders o"  # noqa: S608 -- fixed column lists
    " ON o.user_id = k.user_id AND o.account_id = k.account_id AND o.client_order_id = k.client_order_id"
)
_BATCH_MARKETS = (
    f"SELECT m.idx, {', '.join('r.' + c for c in _RULES)}, lt.price AS last_price,"  # noqa: S608 -- fixed column lists
    " lt.trade_time AS last_trade_time"
    " FROM unnest(%(exchanges)s::text[], %(symbols)s::text[]) WITH ORDINALITY AS m(exchange, symbol, idx)"
    " LEFT JOIN market_rules r ON (r.exchange, r.symbol) = (m.exchange, m.symbol)"
    " LEFT JOIN market_last_trades lt ON (lt.exchange, lt.symbol) = (m.exchange, m.symbol)"
)
_BATCH_BOTS = (
    f"SELECT k.idx, b.id, b.exchange, b.symbol, b.mode, b.archived_at FROM {_KEYS}"  # noqa: S608 -- fixed text
    " JOIN bots b ON b.user_id = k.user_id AND b.id = k.bot_id"
)
_BATCH_POSITIONS = (
    f"SELECT k.idx, {', '.join('p.' + c for c in _POSITION)} FROM {_KEYS} JOIN positions p"  # noqa: S608 -- fixed column lists
    " ON p.user_id = k.user_id AND p.account_id = k.account_id AND p.bot_id = k.bot_id"
    " AND p.symbol = k.symbol AND p.closed_at IS NULL"
)
_BATCH_PENDING_SELLS = (
    f"SELECT k.idx, sum(o.quantity - o.filled_quantity) AS amount FROM {_KEYS} JOIN orders o"  # noqa: S608 -- fixed text
    " ON o.user_id = k.user_id AND o.account_id = k.account_id AND o.symbol = k.symbol"
    " AND o.bot_id = k.bot_id AND o.side = 'sell'"
    " AND o.status IN ('new', 'submitted', 'open', 'partially_filled')"
    " AND o.client_order_id <> k.client_order_id GROUP BY k.idx"
)
_BATCH_AVAILABLE = (
    "SELECT b.account_id, b.asset, b.amount FROM unnest(%(users)s::uuid[], %(accounts)s::uuid[])"
    " AS k(user_id, account_id) JOIN balances b ON b.user_id = k.user_id AND b.account_id = k.account_id"
    " AND b.book = 'available'"
)


def load_place_contexts(conn: psycopg.Connection[Any], keys: list[PlaceKey]) -> list[OrderContext | None]:
    """Lock the accounts of a batch of new orders (in id order), then read each order's world.

    One context per key, in order; None where the user has no such account. The keys must name
    distinct accounts: the contexts are read before any of them is booked.
    """
    params: dict[str, Any] = {
        "users": [k.user_id for k in keys],
        "accounts": [k.account_id for k in keys],
        "bots": [k.bot_id for k in keys],
        "symbols": [k.symbol for k in keys],
        "client_ids": [k.client_order_id for k in keys],
    }
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_ACCOUNTS_LOCKED, params)
        locked = {(row.pop("user_id"), row["id"]): row for row in cur.fetchall()}
    platform = next(iter(locked.values()), {"platform_state": None, "platform_reason": None})
    platform_state, platform_reason = platform["platform_state"], platform["platform_reason"]
    accounts = {key: Account.model_validate({c: row[c] for c in _ACCOUNT}) for key, row in locked.items()}
    exchanges = [
        accounts[(k.user_id, k.account_id)].exchange if (k.user_id, k.account_id) in accounts else ""
        for k in keys
    ]
    queued = {
        name: _queue(conn, statement, {**params, "exchanges": exchanges})
        for name, statement in (
            ("orders", _BATCH_ORDERS),
            ("markets", _BATCH_MARKETS),
            ("bots", _BATCH_BOTS),
            ("positions", _BATCH_POSITIONS),
            ("pending", _BATCH_PENDING_SELLS),
            ("available", _BATCH_AVAILABLE),
        )
    }
    results = {name: each.fetchall() for name, each in queued.items()}
    for each in queued.values():
        each.close()

    def by_index(rows: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
        return {int(row.pop("idx")) - 1: row for row in rows}

    orders, markets, bots = (
        by_index(results["orders"]),
        by_index(results["markets"]),
        by_index(results["bots"]),
    )
    positions, pending = by_index(results["positions"]), by_index(results["pending"])
    available: dict[UUID, dict[str, Decimal]] = {}
    for row in results["available"]:
        available.setdefault(row["account_id"], {})[row["asset"]] = row["amount"]
    contexts: list[OrderContext | None] = []
    for n, key in enumerate(keys):
        account = accounts.get((key.user_id, key.account_id))
        if account is None:
            contexts.append(None)
            continue
        market = markets[n]
        rules = None if market["exchange"] is None else MarketRules(**{c: market[c] for c in _RULES})
        last = (
            None
            if market["last_price"] is None
            else LastTrade(account.exchange, key.symbol, market["last_price"], market["last_trade_time"])
        )
        bot = bots.get(n)
        contexts.append(
            _context(
                account,
                platform_state,
                platform_reason,
                None
                if bot is None
                else BotRef(
                    bot["id"], bot["exchange"], bot["symbol"], TradingMode(bot["mode"]), bot["archived_at"]
                ),
                order_from_row(orders[n]) if n in orders else None,
                rules,
                last,
                positions.get(n),
                available.get(account.id, {}),
                pending[n]["amount"] if n in pending else 0,
                frozenset(),
            )
        )
    return contexts
