"""/v1/accounts: your trading accounts — one per exchange and mode — and their balances.

A paper account opens by itself on your first paper order on an exchange (with the
configured starting balance), or here with your own starting balance and quote currency. A
live account mirrors the exchange through a verified broker credential. Balances are per
asset: `available` to spend, `held` by working orders; every one of them is a sum of ledger
entries, which `GET /{id}/ledger-check` adds up again. A paper account's reset cancels every
order, closes every position and restores the starting balance; it needs `confirm: true`.
"""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from functions.api.context import Context
from functions.api.errors import error_responses
from functions.api.idempotency import Created, IdempotencyKey, idempotent
from functions.api.security import CurrentUser, TradingUser
from tekoa.domain.execution import Account, AssetBalance
from tekoa.execution.ledger_check import ledger_problems
from tekoa.services import trading_accounts as service
from tekoa.services.trading_accounts import AccountChange, AccountOpen, AccountView, ResetRequest

router = APIRouter(prefix="/v1/accounts", tags=["accounts"])


class AccountOut(BaseModel):
    """An account and its balance of every asset it has held."""

    account: Account
    balances: list[AssetBalance]

    @classmethod
    def of(cls, view: AccountView) -> AccountOut:
        return cls(account=view.account, balances=view.balances)


class LedgerCheck(BaseModel):
    """Every stored balance added up again from the ledger's entries."""

    consistent: bool = Field(
        description="Balances equal the entries' sums, postings balance, holds match orders."
    )
    problems: list[str]


@router.get("", response_model=list[AccountOut], responses=error_responses(401))
def list_accounts(principal: CurrentUser, context: Context) -> list[AccountOut]:
    """Your accounts with their balances."""
    return [
        AccountOut.of(view) for view in service.list_trading_accounts(context.database, principal.user_id)
    ]


@router.post("", status_code=201, response_model=AccountOut, responses=error_responses(401, 403, 409, 422))
def open_account(
    body: AccountOpen,
    request: Request,
    principal: TradingUser,
    context: Context,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Open an account on an exchange (409 if you have one there in this mode). Honours `Idempotency-Key`."""
    return idempotent(
        context,
        principal,
        idempotency_key,
        request,
        body,
        create=lambda before_commit: service.open_trading_account(
            context.database, context.settings, principal.user_id, body, before_commit=before_commit
        ),
        respond=lambda view: Created(
            201, AccountOut.of(view), {"Location": f"/v1/accounts/{view.account.id}"}
        ),
    )


@router.get("/{account_id}", response_model=AccountOut, responses=error_responses(401, 404, 422))
def get_account(account_id: UUID, principal: CurrentUser, context: Context) -> AccountOut:
    """One account with its balances."""
    return AccountOut.of(service.get_trading_account(context.database, principal.user_id, account_id))


@router.get(
    "/{account_id}/balances", response_model=list[AssetBalance], responses=error_responses(401, 404, 422)
)
def get_balances(account_id: UUID, principal: CurrentUser, context: Context) -> list[AssetBalance]:
    """Available and held per asset."""
    return service.get_trading_account(context.database, principal.user_id, account_id).balances


@router.put(
    "/{account_id}/starting-balance", response_model=AccountOut, responses=error_responses(401, 403, 404, 422)
)
def set_starting_balance(
    account_id: UUID, body: AccountChange, principal: TradingUser, context: Context
) -> AccountOut:
    """Set what a paper account's next reset restores."""
    return AccountOut.of(
        service.change_starting_balance(context.database, principal.user_id, account_id, body)
    )


@router.post("/{account_id}/reset", response_model=AccountOut, responses=error_responses(401, 403, 404, 422))
def reset_account(
    account_id: UUID, body: ResetRequest, principal: TradingUser, context: Context
) -> AccountOut:
    """Reset a paper account to its starting balance; send `{"confirm": true}`."""
    view = service.reset_trading_account(
        context.database, context.events, principal.user_id, account_id, body
    )
    return AccountOut.of(view)


@router.get(
    "/{account_id}/ledger-check", response_model=LedgerCheck, responses=error_responses(401, 404, 422)
)
def check_ledger(account_id: UUID, principal: CurrentUser, context: Context) -> LedgerCheck:
    """Rebuild every balance of the account from its ledger and compare."""
    service.get_trading_account(context.database, principal.user_id, account_id)  # 404 if not yours
    problems = ledger_problems(context.database, principal.user_id, account_id)
    return LedgerCheck(consistent=not problems, problems=problems)
