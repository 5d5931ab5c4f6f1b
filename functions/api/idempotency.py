"""Idempotent creation for POSTs that create things (`Idempotency-Key`, kept 24 h per user).

    @router.post("/v1/things", status_code=201, response_model=ThingOut)
    def create_thing(body: ThingIn, principal: TradingUser, context: Context, request: Request,
                     idempotency_key: IdempotencyKey = None) -> JSONResponse:
        return idempotent(
            context, principal, idempotency_key, request, body,
            create=lambda before_commit: service.create_thing(..., before_commit=before_commit),
            respond=lambda thing: Created(201, thing, {"Location": f"/v1/things/{thing.id}"}),
        )

Without a key, `create(None)` just runs. With a key: same key + same body → the stored
status, body and headers plus `Idempotent-Replayed: true`; same key + another body or path →
422 IDEMPOTENCY_KEY_REUSED; a concurrent request with the key still running → 409
IDEMPOTENCY_KEY_IN_PROGRESS. `create` must call `before_commit(conn, result)` inside the
transaction that writes the resource: the response is stored in that same transaction (see
`tekoa.idempotency`). If `create` raises, the key is released so a retry runs again.
`Created.replay_body` is what a replay answers when it must differ from the first response
(a secret shown once is never stored).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from fastapi import Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from functions.api.context import ApiContext
from tekoa import idempotency
from tekoa.auth.models import Principal
from tekoa.db.connection import BeforeCommit

T = TypeVar("T")

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Makes a create safe to retry: the same key and body replay the first response (24 h).",
    ),
]

_UNSET: Any = object()


@dataclass(frozen=True)
class Created:
    """A create's answer: status, body (anything `jsonable_encoder` takes) and headers, and the
    body a replay answers instead (`replay_body`; by default the same body)."""

    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)
    replay_body: Any = _UNSET

    def response(self) -> JSONResponse:
        return JSONResponse(jsonable_encoder(self.body), status_code=self.status, headers=dict(self.headers))

    def stored(self) -> idempotency.StoredResponse:
        body = self.body if self.replay_body is _UNSET else self.replay_body
        # Through JSON text, as a replay will read it back.
        return idempotency.StoredResponse(
            self.status, json.loads(json.dumps(jsonable_encoder(body))), dict(self.headers)
        )


def idempotent(
    context: ApiContext,
    principal: Principal,
    key: str | None,
    request: Request,
    body: BaseModel | dict[str, Any],
    *,
    create: Callable[[BeforeCommit[T] | None], T],
    respond: Callable[[T], Created],
) -> JSONResponse:
    """Run `create` once per (user, Idempotency-Key); see the module docstring."""
    if key is None:
        return respond(create(None)).response()
    payload = body.model_dump(mode="json") if isinstance(body, BaseModel) else jsonable_encoder(body)
    method, path = request.method, request.url.path
    fingerprint = idempotency.request_fingerprint(method, path, payload)
    with context.database.connection() as conn:
        claim = idempotency.begin(
            conn, user_id=principal.user_id, key=key, method=method, path=path, fingerprint=fingerprint
        )
    if isinstance(claim, idempotency.StoredResponse):
        return JSONResponse(
            claim.body, status_code=claim.status, headers={**claim.headers, "Idempotent-Replayed": "true"}
        )

    def store_response(conn: Any, result: T) -> None:
        idempotency.record_response(conn, claim, respond(result).stored())

    try:
        result = create(store_response)
    except BaseException:
        with context.database.connection() as conn:
            idempotency.release(conn, claim)
        raise
    return respond(result).response()
