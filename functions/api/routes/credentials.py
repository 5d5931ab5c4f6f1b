"""/v1/broker-credentials: exchange API keys, stored envelope-encrypted.

The secrets are write-only: responses show an id, the exchange, your label and a hint (first
4 … last 4 characters of the API key), never a secret. Create, use (decryption) and delete
are written to the audit log. `POST /{id}/verify` asks the exchange whether the key works
(the simulated exchange accepts any key) and marks it verified, which live bots require.

Managing keys (create, delete, verify) needs a signed-in session: a script's API token, even
one with the trading scope, can read the hints but never add, remove or unlock a key.
"""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from functions.api.context import Context, request_id
from functions.api.errors import error_responses
from functions.api.idempotency import Created, IdempotencyKey, idempotent
from functions.api.pagination import Page, PageParams, after_created, created_position
from functions.api.security import CurrentUser, SessionUser
from tekoa.domain.resources import BrokerCredential
from tekoa.services import credentials as service
from tekoa.services.credentials import CredentialCreate

router = APIRouter(prefix="/v1/broker-credentials", tags=["broker-credentials"])

_NO_STORE = {"Cache-Control": "no-store"}


@router.post(
    "", status_code=201, response_model=BrokerCredential, responses=error_responses(401, 403, 409, 422)
)
def create_credential(
    body: CredentialCreate,
    request: Request,
    principal: SessionUser,
    context: Context,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Store an exchange API key, encrypted. Honours `Idempotency-Key` (secrets compared by digest)."""
    return idempotent(
        context,
        principal,
        idempotency_key,
        request,
        body.fingerprint(),
        create=lambda before_commit: service.create_credential(
            context.database,
            context.key_provider,
            principal.user_id,
            body,
            request_id=request_id(request),
            before_commit=before_commit,
        ),
        respond=lambda credential: Created(
            201, credential, {"Location": f"/v1/broker-credentials/{credential.id}", **_NO_STORE}
        ),
    )


@router.get("", response_model=Page[BrokerCredential], responses=error_responses(401, 422))
def list_credentials(principal: CurrentUser, page: PageParams, context: Context) -> Page[BrokerCredential]:
    """Your credentials (hints only), newest first."""
    rows = service.list_credentials(
        context.database, principal.user_id, after=after_created(page), limit=page.limit + 1
    )
    return Page[BrokerCredential].build(rows, page, created_position)


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
    credential_id: UUID, request: Request, principal: SessionUser, context: Context
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
    credential_id: UUID, request: Request, principal: SessionUser, context: Context
) -> BrokerCredential:
    """Ask the exchange whether the key works; 422 CREDENTIAL_REJECTED if it refuses it."""
    return service.verify_credential(
        context.database,
        context.key_provider,
        context.credential_verifier,
        principal.user_id,
        credential_id,
        request_id=request_id(request),
    )
