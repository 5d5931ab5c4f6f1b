"""Sign-in throttling: too many failures per account or per client address answer 429."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.api.auth_support import CHEAP_HASHING, PASSWORD, register

ACCOUNT_LIMIT = 3
ADDRESS_LIMIT = 5


@pytest.fixture
def settings(aws_settings: Any, database_url: str) -> Any:
    return aws_settings.model_copy(
        update={
            "database_url": database_url,
            "login_max_failures_per_account": ACCOUNT_LIMIT,
            "login_max_failures_per_address": ADDRESS_LIMIT,
            **CHEAP_HASHING,
        }
    )


def _login(api: httpx.Client, email: str, password: str) -> httpx.Response:
    return api.post("/v1/auth/login", json={"email": email, "password": password})


def test_an_account_is_locked_after_too_many_failures_even_for_the_right_password(api: httpx.Client) -> None:
    register(api, "victim@example.com")
    for _ in range(ACCOUNT_LIMIT):
        assert _login(api, "victim@example.com", "wrong password!").status_code == 401

    response = _login(api, "victim@example.com", PASSWORD)

    assert response.status_code == 429
    assert response.json()["detail"]["code"] == "RATE_LIMITED"
    assert 1 <= int(response.headers["retry-after"]) <= 900


def test_a_locked_account_does_not_lock_other_accounts(api: httpx.Client) -> None:
    register(api, "victim@example.com")
    register(api, "bystander@example.com")
    for _ in range(ACCOUNT_LIMIT):
        _login(api, "victim@example.com", "wrong password!")

    assert _login(api, "bystander@example.com", PASSWORD).status_code == 200


def test_a_successful_sign_in_resets_the_accounts_counter(api: httpx.Client) -> None:
    register(api, "forgetful@example.com")
    for _ in range(ACCOUNT_LIMIT - 1):
        _login(api, "forgetful@example.com", "wrong password!")
    assert _login(api, "forgetful@example.com", PASSWORD).status_code == 200

    assert _login(api, "forgetful@example.com", "wrong password!").status_code == 401


def test_an_address_spraying_many_accounts_is_throttled(api: httpx.Client) -> None:
    register(api, "target@example.com")
    for attempt in range(ADDRESS_LIMIT):
        assert _login(api, f"guess{attempt}@example.com", "wrong password!").status_code == 401

    response = _login(api, "target@example.com", PASSWORD)

    assert response.status_code == 429
    assert "retry-after" in response.headers
