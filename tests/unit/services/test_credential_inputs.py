"""Credential input handling: hints, secrets hidden from reprs and errors, idempotency
fingerprints, and the exchange id snapshot."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tekoa.domain.exchanges import CCXT_EXCHANGE_IDS, EXCHANGE_IDS
from tekoa.services.credentials import CredentialCreate, key_hint

CANARY = "CANARY-SECRET-unit-5d1e"


def _request(**overrides: object) -> CredentialCreate:
    fields: dict[str, object] = {
        "exchange": "binance",
        "label": "main",
        "api_key": "ABCD1234567890WXYZ",
        "secret": CANARY,
    }
    return CredentialCreate.model_validate({**fields, **overrides})


@pytest.mark.parametrize(
    ("api_key", "hint"),
    [("ABCD1234567890WXYZ", "ABCD…WXYZ"), ("ABCDEFGHIJKL", "ABCD…IJKL"), ("ABCDEFGH", "…GH"), ("ABC", "…")],
)
def test_the_hint_shows_at_most_a_third_of_the_key(api_key: str, hint: str) -> None:
    assert key_hint(api_key) == hint


def test_secrets_never_appear_in_the_request_repr_or_dump() -> None:
    request = _request(password=CANARY + "-pw")

    assert CANARY not in repr(request)
    assert CANARY not in str(request.model_dump(mode="json"))
    assert CANARY not in str(request.fingerprint())


def test_the_fingerprint_tells_different_secrets_apart() -> None:
    assert _request().fingerprint() == _request().fingerprint()
    assert _request().fingerprint() != _request(secret=CANARY + "x").fingerprint()


def test_a_validation_error_does_not_echo_the_secret() -> None:
    with pytest.raises(ValidationError) as excinfo:
        _request(secret=CANARY * 1000)

    assert CANARY not in str(excinfo.value)
    assert excinfo.value.errors()[0]["loc"] == ("secret",)


def test_an_unknown_exchange_is_refused() -> None:
    with pytest.raises(ValidationError) as excinfo:
        _request(exchange="mtgox")

    assert excinfo.value.errors()[0]["loc"] == ("exchange",)


def test_the_exchange_snapshot_matches_the_installed_ccxt() -> None:
    ccxt = pytest.importorskip("ccxt")

    assert frozenset(ccxt.exchanges) == CCXT_EXCHANGE_IDS
    assert "simulated" in EXCHANGE_IDS
