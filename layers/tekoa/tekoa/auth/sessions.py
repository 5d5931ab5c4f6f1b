"""Is an access token still good? The account's token generation, checked on every request.

An access token is a signed statement valid for its lifetime; without a check it outlives
sign-out and a disabled (or deleted) account. Each account has a `token_generation`: signing
out raises it, and a token issued under an older generation is refused, as is any token of an
account that is disabled or gone. The state is cached per process for `ttl_s` so a burst of
requests costs one indexed read: the process that handled a sign-out forgets the user at
once; every other process (another API worker, another Lambda instance) notices within `ttl_s`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from tekoa.db import users
from tekoa.db.connection import Database, tenant_transaction
from tekoa.errors import AuthenticationFailed

_MAX_ENTRIES = 100_000


@dataclass(frozen=True, slots=True)
class _State:
    generation: int | None  # None: the account does not exist
    active: bool
    fetched_at: float


class TokenStates:
    """Per-user token generation and account state, read through a short-lived cache."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._states: dict[UUID, _State] = {}
        self._lock = threading.Lock()

    def check(self, database: Database, user_id: UUID, generation: int | None) -> None:
        """Return if a token of `user_id` issued under `generation` (None: any) is still good;
        AuthenticationFailed if the account signed out since, is disabled, or is gone."""
        state = self._state(database, user_id)
        if state.generation is None or not state.active:
            raise AuthenticationFailed("the account no longer exists or is disabled")
        if generation is not None and generation != state.generation:
            raise AuthenticationFailed("this token was signed out; sign in again")

    def forget(self, user_id: UUID) -> None:
        """Drop what is cached about `user_id` (after this process changed it)."""
        with self._lock:
            self._states.pop(user_id, None)

    def _state(self, database: Database, user_id: UUID) -> _State:
        now = self._clock()
        with self._lock:
            cached = self._states.get(user_id)
        if cached is not None and now - cached.fetched_at < self.ttl_s:
            return cached
        with database.connection() as conn, tenant_transaction(conn, user_id):
            row = users.token_state(conn, user_id)
        state = _State(row[0], row[1], now) if row is not None else _State(None, False, now)
        with self._lock:
            if len(self._states) >= _MAX_ENTRIES:
                self._states.clear()  # bounded memory; a cold cache only costs reads
            self._states[user_id] = state
        return state
