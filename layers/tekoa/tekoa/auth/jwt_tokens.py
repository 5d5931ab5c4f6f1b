"""Access tokens: short-lived JWTs the platform signs (HS256), or an external issuer's (JWKS).

Verification pins the algorithm, requires exp/iat/iss/aud/sub and checks iss and aud, so a
token with `alg: none`, another key, another issuer or audience, or a missing claim fails.
The platform's tokens also carry `gen`, the account's token generation when they were issued:
signing out raises it, which ends every older token at once (`tekoa.auth.sessions`).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

import jwt

from tekoa.errors import AuthenticationFailed

ACCESS_TOKEN_TYPE = "access"  # noqa: S105 - a claim value, not a secret
SIGNING_ALGORITHM = "HS256"
_REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub"]
_LEEWAY_S = 5


@dataclass(frozen=True)
class AccessClaims:
    """What a verified access token says about its bearer."""

    user_id: UUID
    scopes: frozenset[str]
    token_id: str | None
    expires_at: float
    """`exp`: seconds since the epoch."""
    generation: int | None = None
    """The account's token generation at issue (None: an external issuer's token)."""


class AccessTokenVerifier(Protocol):
    """Turns a bearer token into claims, or raises AuthenticationFailed."""

    def verify(self, token: str) -> AccessClaims: ...


@dataclass(frozen=True)
class IssuedAccessToken:
    token: str
    expires_in: int


class SigningKeyCache:
    """The HS256 key, fetched once per process (one Secrets Manager call per cold start)."""

    def __init__(self, fetch: Callable[[], str]) -> None:
        self._fetch = fetch
        self._key: bytes | None = None
        self._lock = threading.Lock()

    def key(self) -> bytes:
        with self._lock:
            if self._key is None:
                self._key = self._fetch().encode()
            return self._key


@dataclass(frozen=True)
class PlatformTokens:
    """Issues and verifies the platform's own access tokens."""

    key: bytes
    issuer: str
    audience: str
    ttl_s: int = 900

    def issue(
        self, user_id: UUID, scopes: Iterable[str], *, generation: int = 0, now: float | None = None
    ) -> IssuedAccessToken:
        """A signed access token for `user_id` with `scopes` under the account's token
        `generation`, valid for `ttl_s` seconds."""
        issued_at = int(time.time() if now is None else now)
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": str(user_id),
            "iat": issued_at,
            "exp": issued_at + self.ttl_s,
            "jti": secrets.token_hex(16),
            "typ": ACCESS_TOKEN_TYPE,
            "scope": " ".join(sorted(scopes)),
            "gen": generation,
        }
        return IssuedAccessToken(jwt.encode(claims, self.key, algorithm=SIGNING_ALGORITHM), self.ttl_s)

    def verify(self, token: str) -> AccessClaims:
        """Claims of a valid access token; AuthenticationFailed for anything else."""
        claims = _decode(token, self.key, [SIGNING_ALGORITHM], self.issuer, self.audience)
        if claims.get("typ") != ACCESS_TOKEN_TYPE:
            raise AuthenticationFailed("not an access token")
        generation = claims.get("gen")
        if not isinstance(generation, int) or isinstance(generation, bool):
            raise AuthenticationFailed("invalid token")
        return _claims(claims, generation=generation)


class JwksTokens:
    """Verifies an external issuer's tokens (e.g. Cognito) against its published JWKS.

    The token's `sub` must be the id of a Tekoa user (provision external identities as users
    with that id). Keys are cached by `PyJWKClient` and refetched when an unknown `kid` shows.
    """

    def __init__(
        self, jwks_url: str, issuer: str, audience: str, algorithms: tuple[str, ...] = ("RS256",)
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.algorithms = list(algorithms)
        self._client = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=3600, timeout=5)

    def verify(self, token: str) -> AccessClaims:
        try:
            signing_key = self._client.get_signing_key_from_jwt(token)
        except (jwt.PyJWKClientError, jwt.InvalidTokenError) as exc:
            raise AuthenticationFailed("token signing key is unknown") from exc
        claims = _decode(token, signing_key.key, self.algorithms, self.issuer, self.audience)
        # A user signed in with the external issuer holds a session: both scopes.
        return _claims(claims, scopes=frozenset({"read", "trading"}))


class IssuerRouter:
    """Accepts the platform's tokens and, when configured, an external issuer's.

    The unverified `iss` only picks the verifier; that verifier then checks everything.
    """

    def __init__(self, platform: PlatformTokens, external: JwksTokens | None) -> None:
        self.platform = platform
        self.external = external

    def verify(self, token: str) -> AccessClaims:
        if self.external is not None:
            try:
                issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
            except jwt.InvalidTokenError as exc:
                raise AuthenticationFailed("malformed token") from exc
            if issuer == self.external.issuer:
                return self.external.verify(token)
        return self.platform.verify(token)


def _decode(token: str, key: Any, algorithms: list[str], issuer: str, audience: str) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=algorithms,
            issuer=issuer,
            audience=audience,
            leeway=_LEEWAY_S,
            options={"require": _REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError as exc:
        raise AuthenticationFailed("token has expired") from exc
    except jwt.InvalidTokenError as exc:
        raise AuthenticationFailed("invalid token") from exc
    return claims


def _claims(
    claims: dict[str, Any], scopes: frozenset[str] | None = None, generation: int | None = None
) -> AccessClaims:
    try:
        user_id = UUID(str(claims["sub"]))
    except ValueError as exc:
        raise AuthenticationFailed("invalid token subject") from exc
    if scopes is None:
        scope = claims.get("scope")
        scopes = frozenset(scope.split()) if isinstance(scope, str) else frozenset()
    jti = claims.get("jti")
    return AccessClaims(
        user_id=user_id,
        scopes=scopes,
        token_id=jti if isinstance(jti, str) else None,
        expires_at=float(claims["exp"]),
        generation=generation,
    )


class VerifiedTokens:
    """Remembers tokens already verified, until they expire.

    Verifying a JWT (base64, JSON, HMAC, claim checks) costs more than the rest of a cached
    request; a client sends the same token with every request. The key is the whole token,
    signature included, so any change to it is a miss and is verified afresh; expiry is
    checked again on every hit, with the leeway verification allows.
    """

    def __init__(self, verify: Callable[[str], AccessClaims], max_entries: int = 10_000) -> None:
        self._verify = verify
        self._max_entries = max_entries
        self._claims: dict[str, AccessClaims] = {}

    def verify(self, token: str) -> AccessClaims:
        claims = self._claims.get(token)
        if claims is not None and claims.expires_at + _LEEWAY_S > time.time():
            return claims
        claims = self._verify(token)
        if len(self._claims) >= self._max_entries:
            self._claims.clear()  # bounded memory; a cold cache only costs verifications
        self._claims[token] = claims
        return claims
