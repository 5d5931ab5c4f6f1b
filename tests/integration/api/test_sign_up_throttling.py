"""Sign-up is throttled per client address: 429 with Retry-After past the limit."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.api.auth_support import CHEAP_HASHING, PASSWORD, register

SIGN_UP_LIMIT = 2


@pytest.fixture
def settings(aws_settings: Any, database_url: str) -> Any:
    return aws_settings.model_copy(
        update={"database_url": database_url, "signup_max_per_address": SIGN_UP_LIMIT, **CHEAP_HASHING}
    )


def test_sign_ups_from_one_address_are_throttled(api: httpx.Client) -> None:
    for i in range(SIGN_UP_LIMIT):
        register(api, f"new{i}@example.com")

    refused = api.post("/v1/auth/register", json={"email": "one-more@example.com", "password": PASSWORD})

    assert refused.status_code == 429
    assert refused.json()["detail"]["code"] == "RATE_LIMITED"
    assert 1 <= int(refused.headers["retry-after"]) <= 3600
