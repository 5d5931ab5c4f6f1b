"""The API's application context: every adapter a running API uses, built once per process.

The entry point (the Lambda handler, a local API worker, a test) builds one `ApiContext` and
hands it to `create_app`; routes receive it as the `Context` dependency. Nothing is built per
request and nothing is looked up in globals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from functions.api.cursors import CursorSigner
from tekoa.auth.service import Accounts
from tekoa.aws.events import EventBridgePublisher, EventPublisher
from tekoa.aws.queues import OrderQueue, SqsOrderQueue
from tekoa.db.connection import Database
from tekoa.execution.credential_check import ExchangeCredentialVerifier
from tekoa.security import key_provider_for
from tekoa.security.envelope import KeyProvider
from tekoa.services.credentials import CredentialVerifier
from tekoa.settings import Settings


@dataclass(frozen=True, slots=True)
class ApiContext:
    """Settings and adapters of one API process."""

    settings: Settings
    database: Database
    accounts: Accounts
    key_provider: KeyProvider
    credential_verifier: CredentialVerifier
    cursors: CursorSigner
    order_queue: OrderQueue
    events: EventPublisher

    @classmethod
    def build(cls, settings: Settings, database: Database) -> ApiContext:
        """The production wiring for `settings` (no I/O: keys are fetched on first use)."""
        accounts = Accounts.from_settings(settings)
        return cls(
            settings=settings,
            database=database,
            accounts=accounts,
            key_provider=key_provider_for(settings),
            credential_verifier=ExchangeCredentialVerifier(),
            cursors=CursorSigner(lambda: accounts.derived_key("cursor")),
            order_queue=SqsOrderQueue(settings),
            events=EventBridgePublisher(settings),
        )


async def get_context(request: Request) -> ApiContext:
    context: ApiContext = request.app.state.context
    return context


Context = Annotated[ApiContext, Depends(get_context)]


def request_id(request: Request) -> str | None:
    value: Any = request.scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None
