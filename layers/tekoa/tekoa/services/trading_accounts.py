"""Trading accounts for the API: open, list with balances, change a paper account's starting
balance, and reset it.

One account per exchange and mode. A paper account opens by itself on first use (a manual
order, a bot's first intent) with the configured starting balance, or explicitly here with
your own; a live account needs a verified broker credential of its exchange. A reset cancels
every working order, closes every position without a trade and restores the starting
balance; it needs `confirm: true`. The ledger keeps every entry: the balances before the reset
can still be rebuilt.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

import psycopg
from pydantic import BaseModel, ConfigDict, Field, model_validator

from tekoa.aws.events import BusEvent, EventPublisher
from tekoa.db import accounts as account_rows
from tekoa.db import credentials as credential_rows
from tekoa.db import ledger as ledger_rows
from tekoa.db import outbox
from tekoa.db.connection import BeforeCommit, Database, service_transaction, tenant_transaction
from tekoa.domain.bots import TradingMode
from tekoa.domain.exchanges import SIMULATED_EXCHANGE, ExchangeId
from tekoa.domain.execution import Account, AccountNotFound, AssetBalance
from tekoa.domain.numbers import BoundedDecimals
from tekoa.errors import Conflict, ValidationFailed
from tekoa.execution.accounts import PaperDefaults, open_account, reset_paper_account
from tekoa.observability import logger
from tekoa.settings import Settings

Amount = Annotated[
    Decimal, Field(gt=0, le=Decimal("1e12"), max_digits=30, decimal_places=8, allow_inf_nan=False)
]


class AccountExists(Conflict):
    code = "ACCOUNT_EXISTS"


class AccountOpen(BoundedDecimals):
    """A trading account to open on an exchange."""

    model_config = ConfigDict(extra="forbid")

    exchange: ExchangeId
    mode: TradingMode = TradingMode.PAPER
    quote_currency: str | None = Field(
        None,
        pattern=r"^[A-Z0-9]{1,20}$",
        description="Paper: the currency the starting balance is in (USDT).",
    )
    starting_balance: Amount | None = Field(
        None, description="Paper: what the account starts with and resets to."
    )
    credential_id: UUID | None = Field(
        None, description="Live: your verified broker credential for the exchange."
    )

    @model_validator(mode="after")
    def _fits_mode(self) -> AccountOpen:
        if self.mode is TradingMode.LIVE and (
            self.starting_balance is not None or self.quote_currency is not None
        ):
            raise ValueError(
                "a live account's balances come from the exchange: omit starting_balance and quote_currency"
            )
        if self.mode is TradingMode.PAPER and self.credential_id is not None:
            raise ValueError("a paper account needs no credential_id")
        return self


class AccountChange(BoundedDecimals):
    model_config = ConfigDict(extra="forbid")

    starting_balance: Amount = Field(description="What the next reset restores (paper accounts).")


class ResetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    confirm: bool = Field(
        False,
        description="Must be true: a reset cancels every order and closes every position of the account.",
    )


@dataclass(frozen=True, slots=True)
class AccountView:
    account: Account
    balances: list[AssetBalance]


def open_trading_account(
    database: Database,
    settings: Settings,
    user_id: UUID,
    request: AccountOpen,
    *,
    before_commit: BeforeCommit[AccountView] | None = None,
) -> AccountView:
    """Open an account; AccountExists (409) when you already have one for the exchange and mode."""
    with database.connection() as conn, tenant_transaction(conn, user_id):
        if account_rows.find_account(conn, user_id, request.exchange, request.mode) is not None:
            raise AccountExists(
                f"you already have a {request.mode} account on {request.exchange}", field="exchange"
            )
        if request.mode is TradingMode.LIVE:
            _check_credential(conn, user_id, request)
        defaults = PaperDefaults.from_settings(settings)
        account = open_account(
            conn,
            user_id,
            exchange=request.exchange,
            mode=request.mode,
            paper=PaperDefaults(
                quote_currency=request.quote_currency or defaults.quote_currency,
                starting_balance=request.starting_balance or defaults.starting_balance,
            ),
            credential_id=request.credential_id,
        )
        view = AccountView(account, ledger_rows.asset_balances(conn, user_id, account.id))
        if before_commit is not None:
            before_commit(conn, view)
    return view


def _check_credential(conn: psycopg.Connection[Any], user_id: UUID, request: AccountOpen) -> None:
    if request.exchange == SIMULATED_EXCHANGE:
        raise ValidationFailed("the simulated exchange has paper accounts only", field="mode")
    if request.credential_id is None:
        raise ValidationFailed("a live account needs credential_id", field="credential_id")
    credential = credential_rows.get_credential(conn, user_id, request.credential_id, for_share=True)
    if credential is None:
        raise ValidationFailed("no broker credential with this id", field="credential_id")
    if credential.exchange != request.exchange:
        raise ValidationFailed(f"the credential is for {credential.exchange}", field="credential_id")
    if not credential.verified:
        raise ValidationFailed(
            "verify the credential first (POST /v1/broker-credentials/{id}/verify)", field="credential_id"
        )


def list_trading_accounts(database: Database, user_id: UUID) -> list[AccountView]:
    """Every account of the caller with its balances per asset."""
    with database.connection() as conn, tenant_transaction(conn, user_id):
        return [
            AccountView(account, ledger_rows.asset_balances(conn, user_id, account.id))
            for account in account_rows.list_accounts(conn, user_id)
        ]


def get_trading_account(database: Database, user_id: UUID, account_id: UUID) -> AccountView:
    with database.connection() as conn, tenant_transaction(conn, user_id):
        account = account_rows.get_account(conn, user_id, account_id)
        if account is None:
            raise AccountNotFound()
        return AccountView(account, ledger_rows.asset_balances(conn, user_id, account.id))


def change_starting_balance(
    database: Database, user_id: UUID, account_id: UUID, change: AccountChange
) -> AccountView:
    """Set what a paper account's next reset restores (422 for a live account)."""
    with database.connection() as conn, tenant_transaction(conn, user_id):
        account = account_rows.get_account(conn, user_id, account_id, for_update=True)
        if account is None:
            raise AccountNotFound()
        if account.mode is not TradingMode.PAPER:
            raise ValidationFailed("a live account has no starting balance", field="starting_balance")
        updated = account_rows.set_starting_balance(conn, user_id, account_id, change.starting_balance)
        assert updated is not None
        return AccountView(updated, ledger_rows.asset_balances(conn, user_id, account_id))


def reset_trading_account(
    database: Database,
    publisher: EventPublisher | None,
    user_id: UUID,
    account_id: UUID,
    request: ResetRequest,
) -> AccountView:
    """Reset a paper account to its starting balance (needs `confirm: true`)."""
    if not request.confirm:
        raise ValidationFailed(
            "a reset cancels every order and closes every position: send confirm: true", field="confirm"
        )
    with database.connection() as conn, tenant_transaction(conn, user_id):
        if account_rows.get_account(conn, user_id, account_id) is None:
            raise AccountNotFound()
        account, events = reset_paper_account(conn, user_id, account_id)
        view = AccountView(account, ledger_rows.asset_balances(conn, user_id, account_id))
    _publish(database, publisher, events)
    return view


def _publish(
    database: Database, publisher: EventPublisher | None, events: list[tuple[UUID, BusEvent]]
) -> None:
    if not events or publisher is None:
        return
    try:
        publisher.publish([event for _, event in events])
    except Exception:
        logger.exception("publishing order events failed; the outbox sweep retries")
        return
    with database.connection() as conn, service_transaction(conn):
        outbox.delete_events(conn, [event_id for event_id, _ in events])
