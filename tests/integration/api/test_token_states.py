"""The per-process cache of account states behind access-token checks: another process's sign-out
is seen within the cache time; an unknown account is refused, cached or not."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import httpx

from tekoa.auth.sessions import TokenStates
from tekoa.errors import AuthenticationFailed
from tests.integration.api.auth_support import register
from tests.integration.api.auth_support import settings as settings  # the fixture, cheap argon2


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_another_process_sees_a_sign_out_within_the_cache_time(api: httpx.Client, settings: Any) -> None:
    from tekoa.db.connection import PooledDatabase

    body = register(api)
    user_id = body["user"]["id"]
    clock = _Clock()
    # Another API process: its own cache, fed by the same database.
    states = TokenStates(ttl_s=1.0, clock=clock)
    database = PooledDatabase(settings.database_url, max_size=1)
    try:
        states.check(database, _uuid(user_id), generation=0)
        api.post("/v1/auth/logout", json={"refresh_token": body["tokens"]["refresh_token"]})

        clock.now = 0.5
        states.check(database, _uuid(user_id), generation=0)  # still trusted from its cache
        clock.now = 1.0
        refused = _refused(lambda: states.check(database, _uuid(user_id), generation=0))
        states.check(database, _uuid(user_id), generation=1)  # a token from a new sign-in
    finally:
        database.close()

    assert refused


def test_an_unknown_account_is_refused_even_when_cached(settings: Any) -> None:
    from tekoa.db.connection import PooledDatabase

    database = PooledDatabase(settings.database_url, max_size=1)
    states = TokenStates(ttl_s=60)
    try:
        unknown = uuid4()
        assert _refused(lambda: states.check(database, unknown, generation=0))
        assert _refused(lambda: states.check(database, unknown, generation=0))
    finally:
        database.close()


def _uuid(value: str) -> UUID:
    return UUID(value)


def _refused(check: Any) -> bool:
    try:
        check()
    except AuthenticationFailed:
        return True
    return False
