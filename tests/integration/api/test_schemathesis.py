"""Property-based API fuzzing: schemathesis generates valid and invalid requests from the OpenAPI
schema, and the live server must never answer 5xx nor a body that contradicts the schema."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance

from tests.integration.api.auth_support import settings as settings
from tests.integration.api.market_readiness import markets_ready
from tests.integration.api.trading_support import create_bot, create_credential, new_user

EXAMPLES_PER_OPERATION = 25

# Operations that would end the fuzzing session's own sign-in if a generated input happened
# to be valid; they are covered by their own tests.
SKIPPED = {("POST", "/v1/auth/logout")}


@pytest.mark.slow
def test_no_operation_answers_5xx_or_violates_its_schema(api: httpx.Client, settings: Any) -> None:
    markets_ready(settings)  # else /health answers 503: market data not loaded
    caller = new_user(api)
    create_bot(api, caller)
    create_credential(api, caller, exchange="simulated")
    schema = schemathesis.openapi.from_dict(api.get("/openapi.json").json())
    base_url = str(api.base_url)
    failures: list[str] = []
    fuzzed = []

    operations = [result.ok() for result in schema.get_all_operations()]
    for operation, mode in itertools.product(operations, (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)):
        if (operation.method.upper(), operation.path) in SKIPPED:
            continue
        fuzzed.append(f"{operation.method.upper()} {operation.path} ({mode.value})")

        @given(case=operation.as_strategy(generation_mode=mode))
        @hypothesis_settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,  # the same examples every run, so a failure reproduces
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            case.call_and_validate(
                base_url=base_url,
                headers=caller.headers,
                checks=[not_a_server_error, response_schema_conformance],
            )

        try:
            run()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE, (
                f"{operation.method.upper()} {operation.path}: no valid input"
            )
            continue  # nothing about this operation's input can be made invalid (no parameters)
        except (
            Exception,
            BaseExceptionGroup,
        ) as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {_summary(exc)}")

    assert len(fuzzed) >= 40
    assert not failures, "\n".join(failures)


def _summary(exc: BaseException) -> str:
    """The distinct failures schemathesis reports, one line each (full text is long)."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_summary(inner) for inner in exc.exceptions)
    return f"{type(exc).__name__}: {str(exc).strip()[:500]}"
