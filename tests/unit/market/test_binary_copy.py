"""Binary COPY encoding: the compiled float -> decimal rule equals the Python one, and the
stream has PostgreSQL's binary layout (decoded here field by field)."""

from __future__ import annotations

import struct
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tekoa.db.binary_copy import decimal15_columns, encode_candle_copy
from tekoa.domain.candles import decimal_from_float

T0 = 1_717_200_000_000

# Values where the rounding is hardest: exact halves at the 16th digit (2**-22 ends in ...625),
# neighbours of powers of ten, both ends of the compiled range and beyond it, float noise.
EDGE_VALUES = [
    0.0,
    -0.0,
    2.0**-22,
    0.1,
    3.5889499999999996,
    99999.999999999999,
    999999999999999.9,
    1e15,
    1e-8,
    9.999999999999999e-9,
    5e-324,
    1.7976931348623157e308,
    -60000.12,
    *np.nextafter(10.0 ** np.arange(-9, 17), 0.0),
    *np.nextafter(10.0 ** np.arange(-9, 17), np.inf),
    *(10.0 ** np.arange(-9, 17)),
]


def as_decimal(k: int, s: int) -> Decimal:
    return Decimal(k).scaleb(-s)


def assert_same_decimals(values: np.ndarray) -> None:
    k, s = decimal15_columns(values.reshape(1, -1))
    for value, digits, scale in zip(values, k[0], s[0], strict=True):
        assert as_decimal(int(digits), int(scale)) == decimal_from_float(float(value)), repr(value)
        assert digits % 10 != 0 or scale <= 0, "trailing zeros are stripped"


def test_edge_values_round_like_decimal_from_float() -> None:
    assert_same_decimals(np.array(EDGE_VALUES))


def test_values_with_a_half_at_the_sixteenth_digit_round_like_decimal_from_float() -> None:
    rng = np.random.default_rng(3)
    sixteen_digits = rng.integers(10**14, 10**15, 20_000) * 10 + 5
    assert_same_decimals(sixteen_digits / 10.0 ** rng.integers(0, 24, 20_000))


def test_market_shaped_values_round_like_decimal_from_float() -> None:
    rng = np.random.default_rng(4)
    prices = np.round(rng.random(20_000) * 10.0 ** rng.integers(-6, 7, 20_000), 8)
    volumes = np.cumsum(rng.random(20_000) * 0.01)  # sums carry float noise
    assert_same_decimals(np.concatenate([prices, volumes]))


@settings(max_examples=2_000, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_any_finite_float_rounds_like_decimal_from_float(value: float) -> None:
    assert_same_decimals(np.array([value]))


def test_non_finite_values_are_refused() -> None:
    with pytest.raises(ValueError, match="finite"):
        decimal15_columns(np.array([[1.0, np.nan]]))


def decode_numeric(data: bytes) -> Decimal:
    ndigits, weight, sign, dscale = struct.unpack(">hhHh", data[:8])
    digits = struct.unpack(f">{ndigits}h", data[8:])
    assert all(0 <= d < 10_000 for d in digits) and sign in (0, 0x4000)
    value = sum((Decimal(d).scaleb(4 * (weight - i)) for i, d in enumerate(digits)), Decimal(0))
    exponent = value.normalize().as_tuple().exponent
    assert isinstance(exponent, int) and -exponent <= dscale  # the display scale hides no digit
    return -value if sign else value


def decode_stream(stream: bytes) -> list[list[object]]:
    assert stream.startswith(b"PGCOPY\n\xff\r\n\x00" + bytes(8)) and stream.endswith(b"\xff\xff")
    pos, rows = 19, []
    while True:
        (fields,) = struct.unpack_from(">h", stream, pos)
        pos += 2
        if fields == -1:
            assert pos == len(stream)
            return rows
        row: list[object] = []
        for _ in range(fields):
            (length,) = struct.unpack_from(">i", stream, pos)
            pos += 4
            row.append(None if length == -1 else stream[pos : pos + length])
            pos += max(length, 0)
        rows.append(row)


def test_the_stream_has_postgres_binary_layout() -> None:
    # Given two candles, one with a negative and one with a tiny value (the Python fallback)
    values = np.array(
        [[60000.12, -1.5], [60010.5, 2.0], [59990.25, -2.0], [60001.75, 0.0], [3.5889499999999996, 1e-12]]
    )

    # When encoded with and without trade counts
    counted = decode_stream(
        encode_candle_copy(7, np.array([T0, T0 + 60_000]), values, np.array([42, 0])).tobytes()
    )
    history = decode_stream(
        encode_candle_copy(7, np.array([T0]), values[:, :1], None, announced=False).tobytes()
    )

    # Then every field decodes to what was given: series id, ms time, NUMERIC money, count, flag
    series_id, open_time, *money, trades, announced = counted[1]
    assert struct.unpack(">i", series_id) == (7,) and struct.unpack(">q", open_time) == (T0 + 60_000,)
    assert [decode_numeric(m) for m in money] == [Decimal("-1.5"), 2, -2, 0, Decimal("1E-12")]  # type: ignore[arg-type]
    assert struct.unpack(">i", trades) == (0,) and announced == b"\x01"  # type: ignore[arg-type]
    assert [decode_numeric(m) for m in counted[0][2:7]] == [  # type: ignore[arg-type]
        Decimal("60000.12"),
        Decimal("60010.5"),
        Decimal("59990.25"),
        Decimal("60001.75"),
        Decimal("3.58895"),
    ]
    assert history[0][7] is None and history[0][8] == b"\x00"
