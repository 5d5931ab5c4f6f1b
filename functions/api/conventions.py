"""Conventions every endpoint follows: cursor pagination, idempotent creation, lost-update checks.

Pagination — keyset, opaque cursors:

    @router.get("/v1/things", response_model=Page[ThingOut])
    def list_things(principal: CurrentUser, page: PageParams, context: Context) -> Page[ThingOut]:
        after = page.after("created_at", "id")          # None on the first page; 422 if the
                                                         # cursor lacks those keys
        rows = service.list(..., limit=page.limit + 1, after=after)   # fetch ONE extra row
        return Page.build(rows, page.limit, lambda r: {"created_at": r.created_at.isoformat(),
                                                       "id": str(r.id)})

  `limit` is 1..200 (default 50). The cursor is base64url JSON plus an HMAC (key derived from
  the JWT signing secret, so every instance agrees): a forged, tampered or garbage cursor is
  422 VALIDATION_ERROR with field "cursor". `encode_cursor`/`decode_cursor` work once a
  request resolved `PageParams` (it installs the key); values in the payload must be JSON.
  Parse typed values back yourself (e.g. `datetime.fromisoformat`, `UUID(...)`) inside a
  `try` that raises `invalid_cursor()`.

Idempotent creation (POSTs that create things):

    @router.post("/v1/things", status_code=201, response_model=ThingOut)
    def create_thing(body: ThingIn, principal: TradingUser, context: Context, request: Request,
                     idempotency_key: IdempotencyKey = None) -> JSONResponse:
        return idempotent(context, principal, idempotency_key, request.method, request.url.path,
                          body, lambda: (201, service.create(...)))

  `create` returns `(status, content)` or `(status, content, headers)`; content is anything
  `jsonable_encoder` takes (a pydantic model is typical). Without a key it just runs. With a
  key: same key + same body → the stored status, body and headers plus
  `Idempotent-Replayed: true`; same key + another body or path → 422
  IDEMPOTENCY_KEY_REUSED; a concurrent request with the key still running → 409
  IDEMPOTENCY_KEY_IN_PROGRESS. Keys are per user and kept 24 h. If `create` raises, the key
  is released so a retry runs again. `create` must open its own connection: `idempotent`
  holds none while it runs (LambdaDatabase has one connection and its lock is not re-entrant —
  never nest `context.database.connection()` blocks).

Lost-update prevention (updates of versioned resources):

    @router.patch("/v1/things/{id}")
    def update(..., if_match: IfMatch = None) -> JSONResponse:
        thing = service.get(...)
        check_version(if_match, body.version, thing.version)   # 412 / 428
        updated = service.update(..., expected_version=thing.version)  # UPDATE ... WHERE version = %s
        return JSONResponse(..., headers={"ETag": etag(updated.version)})

  Single-resource responses carry `ETag: etag(version)`. `check_version` is the early check;
  the UPDATE must still compare the version to be safe against a concurrent writer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Generic, Self, TypeVar

from fastapi import Depends, Header, Query
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from functions.api.deps import AppContext, Context
from tekoa import idempotency
from tekoa.auth.models import Principal
from tekoa.auth.service import accounts_for
from tekoa.errors import PreconditionFailed, PreconditionRequired, ValidationFailed

T = TypeVar("T")

MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50
_MAC_BYTES = 16

# --- pagination ------------------------------------------------------------------------------


class Page(BaseModel, Generic[T]):
    """One page of a list; pass `next_cursor` back as `cursor` for the next (null: last page)."""

    items: list[T]
    next_cursor: str | None = Field(None, description="Opaque; absent on the last page.")

    @classmethod
    def build(cls, rows: Sequence[T], limit: int, position: Callable[[T], dict[str, Any]]) -> Self:
        """A page from up to `limit + 1` rows: the extra row only tells that more exist."""
        items = list(rows[:limit])
        more = len(rows) > limit and bool(items)
        return cls(items=items, next_cursor=encode_cursor(position(items[-1])) if more else None)


_cursor_key: bytes | None = None


def install_cursor_key(key: bytes) -> None:
    """Set the process's cursor signing key (done by `PageParams`)."""
    global _cursor_key
    _cursor_key = key


def _key() -> bytes:
    if _cursor_key is None:
        raise RuntimeError("cursor key not installed: the route must depend on PageParams")
    return _cursor_key


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def invalid_cursor() -> ValidationFailed:
    """The error for a cursor that is not one this API issued for this list."""
    return ValidationFailed("cursor is invalid; use next_cursor from a previous page", field="cursor")


def encode_cursor(payload: dict[str, Any]) -> str:
    """An opaque, tamper-evident cursor carrying `payload` (JSON-serialisable)."""
    data = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    mac = hmac.new(_key(), data, hashlib.sha256).digest()[:_MAC_BYTES]
    return f"{_b64encode(data)}.{_b64encode(mac)}"


def decode_cursor(cursor: str) -> dict[str, Any]:
    """The payload of a cursor made by `encode_cursor`; 422 (field "cursor") for anything else."""
    try:
        data_part, mac_part = cursor.split(".")
        data, mac = _b64decode(data_part), _b64decode(mac_part)
    except (ValueError, binascii.Error) as exc:
        raise invalid_cursor() from exc
    expected = hmac.new(_key(), data, hashlib.sha256).digest()[:_MAC_BYTES]
    if not hmac.compare_digest(mac, expected):
        raise invalid_cursor()
    try:
        payload = json.loads(data)
    except ValueError as exc:
        raise invalid_cursor() from exc
    if not isinstance(payload, dict):
        raise invalid_cursor()
    return payload


@dataclass(frozen=True)
class PageRequest:
    """A validated `limit` and the decoded `cursor` payload (None on the first page)."""

    limit: int
    cursor: dict[str, Any] | None

    def after(self, *keys: str) -> tuple[Any, ...] | None:
        """The cursor's values for `keys`, in order; None on the first page; 422 if any is missing."""
        if self.cursor is None:
            return None
        if any(key not in self.cursor for key in keys):
            raise invalid_cursor()
        return tuple(self.cursor[key] for key in keys)


def page_params(
    context: Context,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Items per page.")] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[
        str | None, Query(min_length=1, max_length=2048, description="`next_cursor` of the previous page.")
    ] = None,
) -> PageRequest:
    """Query parameters `limit` and `cursor` of every list endpoint."""
    install_cursor_key(accounts_for(context.settings).derived_key("cursor"))
    return PageRequest(limit=limit, cursor=decode_cursor(cursor) if cursor is not None else None)


PageParams = Annotated[PageRequest, Depends(page_params)]

# --- idempotency -----------------------------------------------------------------------------

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

CreateResult = tuple[int, Any] | tuple[int, Any, dict[str, str]]


def idempotent(
    context: AppContext,
    principal: Principal,
    key: str | None,
    method: str,
    path: str,
    body: BaseModel | dict[str, Any],
    create: Callable[[], CreateResult],
) -> JSONResponse:
    """Run `create` once per (user, Idempotency-Key); see the module docstring."""
    if key is None:
        return _response(create())
    payload = body.model_dump(mode="json") if isinstance(body, BaseModel) else jsonable_encoder(body)
    fingerprint = idempotency.request_fingerprint(method, path, payload)
    with context.database.connection() as conn:
        stored = idempotency.begin(
            conn, user_id=principal.user_id, key=key, method=method, path=path, fingerprint=fingerprint
        )
    if stored is not None:
        return JSONResponse(
            stored.body, status_code=stored.status, headers={**stored.headers, "Idempotent-Replayed": "true"}
        )
    try:
        result = create()
    except BaseException:
        with context.database.connection() as conn:
            idempotency.release(conn, user_id=principal.user_id, key=key)
        raise
    response = _response(result)
    stored = idempotency.StoredResponse(
        response.status_code, json.loads(bytes(response.body)), _headers_of(result)
    )
    with context.database.connection() as conn:
        idempotency.complete(conn, user_id=principal.user_id, key=key, response=stored)
    return response


def _headers_of(result: CreateResult) -> dict[str, str]:
    return dict(result[2]) if len(result) == 3 else {}


def _response(result: CreateResult) -> JSONResponse:
    return JSONResponse(
        jsonable_encoder(result[1]), status_code=result[0], headers=_headers_of(result) or None
    )


# --- lost updates ----------------------------------------------------------------------------

IfMatch = Annotated[
    str | None,
    Header(alias="If-Match", max_length=512, description="The ETag of the version being updated."),
]


def etag(version: int) -> str:
    """The strong ETag of a resource version (`"<version>"`)."""
    return f'"{version}"'


def _etag_versions(if_match: str) -> set[int] | None:
    """Versions an If-Match value names; None for `*` (any version)."""
    versions: set[int] = set()
    for raw in if_match.split(","):
        tag = raw.strip()
        if tag == "*":
            return None
        tag = tag.removeprefix("W/")
        if len(tag) >= 2 and tag[0] == tag[-1] == '"' and tag[1:-1].isdigit():
            versions.add(int(tag[1:-1]))
    return versions


def check_version(if_match: str | None, body_version: int | None, current: int) -> None:
    """Refuse an update made against a stale version.

    412 PRECONDITION_FAILED when `If-Match` or the body's version is not `current`;
    428 PRECONDITION_REQUIRED when neither was sent.
    """
    if if_match is None and body_version is None:
        raise PreconditionRequired("send If-Match with the resource's ETag, or its version in the body")
    if if_match is not None:
        versions = _etag_versions(if_match)
        if versions is not None and current not in versions:
            raise PreconditionFailed(
                "the resource changed since you read it (ETag mismatch)", field="If-Match"
            )
    if body_version is not None and body_version != current:
        raise PreconditionFailed("the resource changed since you read it (version mismatch)", field="version")


# --- documented error responses --------------------------------------------------------------


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. VALIDATION_ERROR.")
    message: str
    field: str | None = None


class ErrorResponse(BaseModel):
    """The body of every error: `{"detail": {"code", "message", "field"}}`."""

    detail: ErrorDetail


_ERROR_DESCRIPTIONS = {
    400: "Bad request",
    401: "Missing or invalid credentials",
    403: "Not allowed for these credentials",
    404: "Not found (also another user's resource)",
    409: "Conflict",
    412: "The resource changed since it was read",
    422: "Invalid input",
    428: "If-Match or version required",
    429: "Too many requests; see Retry-After",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the error statuses a route can answer."""
    return {
        status: {"model": ErrorResponse, "description": _ERROR_DESCRIPTIONS.get(status, "Error")}
        for status in statuses
    }
