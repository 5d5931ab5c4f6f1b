"""/v1/broker-credentials: exchange API keys, stored envelope-encrypted.

The secrets are write-only: responses show an id, the exchange, your label and a hint (first
4 … last 4 characters of the API key), never a secret. Create, use (decryption) and delete
are written to the audit log. `POST /{id}/verify` asks the exchange whether the key works
(the simulated exchange accepts any key) and marks it verified, which live bots require.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from functions.api.conventions import IdempotencyKey, Page, PageParams, error_responses, idempotent
from functions.api.deps import Context, request_id
from functions.api.routes._cursors import after_created, created_position
from functions.api.security import CurrentUser, TradingUser
from tekoa.domain.resources import BrokerCredential
from tekoa.execution.credential_check import ExchangeCredentialVerifier
from tekoa.security import key_provider_for
from tekoa.security.envelope import KeyProvider
from tekoa.services import credentials as service
from tekoa.services.credentials import CredentialCreate, CredentialVerifier

router = APIRouter(prefix="/v1/broker-credentials", tags=["broker-credentials"])

_NO_STORE = {"Cache-Control": "no-store"}


def get_key_provider(request: Request, context: Context) -> KeyProvider:
    """The app's key provider (`app.state.key_provider`, built from settings on first use)."""
    provider: KeyProvider | None = getattr(request.app.state, "key_provider", None)
    if provider is None:
        provider = key_provider_for(context.settings)
        request.app.state.key_provider = provider
    return provider


def get_verifier(request: Request) -> CredentialVerifier:
    """The app's credential verifier (`app.state.credential_verifier`; default: ask the exchange)."""
    verifier: CredentialVerifier | None = getattr(request.app.state, "credential_verifier", None)
    if verifier is None:
        verifier = ExchangeCredentialVerifier()
        request.app.state.credential_verifier = verifier
    return verifier


KeyProviderDep = Annotated[KeyProvider, Depends(get_key_provider)]
VerifierDep = Annotated[CredentialVerifier, Depends(get_verifier)]


@router.post(
    "", status_code=201, response_model=BrokerCredential, responses=error_responses(401, 403, 409, 422)
)
def create_credential(
    body: CredentialCreate,
    request: Request,
    principal: TradingUser,
    context: Context,
    key_provider: KeyProviderDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Store an exchange API key, encrypted. Honours `Idempotency-Key` (secrets compared by digest)."""

    def create() -> tuple[int, BrokerCredential, dict[str, str]]:
        credential = service.create_credential(
            context.database, key_provider, principal.user_id, body, request_id=request_id(request)
        )
        return 201, credential, {"Location": f"/v1/broker-credentials/{credential.id}", **_NO_STORE}

    return idempotent(
        context, principal, idempotency_key, request.method, request.url.path, body.fingerprint(), create
    )


@router.get("", response_model=Page[BrokerCredential], responses=error_responses(401, 422))
def list_credentials(principal: CurrentUser, page: PageParams, context: Context) -> Page[BrokerCredential]:
    """Your credentials (hints only), newest first."""
    rows = service.list_credentials(
        context.database, principal.user_id, after=after_created(page), limit=page.limit + 1
    )
    return Page[BrokerCredential].build(rows, page.limit, created_position)


@router.get("/{credential_id}", response_model=BrokerCredential, responses=error_responses(401, 404, 422))
def get_credential(credential_id: UUID, principal: CurrentUser, context: Context) -> BrokerCredential:
    """One credential (hint only)."""
    return service.get_credential(context.database, principal.user_id, credential_id)


@router.delete(
    "/{credential_id}",
    status_code=204,
    response_class=Response,
    responses=error_responses(401, 403, 404, 409, 422),
)
def delete_credential(
    credential_id: UUID, request: Request, principal: TradingUser, context: Context
) -> Response:
    """Delete a credential and its ciphertext; 409 while bots use it."""
    service.delete_credential(
        context.database, principal.user_id, credential_id, request_id=request_id(request)
    )
    return Response(status_code=204)


@router.post(
    "/{credential_id}/verify",
    response_model=BrokerCredential,
    responses=error_responses(401, 403, 404, 409, 422, 503),
)
def verify_credential(
    credential_id: UUID,
    request: Request,
    principal: TradingUser,
    context: Context,
    key_provider: KeyProviderDep,
    verifier: VerifierDep,
) -> BrokerCredential:
    """Ask the exchange whether the key works; 422 CREDENTIAL_REJECTED if it refuses it."""
    return service.verify_credential(
        context.database,
        key_provider,
        verifier,
        principal.user_id,
        credential_id,
        request_id=request_id(request),
    )
