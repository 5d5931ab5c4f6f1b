"""Sign-up, sign-in, token refresh and revocation, bearer authentication, API tokens.

Each method takes the `Database` and opens its own short transactions: `service_transaction`
while the caller is not yet known (sign-in look-ups), `tenant_transaction` for work on behalf
of a known user. Slow password hashing happens outside any transaction, after the attempt was
counted (`tekoa.db.login_attempts`), so concurrent attempts cannot slip past a limit.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import psycopg

from tekoa.auth.jwt_tokens import (
    AccessClaims,
    IssuerRouter,
    JwksTokens,
    PlatformTokens,
    SigningKeyCache,
    VerifiedTokens,
)
from tekoa.auth.models import (
    SESSION_SCOPES,
    ApiToken,
    ApiTokenScope,
    CreatedApiToken,
    Principal,
    TokenPair,
    User,
    scopes_of,
)
from tekoa.auth.passwords import PasswordHashing, password_problem
from tekoa.auth.sessions import TokenStates
from tekoa.auth.throttle import ThrottlePolicy, retry_after_s
from tekoa.auth.tokens import (
    api_token_prefix,
    hash_matches,
    looks_like_api_token,
    new_api_token,
    new_refresh_token,
    token_hash,
)
from tekoa.db import login_attempts, tokens, users
from tekoa.db.audit import record_audit
from tekoa.db.connection import BeforeCommit, Database, service_transaction, tenant_transaction
from tekoa.errors import (
    AuthenticationFailed,
    InvalidCredentials,
    NotFound,
    TooManyAttempts,
    ValidationFailed,
)
from tekoa.observability import logger
from tekoa.settings import Settings

Connection = psycopg.Connection[Any]


@dataclass(frozen=True)
class ClientInfo:
    """Where a sign-in came from (recorded with refresh tokens, used for throttling)."""

    address: str = "unknown"
    user_agent: str | None = None


def normalise_email(email: str) -> str:
    """The form emails are stored and compared in: trimmed, lower case."""
    return email.strip().lower()


class Accounts:
    """Accounts and credentials of one deployment (one instance per process)."""

    def __init__(
        self,
        *,
        hashing: PasswordHashing,
        signing_key: Callable[[], bytes],
        issuer: str,
        audience: str,
        access_ttl_s: int,
        refresh_ttl: timedelta,
        throttle: ThrottlePolicy,
        token_states: TokenStates,
        external: JwksTokens | None = None,
    ) -> None:
        self.hashing = hashing
        self.throttle = throttle
        self.refresh_ttl = refresh_ttl
        self.token_states = token_states
        self._signing_key = signing_key
        self._issuer = issuer
        self._audience = audience
        self._access_ttl_s = access_ttl_s
        self._external = external
        self._platform_tokens: PlatformTokens | None = None
        self._verified = VerifiedTokens(
            lambda token: IssuerRouter(self.platform_tokens(), self._external).verify(token)
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Accounts:
        """The production wiring: the signing key from Secrets Manager, fetched on first use."""
        from tekoa.aws.secrets import secret_string

        key_cache = SigningKeyCache(lambda: secret_string(settings, settings.names.jwt_secret))
        external = None
        if settings.auth_jwks_url and settings.auth_issuer and settings.auth_audience:
            external = JwksTokens(settings.auth_jwks_url, settings.auth_issuer, settings.auth_audience)
        return cls(
            hashing=PasswordHashing(
                time_cost=settings.password_hash_time_cost,
                memory_kib=settings.password_hash_memory_kib,
                parallelism=settings.password_hash_parallelism,
            ),
            signing_key=key_cache.key,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            access_ttl_s=settings.access_token_ttl_s,
            refresh_ttl=timedelta(seconds=settings.refresh_token_ttl_s),
            throttle=ThrottlePolicy(
                window=timedelta(seconds=settings.login_failure_window_s),
                max_per_account=settings.login_max_failures_per_account,
                max_per_address=settings.login_max_failures_per_address,
                signup_window=timedelta(seconds=settings.signup_window_s),
                max_signups_per_address=settings.signup_max_per_address,
            ),
            token_states=TokenStates(ttl_s=settings.token_state_cache_s),
            external=external,
        )

    def derived_key(self, purpose: str) -> bytes:
        """A key for `purpose` (e.g. signing pagination cursors) derived from the signing key,
        so every instance of the deployment agrees on it without another secret."""
        return hmac.new(self._signing_key(), f"tekoa/{purpose}".encode(), hashlib.sha256).digest()

    def platform_tokens(self) -> PlatformTokens:
        """The issuer/verifier of the platform's own access tokens (fetches the key once)."""
        if self._platform_tokens is None:
            self._platform_tokens = PlatformTokens(
                self._signing_key(), self._issuer, self._audience, self._access_ttl_s
            )
        return self._platform_tokens

    # --- sign-up and sign-in -------------------------------------------------------------

    def register(
        self,
        database: Database,
        *,
        email: str,
        password: str,
        display_name: str | None,
        client: ClientInfo,
        request_id: str | None = None,
    ) -> tuple[User, TokenPair]:
        """Create an account and sign it in. EmailTaken when the email is registered;
        TooManyAttempts when the address signed up too often recently."""
        email = normalise_email(email)
        problem = password_problem(password, email)
        if problem:
            raise ValidationFailed(problem, field="password")
        with database.connection() as conn:
            self._count_signup(conn, client)
            password_hash = self.hashing.hash(password)
            refresh = new_refresh_token()
            with service_transaction(conn):
                user = users.insert_user(conn, email, password_hash, display_name)
                record_audit(
                    conn,
                    user_id=user.id,
                    action="user.registered",
                    target_type="user",
                    target_id=str(user.id),
                    request_id=request_id,
                )
                self._store_refresh(conn, user.id, uuid4(), None, refresh, client)
        logger.info("user registered", extra={"user_id": str(user.id)})
        return user, self._pair(user.id, refresh, generation=0)

    def _count_signup(self, conn: Connection, client: ClientInfo) -> None:
        now = datetime.now(UTC)
        with service_transaction(conn):
            login_attempts.lock_signup_counter(conn, client.address)
            blocking = login_attempts.nth_newest_signup(
                conn, client.address, now - self.throttle.signup_window, self.throttle.max_signups_per_address
            )
            if blocking is None:
                login_attempts.record_signup(conn, client.address)
        wait = retry_after_s(blocking, self.throttle.signup_window, now)
        if wait is not None:
            logger.warning("sign-up throttled")
            raise TooManyAttempts("too many sign-ups from this address; try again later", retry_after_s=wait)

    def login(
        self,
        database: Database,
        *,
        email: str,
        password: str,
        client: ClientInfo,
        request_id: str | None = None,
    ) -> TokenPair:
        """Tokens for the right password; InvalidCredentials (same for an unknown email) or
        TooManyAttempts when the account or address failed too often recently.

        The attempt is counted as a failure before the password is checked (and forgotten on
        success), under a lock per account and address: of any number of concurrent attempts,
        only as many as the limit allows reach the password check.
        """
        email = normalise_email(email)
        now = datetime.now(UTC)
        since = now - self.throttle.window
        credentials = None
        with database.connection() as conn:
            with service_transaction(conn):
                login_attempts.lock_login_counters(conn, email, client.address)
                account_block = login_attempts.nth_newest_failure_for_email(
                    conn, email, since, self.throttle.max_per_account
                )
                address_block = login_attempts.nth_newest_failure_for_address(
                    conn, client.address, since, self.throttle.max_per_address
                )
                if account_block is None and address_block is None:
                    login_attempts.record_failed_login(conn, email, client.address)
                    credentials = users.find_credentials_by_email(conn, email)
            waits = [
                wait
                for wait in (
                    retry_after_s(account_block, self.throttle.window, now),
                    retry_after_s(address_block, self.throttle.window, now),
                )
                if wait is not None
            ]
            if waits:
                logger.warning("sign-in throttled", extra={"account_limited": account_block is not None})
                raise TooManyAttempts("too many failed sign-ins; try again later", retry_after_s=max(waits))

            usable = credentials if credentials is not None and not credentials.disabled else None
            if not self.hashing.verify(usable.password_hash if usable else None, password):
                if credentials is not None:
                    with tenant_transaction(conn, credentials.user.id):
                        record_audit(
                            conn,
                            user_id=credentials.user.id,
                            action="auth.login_failed",
                            detail={"client_address": client.address},
                            request_id=request_id,
                        )
                logger.info("sign-in failed", extra={"known_account": credentials is not None})
                raise InvalidCredentials()
            assert usable is not None
            user_id = usable.user.id
            rehashed = (
                self.hashing.hash(password) if self.hashing.needs_rehash(usable.password_hash) else None
            )
            refresh = new_refresh_token()
            with tenant_transaction(conn, user_id):
                if rehashed is not None:
                    users.update_password_hash(conn, user_id, rehashed)
                self._store_refresh(conn, user_id, uuid4(), None, refresh, client)
                record_audit(
                    conn,
                    user_id=user_id,
                    action="auth.login_succeeded",
                    detail={"client_address": client.address},
                    request_id=request_id,
                )
            with service_transaction(conn):
                login_attempts.clear_failed_logins(conn, email)
        return self._pair(user_id, refresh, generation=usable.token_generation)

    def refresh(
        self, database: Database, *, refresh_token: str, client: ClientInfo, request_id: str | None = None
    ) -> TokenPair:
        """Swap a refresh token for a new pair (rotation). A token presented a second time
        revokes its whole family: whoever holds a copy is locked out along with the owner."""
        now = datetime.now(UTC)
        replacement = new_refresh_token()
        outcome = "invalid"
        generation: int | None = None
        with database.connection() as conn, service_transaction(conn):
            record = tokens.lock_refresh_token(conn, token_hash(refresh_token))
            if record is None or record.expires_at <= now:
                outcome = "invalid"
            elif record.used_at is not None:
                tokens.revoke_refresh_family(conn, record.family_id)
                record_audit(
                    conn,
                    user_id=record.user_id,
                    action="auth.refresh_reused",
                    target_type="refresh_family",
                    target_id=str(record.family_id),
                    detail={"client_address": client.address},
                    request_id=request_id,
                )
                outcome = "reused"
            elif (
                record.revoked_at is not None
                or (generation := users.active_token_generation(conn, record.user_id)) is None
            ):
                outcome = "invalid"
            else:
                tokens.mark_refresh_token_used(conn, record.id)
                self._store_refresh(conn, record.user_id, record.family_id, record.id, replacement, client)
                outcome = "rotated"
        if outcome == "reused":
            assert record is not None
            logger.warning("refresh token reused: family revoked", extra={"user_id": str(record.user_id)})
            raise AuthenticationFailed("refresh token was already used; sign in again")
        if outcome != "rotated" or record is None or generation is None:
            raise AuthenticationFailed("invalid or expired refresh token")
        return self._pair(record.user_id, replacement, generation=generation)

    def logout(self, database: Database, *, refresh_token: str, request_id: str | None = None) -> None:
        """Sign out: revoke the refresh token's family (every token of that sign-in) and end
        every access token of the account issued so far. Unknown token: no-op."""
        with database.connection() as conn, service_transaction(conn):
            record = tokens.lock_refresh_token(conn, token_hash(refresh_token))
            if record is not None:
                tokens.revoke_refresh_family(conn, record.family_id)
                users.end_token_generation(conn, record.user_id)
                record_audit(
                    conn,
                    user_id=record.user_id,
                    action="auth.logged_out",
                    target_type="refresh_family",
                    target_id=str(record.family_id),
                    request_id=request_id,
                )
        if record is not None:
            self.token_states.forget(record.user_id)

    # --- authenticating requests ---------------------------------------------------------

    def authenticate(self, database: Database, bearer: str) -> Principal:
        """The caller behind a bearer credential: an access token of an account that has not
        signed out since it was issued (`TokenStates`), or a personal API token."""
        if looks_like_api_token(bearer):
            with database.connection() as conn:
                return self._authenticate_api_token(conn, bearer)
        claims = self._verify(bearer)
        self.token_states.check(database, claims.user_id, claims.generation)
        return Principal(
            user_id=claims.user_id, scopes=claims.scopes, via="session", generation=claims.generation
        )

    def authenticate_from_cache(self, bearer: str) -> Principal | None:
        """`authenticate` when it needs no I/O (an access token whose account state is cached);
        None when `authenticate` must run. Raises for a token that is not valid."""
        if looks_like_api_token(bearer):
            return None
        claims = self._verify(bearer)
        state = self.token_states.cached(claims.user_id)
        if state is None:
            return None
        state.admit(claims.generation)
        return Principal(
            user_id=claims.user_id, scopes=claims.scopes, via="session", generation=claims.generation
        )

    def _verify(self, bearer: str) -> AccessClaims:
        return self._verified.verify(bearer)

    def _authenticate_api_token(self, conn: Connection, bearer: str) -> Principal:
        prefix = api_token_prefix(bearer)
        if prefix is None:
            raise AuthenticationFailed("malformed API token")
        now = datetime.now(UTC)
        with service_transaction(conn):
            credential = tokens.find_api_token_credential(conn, prefix)
            valid = (
                credential is not None
                and hash_matches(bearer, credential.token_hash)
                and credential.revoked_at is None
                and (credential.expires_at is None or credential.expires_at > now)
                and not credential.user_disabled
            )
            if valid:
                assert credential is not None
                tokens.touch_api_token(conn, credential.id)
        if not valid or credential is None:
            raise AuthenticationFailed("invalid, revoked or expired API token")
        return Principal(
            user_id=credential.user_id,
            scopes=scopes_of(credential.scope),
            via="api_token",
            token_id=credential.id,
        )

    def me(self, database: Database, principal: Principal) -> User:
        """The caller's account (as read by the last token check, at most `ttl_s` ago)."""
        state = self.token_states.check(database, principal.user_id, None)
        assert state.user is not None  # admitted
        return state.user

    def me_from_cache(self, principal: Principal) -> User | None:
        """`me` when it needs no I/O; None when `me` must run."""
        state = self.token_states.cached(principal.user_id)
        return state.user if state is not None and state.active else None

    # --- personal API tokens -------------------------------------------------------------

    def create_api_token(
        self,
        database: Database,
        principal: Principal,
        *,
        name: str,
        scope: ApiTokenScope,
        expires_at: datetime | None,
        request_id: str | None = None,
        before_commit: BeforeCommit[CreatedApiToken] | None = None,
    ) -> CreatedApiToken:
        """A new token; its secret is in the result and nowhere else, ever again."""
        if expires_at is not None and expires_at <= datetime.now(UTC):
            raise ValidationFailed("expires_at must be in the future", field="expires_at")
        made = new_api_token()
        with database.connection() as conn, tenant_transaction(conn, principal.user_id):
            token = tokens.insert_api_token(
                conn,
                user_id=principal.user_id,
                name=name,
                prefix=made.prefix,
                token_hash=made.hash,
                scope=scope,
                expires_at=expires_at,
            )
            record_audit(
                conn,
                user_id=principal.user_id,
                action="api_token.created",
                target_type="api_token",
                target_id=str(token.id),
                detail={"name": name, "scope": scope, "prefix": made.prefix},
                request_id=request_id,
            )
            created = CreatedApiToken(token=token, secret=made.secret)
            if before_commit is not None:
                before_commit(conn, created)
        return created

    def list_api_tokens(
        self, database: Database, principal: Principal, *, limit: int, after: tuple[datetime, UUID] | None
    ) -> list[ApiToken]:
        """Up to `limit` of the caller's tokens, newest first, after a (created_at, id) position."""
        with database.connection() as conn, tenant_transaction(conn, principal.user_id):
            return tokens.list_api_tokens(conn, principal.user_id, limit=limit, after=after)

    def revoke_api_token(
        self, database: Database, principal: Principal, token_id: UUID, request_id: str | None = None
    ) -> ApiToken:
        """Revoke one of the caller's tokens; NotFound for anyone else's (or no such token)."""
        with database.connection() as conn, tenant_transaction(conn, principal.user_id):
            token = tokens.revoke_api_token(conn, principal.user_id, token_id)
            if token is not None:
                record_audit(
                    conn,
                    user_id=principal.user_id,
                    action="api_token.revoked",
                    target_type="api_token",
                    target_id=str(token_id),
                    request_id=request_id,
                )
        if token is None:
            raise NotFound("api token not found")
        return token

    # --- helpers ---------------------------------------------------------------------------

    def _pair(self, user_id: UUID, refresh: str, *, generation: int) -> TokenPair:
        access = self.platform_tokens().issue(user_id, SESSION_SCOPES, generation=generation)
        return TokenPair(access_token=access.token, refresh_token=refresh, expires_in=access.expires_in)

    def _store_refresh(
        self,
        conn: Connection,
        user_id: UUID,
        family_id: UUID,
        parent_id: UUID | None,
        refresh: str,
        client: ClientInfo,
    ) -> None:
        tokens.insert_refresh_token(
            conn,
            user_id=user_id,
            family_id=family_id,
            parent_id=parent_id,
            token_hash=token_hash(refresh),
            expires_at=datetime.now(UTC) + self.refresh_ttl,
            user_agent=client.user_agent[:512] if client.user_agent else None,
            client_address=client.address[:64],
        )
