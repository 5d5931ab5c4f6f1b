"""Dropping trades a reconnect replays, before they reach the aggregator.

After a reconnect, venues and proxies may re-send recent trades, and ccxt.pro's trade cache
(`tradesLimit`) is per client. Each symbol keeps a watermark: the newest trade time emitted and
the ids emitted at that time. Trades older than the watermark, or at it with a seen id, are
dropped, as are repeated ids within one message. This is cheap and exact for venues that stamp
trades in order (Binance does); a venue that delivers a trade older than one already emitted
loses it here. The aggregator still deduplicates on `trade_ids` (the contract of `TradeBatch`);
this filter only keeps replays off the hot path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from tekoa.market.sources import TradeBatch, trade_id_to_int


@dataclass(slots=True)
class TradeWatermark:
    """The newest trade time a symbol emitted, and the ids emitted at that time."""

    at_ms: int = -1
    ids: set[int] = field(default_factory=set)
    dropped: int = 0

    def new_trades(
        self, exchange: str, symbol: str, trades: Sequence[Mapping[str, Any]], now_ms: int
    ) -> TradeBatch | None:
        """ccxt trades as a batch in time order, without what this symbol already emitted."""
        count = len(trades)
        if count == 0:
            return None
        timestamps = np.fromiter(
            (now_ms if t.get("timestamp") is None else int(t["timestamp"]) for t in trades), np.int64, count
        )
        prices = np.fromiter((float(t["price"]) for t in trades), np.float64, count)
        amounts = np.fromiter((float(t["amount"]) for t in trades), np.float64, count)
        ids = np.fromiter(
            (
                trade_id_to_int(
                    cast(str | int | None, t.get("id")),
                    # Without an id, a trade is what it says; identical id-less trades collapse.
                    trade_id_to_int(f"{ts}|{price!r}|{amount!r}", 0),
                )
                for t, ts, price, amount in zip(trades, timestamps, prices, amounts, strict=True)
            ),
            np.int64,
            count,
        )
        if count > 1 and bool(np.any(np.diff(timestamps) < 0)):
            order = np.argsort(timestamps, kind="stable")
            timestamps, prices, amounts, ids = timestamps[order], prices[order], amounts[order], ids[order]
        keep = self._unseen(timestamps, ids)
        self.dropped += count - len(keep)
        if len(keep) == 0:
            return None
        return TradeBatch(
            exchange=exchange,
            symbol=symbol,
            timestamps_ms=timestamps[keep],
            prices=prices[keep],
            amounts=amounts[keep],
            trade_ids=ids[keep],
        )

    def _unseen(self, timestamps: npt.NDArray[np.int64], ids: npt.NDArray[np.int64]) -> npt.NDArray[np.intp]:
        """Indices (ascending) of trades past the watermark, first occurrence of each id; advances it."""
        fresh = timestamps > self.at_ms
        if self.ids:
            at_mark = timestamps == self.at_ms
            seen = np.fromiter(self.ids, np.int64, len(self.ids))
            fresh |= at_mark & ~np.isin(ids, seen)
        candidates = np.flatnonzero(fresh)
        _, first = np.unique(ids[candidates], return_index=True)
        keep = candidates[np.sort(first)]
        if len(keep):
            newest = int(timestamps[keep[-1]])
            at_newest = {int(i) for i in ids[keep][timestamps[keep] == newest]}
            if newest > self.at_ms:
                self.at_ms, self.ids = newest, at_newest
            else:
                self.ids |= at_newest
        return keep
