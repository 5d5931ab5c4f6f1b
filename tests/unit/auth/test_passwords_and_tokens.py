"""argon2id hashing, the password policy, opaque token formats, JWT issue/verify, throttle maths."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tekoa.auth.jwt_tokens import PlatformTokens
from tekoa.auth.passwords import PasswordHashing, password_problem
from tekoa.auth.throttle import retry_after_s
from tekoa.auth.tokens import api_token_prefix, hash_matches, new_api_token, new_refresh_token, token_hash
from tekoa.errors import AuthenticationFailed

CHEAP = PasswordHashing(time_cost=1, memory_kib=1024, parallelism=1)


def test_a_password_verifies_only_against_its_own_hash() -> None:
    stored = CHEAP.hash("correct horse battery")

    assert stored.startswith("$argon2id$")
    assert CHEAP.verify(stored, "correct horse battery")
    assert not CHEAP.verify(stored, "correct horse battery!")


def test_an_unknown_account_never_verifies() -> None:
    assert not CHEAP.verify(None, "anything at all")


def test_a_hash_made_with_other_parameters_needs_rehash() -> None:
    stored = CHEAP.hash("correct horse battery")

    assert not CHEAP.needs_rehash(stored)
    assert PasswordHashing(time_cost=2, memory_kib=1024, parallelism=1).needs_rehash(stored)


def test_a_malformed_hash_does_not_verify() -> None:
    assert not CHEAP.verify("not-a-hash", "password")


@pytest.mark.parametrize(
    ("password", "problem"),
    [("short", "at least"), (" " * 12, "blank"), ("x" * 129, "at most"), ("me@example.com", "email")],
)
def test_the_password_policy(password: str, problem: str) -> None:
    assert problem in (password_problem(password, "me@example.com") or "")


def test_a_long_enough_password_is_accepted() -> None:
    assert password_problem("twelve chars", "me@example.com") is None


def test_api_tokens_have_a_lookup_prefix_and_verify_by_hash() -> None:
    made = new_api_token()

    assert api_token_prefix(made.secret) == made.prefix
    assert hash_matches(made.secret, made.hash)
    assert not hash_matches(made.secret + "x", made.hash)
    assert api_token_prefix("tk_nothex00000_" + "a" * 43) is None


def test_refresh_tokens_are_unique_and_stored_as_hashes() -> None:
    first, second = new_refresh_token(), new_refresh_token()

    assert first != second
    assert len(token_hash(first)) == 32


def test_an_issued_access_token_verifies_with_its_claims() -> None:
    tokens = PlatformTokens(b"k" * 64, "tekoa", "tekoa-api", ttl_s=900)
    user_id = uuid.uuid4()

    claims = tokens.verify(tokens.issue(user_id, {"read", "trading"}).token)

    assert claims.user_id == user_id
    assert claims.scopes == {"read", "trading"}
    assert claims.token_id


def test_an_access_token_expires_after_its_ttl() -> None:
    tokens = PlatformTokens(b"k" * 64, "tekoa", "tekoa-api", ttl_s=60)
    issued = tokens.issue(uuid.uuid4(), {"read"}, now=time.time() - 120)

    with pytest.raises(AuthenticationFailed, match="expired"):
        tokens.verify(issued.token)


def test_retry_after_counts_until_the_blocking_failure_leaves_the_window() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    window = timedelta(minutes=15)

    assert retry_after_s(None, window, now) is None
    assert retry_after_s(now - timedelta(minutes=5), window, now) == 600
    assert retry_after_s(now - timedelta(minutes=20), window, now) == 1


def test_a_verified_token_is_not_verified_again_until_it_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    from tekoa.auth import jwt_tokens

    tokens = PlatformTokens(b"k" * 64, "tekoa", "tekoa-api", ttl_s=60)
    calls: list[str] = []

    def verify(token: str) -> Any:
        calls.append(token)
        return tokens.verify(token)

    cache = jwt_tokens.VerifiedTokens(verify)
    token = tokens.issue(uuid.uuid4(), {"read"}).token

    cache.verify(token)
    cache.verify(token)
    with pytest.raises(AuthenticationFailed):
        cache.verify(token[:-2] + ("AA" if not token.endswith("AA") else "BB"))  # tampered: verified afresh
    assert calls.count(token) == 1

    later = time.time() + 3600
    monkeypatch.setattr(jwt_tokens.time, "time", lambda: later)
    cache.verify(token)  # past its expiry by the cache's clock: verified again
    assert calls.count(token) == 2
