"""PostgreSQL binary COPY of candle rows, encoded by numba straight from float64 arrays.

Prices and volumes arrive as float64 (ccxt, the aggregator) and are stored as NUMERIC. The
decimal a float stands for is the float rounded to 15 significant digits (DBL_DIG, the
digits every double is guaranteed to carry), exactly as `tekoa.domain.candles.decimal_from_float`
and PostgreSQL's own `float8::numeric` define it; this module computes the same decimal in
compiled code and writes it in NUMERIC's binary wire form, so the server parses nothing and
the bulk path runs at the speed of its primary key.

Rounding is exact, not approximate: the product `|x| * 10**s` is formed as an unevaluated sum
of two doubles (Dekker's exact product, no FMA needed), so round-half-even sees the true
value. That needs `10**s` to be an exact double (s <= 22), which covers 1e-8 <= |x| < 1e15;
the rare value outside that range is converted by `decimal_from_float` in Python.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit
from psycopg import sql

from tekoa.domain.candles import decimal_from_float

_POW10_F = np.array([10.0**i for i in range(23)])
_POW10_I = np.array([10**i for i in range(19)], dtype=np.int64)
_SIGNIFICANT = 15
_K_MIN = 10 ** (_SIGNIFICANT - 1)
_K_LIMIT = 10**_SIGNIFICANT
_SPLITTER = 134217729.0  # 2**27 + 1: splits a double into two 26-bit halves

_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, header-extension length
_NUMERIC_POS = 0x0000
_NUMERIC_NEG = 0x4000
_MAX_NUMERIC_BYTES = 4 + 8 + 2 * 5  # length word, header, at most five base-10000 digits (k < 1e18)
CANDLE_COLUMNS = sql.SQL("series_id, open_time, open, high, low, close, volume, trades, announced")
"""The column list of a COPY this module encodes (one series, NUMERIC values)."""


@njit(cache=True)
def _scaled_round(ax: float, s: int) -> int:
    """Round-half-even of the exact product `ax * 10**s` (0 <= s <= 22, product < 2**53)."""
    b = _POW10_F[s]
    p = ax * b
    c = _SPLITTER * ax
    ah = c - (c - ax)
    al = ax - ah
    c = _SPLITTER * b
    bh = c - (c - b)
    bl = b - bh
    err = ((ah * bh - p) + ah * bl + al * bh) + al * bl  # p + err == ax * b exactly
    nearest = np.rint(p)
    k = int(nearest)
    # p - nearest is exact and a multiple of ulp(p) > 2|err|: only an exact half of p needs err.
    half = p - nearest
    if half == 0.5 and err > 0:
        k += 1
    elif half == -0.5 and err < 0:
        k -= 1
    return k


@njit(cache=True)
def _decimal15(x: float) -> tuple[int, int, bool]:
    """(k, s, ok): x rounded to 15 significant digits is k * 10**-s, k without trailing zeros.

    ok is False outside 1e-8 <= |x| < 1e15 (and for NaN/inf): convert those elsewhere.
    """
    if x == 0.0:
        return 0, 0, True
    ax = abs(x)
    if not (1e-8 <= ax < 1e15):
        return 0, 0, False
    s = _SIGNIFICANT - 1 - math.floor(math.log10(ax))
    k = 0
    for _ in range(3):  # log10 may be off by one near a power of ten; rounding may carry to 1e15
        if s < 0 or s > 22:
            return 0, 0, False
        k = _scaled_round(ax, s)
        if k >= _K_LIMIT:
            s -= 1
        elif k < _K_MIN:
            s += 1
        else:
            break
    while s > 0 and k % 10 == 0:
        k //= 10
        s -= 1
    return (-k if x < 0 else k), s, True


@njit(cache=True)
def _decimal15_columns(columns: npt.NDArray[np.float64]) -> tuple[Any, Any, Any]:
    shape = columns.shape
    k = np.empty(shape, np.int64)
    s = np.empty(shape, np.int32)
    ok = np.empty(shape, np.bool_)
    for c in range(shape[0]):
        for r in range(shape[1]):
            k[c, r], s[c, r], ok[c, r] = _decimal15(columns[c, r])
    return k, s, ok


def decimal15_columns(
    columns: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32]]:
    """Every value of a 2-D float64 array as (k, s): the decimal k * 10**-s of 15 significant digits.

    Raises ValueError for NaN or infinity (a NUMERIC candle value cannot be either).
    """
    k, s, ok = _decimal15_columns(np.ascontiguousarray(columns, dtype=np.float64))
    for c, r in zip(*np.nonzero(~ok), strict=True):
        sign, digits, exponent = decimal_from_float(float(columns[c, r])).as_tuple()
        assert isinstance(exponent, int)  # finite: decimal_from_float refused the rest
        magnitude = int("".join(map(str, digits)))
        k[c, r] = -magnitude if sign else magnitude
        s[c, r] = -exponent
    return k, s


@njit(cache=True, inline="always")
def _put(buf: Any, pos: int, value: int, width: int) -> int:
    for i in range(width):
        buf[pos + i] = (value >> (8 * (width - 1 - i))) & 0xFF
    return pos + width


@njit(cache=True)
def _put_numeric(buf: Any, pos: int, k: int, s: int) -> int:
    """NUMERIC binary: ndigits, weight, sign, dscale, then base-10000 digits, most significant first."""
    magnitude = -k if k < 0 else k
    fraction_groups = (s + 3) // 4  # base-10000 digits after the point (negative: zeros before it)
    aligned = magnitude * _POW10_I[4 * fraction_groups - s]
    groups = np.empty(6, np.int64)
    count = 0
    while aligned > 0:
        groups[count] = aligned % 10000
        aligned //= 10000
        count += 1
    lowest = 0
    while lowest < count and groups[lowest] == 0:
        lowest += 1
    ndigits = count - lowest
    pos = _put(buf, pos, 8 + 2 * ndigits, 4)
    pos = _put(buf, pos, ndigits, 2)
    pos = _put(buf, pos, (count - 1 - fraction_groups) if ndigits else 0, 2)
    pos = _put(buf, pos, _NUMERIC_NEG if k < 0 else _NUMERIC_POS, 2)
    pos = _put(buf, pos, max(s, 0), 2)
    for i in range(count - 1, lowest - 1, -1):
        pos = _put(buf, pos, groups[i], 2)
    return pos


@njit(cache=True)
def _encode_rows(
    header: Any,
    series_id: int,
    open_time: Any,
    k: Any,
    s: Any,
    trades: Any,
    has_trades: bool,
    announced: bool,
) -> Any:
    n = open_time.shape[0]
    row_bytes = 2 + (4 + 4) + (4 + 8) + 5 * _MAX_NUMERIC_BYTES + (4 + 4) + (4 + 1)
    buf = np.empty(header.shape[0] + n * row_bytes + 2, np.uint8)
    buf[: header.shape[0]] = header
    pos = header.shape[0]
    for r in range(n):
        pos = _put(buf, pos, 9, 2)  # field count
        pos = _put(buf, pos, 4, 4)
        pos = _put(buf, pos, series_id, 4)
        pos = _put(buf, pos, 8, 4)
        pos = _put(buf, pos, open_time[r], 8)
        for c in range(5):
            pos = _put_numeric(buf, pos, k[c, r], s[c, r])
        if has_trades:
            pos = _put(buf, pos, 4, 4)
            pos = _put(buf, pos, trades[r], 4)
        else:
            pos = _put(buf, pos, -1, 4)  # NULL
        pos = _put(buf, pos, 1, 4)
        buf[pos] = 1 if announced else 0
        pos += 1
    pos = _put(buf, pos, -1, 2)  # trailer
    return buf[:pos]


def encode_candle_copy(
    series_id: int,
    open_time_ms: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
    trades: npt.NDArray[np.int64] | None,
    *,
    announced: bool = True,
) -> npt.NDArray[np.uint8]:
    """The whole binary COPY stream of one series' candles, columns `CANDLE_COLUMNS`.

    `values` is (5, n): open, high, low, close, volume. `trades` None writes NULL counts.
    """
    k, s = decimal15_columns(values)
    no_trades = np.zeros(1, dtype=np.int64)
    return _encode_rows(  # type: ignore[no-any-return]
        np.frombuffer(_HEADER, dtype=np.uint8),
        series_id,
        np.ascontiguousarray(open_time_ms, dtype=np.int64),
        k,
        s,
        no_trades if trades is None else np.ascontiguousarray(trades, dtype=np.int64),
        trades is not None,
        announced,
    )
