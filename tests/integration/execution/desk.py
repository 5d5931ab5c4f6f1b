"""A trading desk for executor tests: users, bots and paper accounts made through the
platform's own services, market prices as the market stream records them, and the ledger
checks every test ends with."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import UUID

from pydantic import SecretStr

from tekoa.db import ledger as ledger_rows
from tekoa.db import markets as market_rows
from tekoa.db import orders as order_rows
from tekoa.db import positions as position_rows
from tekoa.db import users
from tekoa.db.connection import PooledDatabase, service_transaction, tenant_transaction
from tekoa.domain.bots import TradingMode
from tekoa.domain.execution import Account, Order, Position
from tekoa.domain.orders import OrderSide, OrderType, place
from tekoa.domain.resources import CredentialSecrets
from tekoa.exchanges.clients import MarketRulesCache, build_client
from tekoa.exchanges.simulated import simulated_rules
from tekoa.execution.accounts import PaperDefaults, open_account
from tekoa.execution.executor import BrokerProvider, Executor, ExecutorConfig
from tekoa.execution.ledger import Book
from tekoa.execution.messages import ExecuteMessage, PlaceMessage
from tekoa.execution.reconcile import Reconciler, ReconcileReport
from tekoa.security.envelope import KeyProvider
from tekoa.services import bots as bot_service
from tekoa.services import credentials as credential_service
from tekoa.services import strategies as strategy_service
from tests.fakes.exchange import FakeBinance
from tests.unit.strategies.examples import SCALPER

_names = itertools.count()
SYMBOL = "BTC/USDT"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class FakeExchangeVerifier:
    """Verifies a key by fetching the balance from the fake exchange through ccxt."""

    def __init__(self, fake: FakeBinance) -> None:
        self.fake = fake

    def verify(self, exchange: str, secrets: CredentialSecrets) -> None:
        build_client(exchange, credentials=secrets, url_overrides=self.fake.url_overrides()).fetch_balance()


class NoLiveBrokers:
    """Paper tests never reach an exchange."""

    def live(self, user_id: UUID, account: Account) -> Any:
        raise AssertionError("a paper order reached for a live broker")


@dataclass
class Desk:
    database: PooledDatabase
    brokers: BrokerProvider = field(default_factory=NoLiveBrokers)
    clock: list[int] = field(default_factory=lambda: [now_ms()])

    def executor(self, **config: Any) -> Executor:
        return Executor(
            self.database, self.brokers, config=ExecutorConfig(**config), clock_ms=lambda: self.clock[0]
        )

    # -- people and things ---------------------------------------------------------------

    def user(self) -> UUID:
        with self.database.connection() as conn, service_transaction(conn):
            return users.insert_user(conn, f"trader{next(_names)}@example.com", "not-a-real-hash", None).id

    def bot(
        self,
        user_id: UUID,
        symbol: str = SYMBOL,
        *,
        exchange: str = "simulated",
        credential_id: UUID | None = None,
    ) -> UUID:
        live = credential_id is not None
        strategy = strategy_service.create_strategy(
            self.database,
            user_id,
            strategy_service.StrategyCreate.model_validate(
                {
                    "name": f"s{next(_names)}",
                    "definition": {"kind": "builtin", "bot_type": "scalper", "params": SCALPER},
                }
            ),
        )
        bot = bot_service.create_bot(
            self.database,
            user_id,
            bot_service.BotCreate(
                name=f"b{next(_names)}",
                strategy_id=strategy.id,
                exchange=exchange,
                symbol=symbol,
                mode=TradingMode.LIVE if live else TradingMode.PAPER,
                credential_id=credential_id,
                confirm_live=live,
            ),
        )
        return bot.id

    def paper_account(
        self, user_id: UUID, balance: Decimal = Decimal(10_000), exchange: str = "simulated"
    ) -> Account:
        with self.database.connection() as conn, tenant_transaction(conn, user_id):
            return open_account(
                conn,
                user_id,
                exchange=exchange,
                mode=TradingMode.PAPER,
                paper=PaperDefaults(starting_balance=balance),
            )

    def live_account(self, user_id: UUID, fake: FakeBinance, key_provider: KeyProvider) -> Account:
        """A live binance account on the fake exchange, its credential verified there and its
        balances synced from it (as reconciliation does)."""
        credential = credential_service.create_credential(
            self.database,
            key_provider,
            user_id,
            credential_service.CredentialCreate(
                exchange="binance",
                label=f"key {next(_names)}",
                api_key=SecretStr(f"AKIA{next(_names):012d}"),
                secret=SecretStr("fake-secret"),
            ),
        )
        credential_service.verify_credential(
            self.database, key_provider, FakeExchangeVerifier(fake), user_id, credential.id
        )
        with self.database.connection() as conn, tenant_transaction(conn, user_id):
            account = open_account(
                conn,
                user_id,
                exchange="binance",
                mode=TradingMode.LIVE,
                paper=PaperDefaults(),
                credential_id=credential.id,
            )
        public = build_client("binance", url_overrides=fake.url_overrides())
        rules = MarketRulesCache().rules(public, "binance")
        with self.database.connection() as conn, service_transaction(conn):
            market_rows.upsert_rules(conn, list(rules.values()))
        return account

    def sync_live(self, user_id: UUID, account: Account, reconciler: Reconciler) -> None:
        report = ReconcileReport()
        reconciler.reconcile_live_account(user_id, account, report)

    def market(self, price: str | Decimal, symbol: str = SYMBOL, at_ms: int | None = None) -> None:
        """What the market stream writes: the market's rules and its last trade."""
        with self.database.connection() as conn, service_transaction(conn):
            market_rows.upsert_rules(conn, [simulated_rules(symbol)])
            market_rows.record_last_trades(
                conn,
                [
                    market_rows.LastTrade(
                        "simulated", symbol, Decimal(price), self.clock[0] if at_ms is None else at_ms
                    )
                ],
            )

    # -- messages ------------------------------------------------------------------------

    def intent_message(
        self,
        user_id: UUID,
        account: Account,
        bot_id: UUID,
        *,
        side: OrderSide = OrderSide.BUY,
        type: OrderType = OrderType.MARKET,
        quantity: str = "0.01",
        price: str | None = None,
        leg: str = "entry",
        candle: int = 1_717_200_000_000,
        symbol: str = SYMBOL,
        reduce_only: bool = False,
    ) -> PlaceMessage:
        intent = place(
            str(bot_id),
            candle,
            leg,
            side,
            type,
            Decimal(quantity),
            price=None if price is None else Decimal(price),
            reduce_only=reduce_only,
        )
        return PlaceMessage(
            user_id=user_id,
            account_id=account.id,
            bot_id=bot_id,
            exchange=account.exchange,
            symbol=symbol,
            intent=intent,
            enqueued_at=self.clock[0],
        )

    # -- what happened -------------------------------------------------------------------

    def order(self, user_id: UUID, order_id: UUID) -> Order:
        with self.database.connection() as conn, tenant_transaction(conn, user_id):
            order = order_rows.get_order(conn, user_id, order_id)
        assert order is not None
        return order

    def position(self, user_id: UUID, position_id: UUID | None) -> Position:
        assert position_id is not None
        with self.database.connection() as conn, tenant_transaction(conn, user_id):
            position = position_rows.get_position(conn, user_id, position_id)
        assert position is not None
        return position

    def orders(self, user_id: UUID, account: Account) -> list[Order]:
        with self.database.connection() as conn, tenant_transaction(conn, user_id):
            return order_rows.list_orders(
                conn,
                user_id,
                statuses=None,
                bot_id=None,
                account_id=account.id,
                symbol=None,
                after=None,
                limit=200,
            )

    def balance(self, user_id: UUID, account: Account, asset: str, book: Book = Book.AVAILABLE) -> Decimal:
        with self.database.connection() as conn, tenant_transaction(conn, user_id):
            return ledger_rows.books(conn, user_id, account.id).get((asset, book), Decimal(0))

    def assert_ledger_consistent(self, user_id: UUID, account: Account) -> None:
        """The invariants every test ends with: stored books are the entries' sums, every
        posting balances, nothing spendable is negative, and held equals what orders hold."""
        with self.database.connection() as conn, tenant_transaction(conn, user_id):
            stored = {k: v for k, v in ledger_rows.books(conn, user_id, account.id).items() if v != 0}
            rebuilt = {k: v for k, v in ledger_rows.entry_sums(conn, user_id, account.id).items() if v != 0}
            assert stored == rebuilt
            assert ledger_rows.unbalanced_postings(conn, user_id, account.id) == 0
            assert all(v >= 0 for (_, book), v in stored.items() if book in (Book.AVAILABLE, Book.HELD))
            held = {asset: v for (asset, book), v in stored.items() if book is Book.HELD}
            by_orders = {
                a: v for a, v in ledger_rows.held_by_orders(conn, user_id, account.id).items() if v != 0
            }
            assert held == by_orders


def execute_message(user_id: UUID, order: Order) -> ExecuteMessage:
    return ExecuteMessage(
        user_id=user_id,
        account_id=order.account_id,
        order_id=order.id,
        client_order_id=order.client_order_id,
        enqueued_at=now_ms(),
    )
