"""Trade ids become stable int64 keys for duplicate detection."""

from __future__ import annotations

from tekoa.market.sources import trade_id_to_int


def test_numeric_ids_pass_through() -> None:
    assert trade_id_to_int("123456789", fallback=0) == 123456789
    assert trade_id_to_int(42, fallback=0) == 42


def test_other_ids_hash_stably_into_63_bits() -> None:
    first = trade_id_to_int("a1-b2", fallback=0)

    assert first == trade_id_to_int("a1-b2", fallback=0)
    assert 0 <= first < 2**63
    assert first != trade_id_to_int("a1-b3", fallback=0)


def test_unicode_digits_hash_instead_of_crashing() -> None:
    value = trade_id_to_int("²³", fallback=0)

    assert 0 <= value < 2**63


def test_a_missing_id_uses_the_fallback() -> None:
    assert trade_id_to_int(None, fallback=7) == 7
