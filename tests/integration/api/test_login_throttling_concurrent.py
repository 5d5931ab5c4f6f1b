"""Sign-in throttling holds under concurrency: parallel wrong passwords cannot slip past the limit."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.integration.api.auth_support import register

ACCOUNT_LIMIT = 5
ATTEMPTS = 20


@pytest.fixture
def settings(aws_settings: Any, database_url: str) -> Any:
    # A real hashing cost keeps each attempt busy long enough for the others to overlap it.
    return aws_settings.model_copy(
        update={
            "database_url": database_url,
            "login_max_failures_per_account": ACCOUNT_LIMIT,
            "password_hash_time_cost": 2,
            "password_hash_memory_kib": 16384,
            "password_hash_parallelism": 1,
        }
    )


def test_concurrent_wrong_passwords_cannot_slip_past_the_account_limit(api: httpx.Client) -> None:
    register(api, "victim@example.com")
    barrier = threading.Barrier(ATTEMPTS)

    def attempt(_: int) -> int:
        with httpx.Client(base_url=str(api.base_url), timeout=60) as client:
            barrier.wait()
            body = {"email": "victim@example.com", "password": "wrong password!"}
            return client.post("/v1/auth/login", json=body).status_code

    with ThreadPoolExecutor(ATTEMPTS) as pool:
        statuses = list(pool.map(attempt, range(ATTEMPTS)))

    assert statuses.count(401) == ACCOUNT_LIMIT
    assert statuses.count(429) == ATTEMPTS - ACCOUNT_LIMIT
