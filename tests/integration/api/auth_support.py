"""Helpers for tests that need accounts: cheap (but real) argon2 settings, sign-up over HTTP."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
import pytest

PASSWORD = "correct horse battery staple"
_counter = itertools.count()

CHEAP_HASHING = {
    "password_hash_time_cost": 1,
    "password_hash_memory_kib": 1024,
    "password_hash_parallelism": 1,
}


@pytest.fixture
def settings(aws_settings: Any, database_url: str) -> Any:
    """The shared test settings with cheap argon2 parameters (hashing still runs for real)."""
    return aws_settings.model_copy(update={"database_url": database_url, **CHEAP_HASHING})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def register(api: httpx.Client, email: str | None = None, password: str = PASSWORD) -> dict[str, Any]:
    """Sign up a fresh user; returns the 201 body (`user`, `tokens`)."""
    email = email or f"user{next(_counter)}@example.com"
    response = api.post("/v1/auth/register", json={"email": email, "password": password})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def access_token(api: httpx.Client, email: str | None = None) -> str:
    token: str = register(api, email)["tokens"]["access_token"]
    return token
