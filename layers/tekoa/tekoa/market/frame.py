"""`CandleFrame`: the one columnar candle shape of the numeric path.

Closed candles of one market and one timeframe as columns — `open_time` int64 (UTC ms, aligned
to the timeframe, strictly ascending) and open/high/low/close/volume float64 — so indicators,
the engine, the backtester, the evaluator and charts read the same arrays without copying.
Gaps are allowed (a market that did not trade, a stock's weekend); rows are never invented.

There are two ways in: `from_candles` (what `tekoa.db` reads: Decimal `Candle`s) and
`from_csv` (`timestamp,open,high,low,close,volume`, timestamp in ms, as in `tests/data`).
Money becomes exact again only where it is booked (`tekoa.domain.candles.decimal_from_float`).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from tekoa.domain.candles import Candle
from tekoa.domain.timeframes import Timeframe

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

CSV_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")
"""Header of a candle CSV file; `timestamp` is the open time in ms since the epoch (UTC)."""


class FrameError(ValueError):
    """Rows that cannot form a frame: misaligned, repeated or unordered times, bad OHLC."""


@dataclass(frozen=True, slots=True, eq=False)
class CandleFrame:
    """Closed candles of one (market, timeframe) as aligned columns; row i is one candle."""

    timeframe: Timeframe
    open_time: I64
    open: F64
    high: F64
    low: F64
    close: F64
    volume: F64

    def __post_init__(self) -> None:
        n = self.open_time.shape[0]
        for name in ("open", "high", "low", "close", "volume"):
            column = getattr(self, name)
            if column.shape != (n,) or column.dtype != np.float64:
                raise FrameError(f"column {name} must be float64 of length {n}")
        if self.open_time.dtype != np.int64 or self.open_time.ndim != 1:
            raise FrameError("open_time must be a 1-d int64 array")

    def __len__(self) -> int:
        return int(self.open_time.shape[0])

    @classmethod
    def empty(cls, timeframe: Timeframe) -> CandleFrame:
        """A frame with no candles."""
        floats = np.empty(0, dtype=np.float64)
        return cls(timeframe, np.empty(0, dtype=np.int64), floats, floats, floats, floats, floats)

    @classmethod
    def from_arrays(
        cls,
        timeframe: Timeframe,
        open_time: npt.ArrayLike,
        open_: npt.ArrayLike,
        high: npt.ArrayLike,
        low: npt.ArrayLike,
        close: npt.ArrayLike,
        volume: npt.ArrayLike,
    ) -> CandleFrame:
        """A checked frame from array-likes (copied to contiguous int64 / float64)."""
        frame = cls(
            timeframe,
            np.ascontiguousarray(open_time, dtype=np.int64),
            *(np.ascontiguousarray(x, dtype=np.float64) for x in (open_, high, low, close, volume)),
        )
        frame.validate()
        return frame

    @classmethod
    def from_candles(cls, timeframe: Timeframe, candles: Sequence[Candle]) -> CandleFrame:
        """The frame of stored candles (as `tekoa.db.candles.read_candles` returns them)."""
        wrong = [c for c in candles if c.timeframe is not timeframe]
        if wrong:
            raise FrameError(f"a {wrong[0].timeframe} candle cannot join a {timeframe} frame")
        return cls.from_arrays(
            timeframe,
            [c.open_time for c in candles],
            [float(c.open) for c in candles],
            [float(c.high) for c in candles],
            [float(c.low) for c in candles],
            [float(c.close) for c in candles],
            [float(c.volume) for c in candles],
        )

    @classmethod
    def from_csv(cls, path: Path | str, timeframe: Timeframe) -> CandleFrame:
        """Read a `timestamp,open,high,low,close,volume` CSV (timestamp in ms); errors name the line."""
        with Path(path).open(newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None or tuple(h.strip().lower() for h in header) != CSV_COLUMNS:
                raise FrameError(f"{path}: the header must be {','.join(CSV_COLUMNS)}, got {header}")
            times: list[int] = []
            values: list[list[float]] = [[], [], [], [], []]
            for line, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) != len(CSV_COLUMNS):
                    raise FrameError(f"{path}:{line}: expected {len(CSV_COLUMNS)} fields, got {len(row)}")
                try:
                    times.append(int(row[0]))
                    for column, text in zip(values, row[1:], strict=True):
                        column.append(float(text))
                except ValueError as exc:
                    raise FrameError(f"{path}:{line}: {exc}") from None
        try:
            return cls.from_arrays(timeframe, times, *values)
        except FrameError as exc:
            raise FrameError(f"{path}: {exc}") from None

    def validate(self) -> None:
        """Raise FrameError unless times are aligned and strictly ascending and OHLCV is consistent."""
        times = self.open_time
        if np.any(times % self.timeframe.ms):
            bad = int(times[np.argmax(times % self.timeframe.ms != 0)])
            raise FrameError(f"open time {bad} is not aligned to {self.timeframe}")
        if times.size > 1 and not np.all(times[1:] > times[:-1]):
            bad = int(np.argmax(times[1:] <= times[:-1])) + 1
            raise FrameError(f"open times must be strictly ascending (row {bad}: {int(times[bad])})")
        columns = np.stack([self.open, self.high, self.low, self.close, self.volume])
        if not np.all(np.isfinite(columns)):
            raise FrameError("prices and volumes must be finite")
        if np.any(self.low > np.minimum(self.open, self.close)) or np.any(
            np.maximum(self.open, self.close) > self.high
        ):
            raise FrameError("inconsistent OHLC: low must be <= open, close <= high")
        if np.any(self.volume < 0):
            raise FrameError("volume must not be negative")

    def take(self, rows: slice | npt.NDArray[np.bool_] | npt.NDArray[np.intp]) -> CandleFrame:
        """The rows a slice, mask or index array selects (a slice shares memory)."""
        return CandleFrame(
            self.timeframe,
            self.open_time[rows],
            self.open[rows],
            self.high[rows],
            self.low[rows],
            self.close[rows],
            self.volume[rows],
        )

    def tail(self, bars: int) -> CandleFrame:
        """The newest `bars` candles (all of them when there are fewer)."""
        return self.take(slice(max(0, len(self) - bars), None))

    def until(self, close_ms: int) -> CandleFrame:
        """Candles that have closed by `close_ms` (open_time + timeframe <= close_ms); a view."""
        end = int(np.searchsorted(self.open_time, close_ms - self.timeframe.ms, side="right"))
        return self.take(slice(0, end))

    @property
    def last_open_time(self) -> int | None:
        """Open time of the newest candle, or None when empty."""
        return int(self.open_time[-1]) if len(self) else None
