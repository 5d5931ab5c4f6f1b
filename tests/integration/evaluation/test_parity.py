"""PARITY: one code path. A DCA bot run live — the real evaluator, the executor on the order
queue filling paper orders, the reconciler's candle sweep — candle by candle over stored
candles makes the same decisions as the backtester over the same candles: the same orders on
the same candles (ids, legs, sides, types), at the same prices and quantities up to rounding (the
backtester books floats without a market's lot; the executor rounds quantities to the lot and
books decimals)."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import numpy as np

from tekoa.backtest.runner import run_backtest
from tekoa.db import markets as market_rows
from tekoa.db.candle_copy import copy_ohlcv
from tekoa.db.connection import service_transaction
from tekoa.db.evaluations import MarketFilter
from tekoa.domain.timeframes import Timeframe
from tekoa.engine import MarketData
from tekoa.evaluation.tick import Due
from tekoa.exchanges.rules import MarketRules
from tekoa.execution.fills import Costs
from tekoa.execution.reconcile import ReconcileConfig, Reconciler, ReconcileReport
from tekoa.market.frame import CandleFrame
from tekoa.market.sources import OhlcvRows
from tekoa.risk.limits import RiskLimits
from tekoa.services import risk as risk_service
from tekoa.strategies.models import STRATEGY_ADAPTER
from tests.integration.evaluation.floor import Floor, M, closes_rows
from tests.integration.execution.desk import SYMBOL, now_ms
from tests.unit.strategies.examples import DCA

DEFINITION = {
    "kind": "builtin",
    "bot_type": "dca",
    "params": {
        **DCA,
        "timeframe": "1m",
        "stop_loss_pct": None,
        "price_deviation_pct": "0.8",
        "take_profit_pct": "0.6",
    },
}
BARS = 90
# The backtester does not round to a market's lot or tick: a fine market keeps the difference
# to rounding (a lot of 1e-8 BTC is Binance's finest; prices on any tick).
RULES = MarketRules(
    "simulated", SYMBOL, "BTC", "USDT", amount_step=Decimal("1e-8"), price_step=Decimal("1e-24")
)
TOLERANCE = 1e-4
"""Relative: a lot of 1e-8 on quantities of about 1e-3 BTC, and averages of fills made of them."""


def _path() -> np.ndarray:
    """Dips deep enough for safety orders, recoveries that reach the take profit."""
    t = np.arange(BARS)
    return 60_000 * (1 + 0.012 * np.sin(t / 6.0) - 0.004 * np.sin(t / 2.3))


def _slice(rows: OhlcvRows, i: int) -> OhlcvRows:
    part = slice(i, i + 1)
    return OhlcvRows(
        open_time_ms=rows.open_time_ms[part],
        open=rows.open[part],
        high=rows.high[part],
        low=rows.low[part],
        close=rows.close[part],
        volume=rows.volume[part],
    )


def _trade(floor: Floor, price: float, at: int) -> None:
    floor.desk.clock[0] = at
    with floor.database.connection() as conn, service_transaction(conn):
        market_rows.upsert_rules(conn, [RULES])
        market_rows.record_last_trades(
            conn, [market_rows.LastTrade("simulated", SYMBOL, Decimal(repr(price)), at)]
        )


def test_a_bot_run_live_candle_by_candle_decides_as_the_backtester_over_the_same_candles(
    floor: Floor,
) -> None:
    user = floor.desk.user()
    bot = floor.running_bot(
        user, DEFINITION, risk={"risk_per_trade_pct": "10", "max_position_notional": "100000"}
    )
    # Ninety candles replay in a minute or two of wall time: the per-minute order rate is not
    # what this test is about.
    risk_service.set_limits(floor.database, user, RiskLimits(max_orders_per_minute=10_000))
    start = (now_ms() // M + 60) * M  # after every order's creation: the candle sweep looks forward
    rows = closes_rows(_path(), start)
    reconciler = Reconciler(
        floor.database,
        floor.desk.executor(),
        floor.desk.brokers,
        queue=floor.fifo.queue,
        publisher=None,
        # The sweep takes the candles from its clock on (here: the candle just stored); in real
        # time the order's creation bounds it, which the replay's market clock runs ahead of.
        config=ReconcileConfig(sweep_window_ms=0),
        clock_ms=lambda: floor.desk.clock[0],
    )
    evaluator = floor.evaluator()
    for i in range(BARS):
        at = int(rows.open_time_ms[i])
        # Orders decided at the previous close arrive at this candle's open...
        _trade(floor, float(rows.open[i]), at)
        assert floor.execute_queued() == {"failures": []}
        # ...resting ones fill where the candle reaches them (the reconciler's sweep)...
        with floor.database.connection() as conn, service_transaction(conn):
            copy_ohlcv(conn, "simulated", SYMBOL, Timeframe.M1, _slice(rows, i))
        reconciler.sweep_paper(ReconcileReport())
        assert floor.execute_queued() == {"failures": []}
        # ...and the bot decides on its close.
        _trade(floor, float(rows.close[i]), at + M - 1)
        evaluator.tick(Due(MarketFilter("simulated", SYMBOL, "1m"), candle_open_time=at))

    frame = CandleFrame(
        Timeframe.M1, rows.open_time_ms, rows.open, rows.high, rows.low, rows.close, rows.volume
    )
    backtest = run_backtest(
        STRATEGY_ADAPTER.validate_python(DEFINITION),
        MarketData({Timeframe.M1: frame}),
        cash=10_000.0,
        costs=Costs(maker_fee=0.001, taker_fee=0.001, slippage=0.0005),
        bot_id=str(bot),
        vectorised=False,
    )
    evaluations = floor.evaluations(user, bot)
    live = [(e["candle"], intent) for e in evaluations for intent in e["intents"]]
    expected = [
        (int(frame.open_time[bar]), intent.model_dump(mode="json")) for bar, intent in backtest.intents
    ]

    assert len(evaluations) == BARS and all(e["outcome"] == "decided" for e in evaluations)
    assert [e["risk"] for e in evaluations if e["risk_verdict"] not in (None, "approved")] == []
    assert {i["leg"] for _, i in expected} >= {"base", "tp", "so-1"}, "the path must exercise the deal"
    assert len(backtest.trades) >= 1, "the take profit must close at least one deal"
    assert [_identity(*x) for x in live] == [_identity(*x) for x in expected]
    for (_, got), (_, want) in zip(live, expected, strict=True):
        for field in ("quantity", "price"):
            if want.get(field) is not None:
                assert math.isclose(float(got[field]), float(want[field]), rel_tol=TOLERANCE), (got, want)


def _identity(candle: int, intent: dict[str, Any]) -> tuple[Any, ...]:
    return (
        candle,
        intent["client_order_id"],
        intent["action"],
        intent.get("leg"),
        intent.get("side"),
        intent.get("type"),
        intent.get("target_client_order_id"),
    )
