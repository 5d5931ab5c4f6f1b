"""Is an access token still good? The account's token generation, checked on every request.

An access token is a signed statement valid for its lifetime; without a check it outlives
sign-out and a disabled (or deleted) account. Each account has a `token_generation`: signing
out raises it, and a token issued under an older generation is refused, as is any token of an
account that is disabled or gone. The account's state (its generation, whether it is active,
and the account itself, which `/v1/me` answers) is cached per process for `ttl_s`, so a burst
of requests costs one indexed read: the process that handled a sign-out forgets the account
at once; every other process (another API worker, another Lambda instance) notices within
`ttl_s`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from tekoa.auth.models import User
from tekoa.db import users
from tekoa.db.connection import Database, tenant_transaction
from tekoa.errors import AuthenticationFailed

_MAX_ENTRIES = 100_000


@dataclass(frozen=True, slots=True)
class AccountState:
    """What a token check needs to know of an account, as read at `fetched_at`."""

    user: User | None  # None: the account does not exist
    generation: int
    active: bool
    fetched_at: float

    def admit(self, generation: int | None) -> None:
        """Return if a token issued under `generation` (None: any) is good for this account;
        AuthenticationFailed if the account signed out since, is disabled, or is gone."""
        if self.user is None or not self.active:
            raise AuthenticationFailed("the account no longer exists or is disabled")
        if generation is not None and generation != self.generation:
            raise AuthenticationFailed("this token was signed out; sign in again")


class TokenStates:
    """Per-account token generation and state, read through a short-lived cache."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._states: dict[UUID, AccountState] = {}
        self._lock = threading.Lock()

    def cached(self, user_id: UUID) -> AccountState | None:
        """The account's state if read less than `ttl_s` ago (no I/O), else None."""
        state = self._states.get(user_id)
        if state is not None and self._clock() - state.fetched_at < self.ttl_s:
            return state
        return None

    def check(self, database: Database, user_id: UUID, generation: int | None) -> AccountState:
        """The account's state, when a token of it issued under `generation` is still good
        (read from the database unless cached); AuthenticationFailed otherwise."""
        state = self.cached(user_id) or self._load(database, user_id)
        state.admit(generation)
        return state

    def forget(self, user_id: UUID) -> None:
        """Drop what is cached about `user_id` (after this process changed it)."""
        with self._lock:
            self._states.pop(user_id, None)

    def _load(self, database: Database, user_id: UUID) -> AccountState:
        now = self._clock()
        with database.connection() as conn, tenant_transaction(conn, user_id):
            row = users.token_state(conn, user_id)
        state = AccountState(*row, now) if row is not None else AccountState(None, 0, False, now)
        with self._lock:
            if len(self._states) >= _MAX_ENTRIES:
                self._states.clear()  # bounded memory; a cold cache only costs reads
            self._states[user_id] = state
        return state
