"""Evaluator benchmark: one schedule tick for 10,000 running bots, and the stop path.

Run: `python bench/evaluator.py` (a few minutes, most of it setting up). Against an embedded
PostgreSQL 16 in a temp dir and a moto server (SQS) in its own process, on this machine:

* **tick**: 10,000 running paper bots of the five built-in types (2,000 each, several
  parameter sets per type), 100 per market over 100 markets with 500 stored 1m candles each;
  one tick of the real evaluator (`Evaluator.tick`, what the Lambda handler runs), with the
  time of each phase: bots loaded (the bots and their facts), candles loaded, indicators
  computed, decisions made, risk checked, evaluations written, intents enqueued. The first
  tick compiles and caches the numba kernels and every grid places its ladder (its intents
  are serialised as for SQS, not sent: moto's FIFO queue takes a few dozen a second); the
  second (the next candle, intents sent to SQS on moto) is the figure. Target: at most 1 s on
  one core.
* **stop path**: 100 protected positions on one market in the stream's position manager;
  single trades each crossing one position's stop, timed from the trade's arrival
  (`PositionGuard.observe`) to its exit intent accepted by SQS (`send`): p50 and p99.
  Target: p99 at most 50 ms.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import multiprocessing
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from tekoa.aws.queues import SqsOrderQueue
from tekoa.db import markets as market_rows
from tekoa.db import users
from tekoa.db.candle_copy import copy_ohlcv
from tekoa.db.connection import PooledDatabase, connect, service_transaction, tenant_transaction
from tekoa.db.migrate import migrate
from tekoa.domain.bots import TradingMode
from tekoa.domain.timeframes import Timeframe
from tekoa.evaluation.tick import Due, Evaluator, EvaluatorConfig, TickReport
from tekoa.exchanges.rules import MarketRules
from tekoa.execution.accounts import PaperDefaults, open_account
from tekoa.execution.messages import OrderMessage, dedup_id, dump_message, group_id
from tekoa.local.aws import LocalAwsEndpoint, provision, use_local_credentials
from tekoa.local.postgres import EmbeddedPostgres, ensure_database
from tekoa.market.sources import OhlcvRows, TradeBatch
from tekoa.market.stream.positions import PositionGuard
from tekoa.risk.limits import RiskLimits
from tekoa.services import risk as risk_service
from tekoa.services import strategies as strategy_service
from tekoa.settings import load_settings

USERS = 100
BOTS_PER_USER = 100
MARKETS = 100
BARS = 500
M = 60_000
STOPS = BOTS_PER_USER  # one position per bot (one open position per bot and market)
QUOTE = {"amount": "20", "unit": "quote"}


def definitions(variant: int) -> list[dict[str, Any]]:
    """The five built-in types on 1m candles, prices around 100 (each variant its own params)."""
    return [
        {
            "kind": "builtin",
            "bot_type": "scalper",
            "params": {
                "timeframe": "1m",
                "fast_ema_period": 5 + variant,
                "slow_ema_period": 21 + variant,
                "take_profit_pct": "0.6",
                "stop_loss_pct": "0.3",
                "order_size": QUOTE,
            },
        },
        {
            "kind": "builtin",
            "bot_type": "grid",
            "params": {
                "timeframe": "1m",
                "lower_price": str(90 - variant),
                "upper_price": str(110 + variant),
                "levels": 11,
                "order_size": QUOTE,
            },
        },
        {
            "kind": "builtin",
            "bot_type": "dca",
            "params": {
                "timeframe": "1m",
                "base_order_size": "20",
                "safety_order_size": "10",
                "max_safety_orders": 3,
                "price_deviation_pct": str(1 + variant),
                "take_profit_pct": "1.5",
            },
        },
        {
            "kind": "builtin",
            "bot_type": "dip",
            "params": {
                "timeframe": "1m",
                "drop_pct": str(2 + variant),
                "lookback_bars": 60,
                "take_profit_pct": "2",
                "stop_loss_pct": "3",
                "order_size": QUOTE,
            },
        },
        {
            "kind": "builtin",
            "bot_type": "momentum",
            "params": {
                "timeframe": "1m",
                "mode": {"type": "breakout", "lookback": 20 + variant},
                "trailing_stop_pct": "2",
                "order_size": QUOTE,
            },
        },
    ]


def symbol(market: int) -> str:
    return f"M{market:03d}/USDT"


def rules(market: int) -> MarketRules:
    return MarketRules(
        "simulated",
        symbol(market),
        f"M{market:03d}",
        "USDT",
        amount_step=Decimal("1e-8"),
        price_step=Decimal("1e-8"),
    )


def candles(market: int, start: int, bars: int) -> OhlcvRows:
    rng = np.random.default_rng(market)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 2e-3, bars)))
    open_ = np.concatenate(([close[0]], close[:-1]))
    return OhlcvRows(
        open_time_ms=start + np.arange(bars, dtype=np.int64) * M,
        open=open_,
        high=np.maximum(open_, close) * 1.001,
        low=np.minimum(open_, close) * 0.999,
        close=close,
        volume=rng.lognormal(0, 1, bars),
    )


def populate(database: PooledDatabase, url: str, start: int) -> list[uuid.UUID]:
    """100 users with a paper account, 3 parameter sets of every type, 100 running bots each."""
    user_ids = []
    for u in range(USERS):
        with database.connection() as conn, service_transaction(conn):
            user = users.insert_user(conn, f"bench-{uuid.uuid4().hex}@example.com", "x", None)
        user_ids.append(user.id)
        strategies = [
            strategy_service.create_strategy(
                database,
                user.id,
                strategy_service.StrategyCreate.model_validate(
                    {"name": f"s{variant}-{kind}", "definition": definition}
                ),
            ).id
            for variant in range(3)
            for kind, definition in enumerate(definitions(variant))
        ]
        with database.connection() as conn, tenant_transaction(conn, user.id):
            open_account(
                conn,
                user.id,
                exchange="simulated",
                mode=TradingMode.PAPER,
                paper=PaperDefaults(starting_balance=Decimal(10**7)),
            )
        risk_service.set_limits(database, user.id, RiskLimits(max_open_positions=1000))
        with database.connection() as conn, service_transaction(conn):
            conn.execute(
                "INSERT INTO bots (user_id, name, strategy_id, strategy_version, exchange, symbol, timeframe,"
                " mode, risk, status)"
                " SELECT %s, 'bot ' || k, (%s::uuid[])[1 + k %% %s], 1, 'simulated',"
                " 'M' || lpad(((k + %s) %% %s)::text, 3, '0') || '/USDT', '1m', 'paper',"
                ' \'{"risk_per_trade_pct": "2", "max_position_notional": "1000"}\', \'running\''
                " FROM generate_series(0, %s - 1) AS k",
                (user.id, strategies, len(strategies), u, MARKETS, BOTS_PER_USER),
            )
    with database.connection() as conn, service_transaction(conn):
        conn.execute("INSERT INTO bot_runtime (bot_id, user_id) SELECT id, user_id FROM bots")
        market_rows.upsert_rules(conn, [rules(m) for m in range(MARKETS)])
        for m in range(MARKETS):
            copy_ohlcv(conn, "simulated", symbol(m), Timeframe.M1, candles(m, start, BARS))
    trade(database, start + (BARS - 1) * M)
    with connect(url) as conn:
        conn.execute("ANALYZE")
    return user_ids


def trade(database: PooledDatabase, at: int) -> None:
    with database.connection() as conn, service_transaction(conn):
        market_rows.record_last_trades(
            conn, [market_rows.LastTrade("simulated", symbol(m), Decimal(100), at) for m in range(MARKETS)]
        )


def next_candle(database: PooledDatabase, start: int) -> None:
    with database.connection() as conn, service_transaction(conn):
        for m in range(MARKETS):
            rows = candles(m, start, BARS + 1)
            last = slice(BARS, BARS + 1)
            copy_ohlcv(
                conn,
                "simulated",
                symbol(m),
                Timeframe.M1,
                OhlcvRows(**{f.name: getattr(rows, f.name)[last] for f in dataclasses.fields(OhlcvRows)}),
            )
    trade(database, start + BARS * M)


def bench_stop_path(
    database: PooledDatabase, queue: SqsOrderQueue, user_id: uuid.UUID
) -> tuple[float, float]:
    """Positions with stops 0.1 % apart; each trade crosses the next one."""
    with database.connection() as conn, service_transaction(conn):
        account, bots = conn.execute(
            "SELECT (SELECT id FROM accounts WHERE user_id = %s), array_agg(id) FROM bots WHERE user_id = %s",
            (user_id, user_id),
        ).fetchone()
        for k in range(STOPS):
            stop = 99.0 - 0.1 * k
            protection = {"entry_price": "100", "stop": repr(stop), "anchor": "100"}
            conn.execute(
                "INSERT INTO positions (user_id, account_id, bot_id, exchange, symbol, quantity,"
                " average_entry, entry_quantity, protection)"
                " VALUES (%s, %s, %s, 'simulated', %s, 1, 100, 1, %s)",
                (user_id, account, bots[k % len(bots)], "STOP/USDT", json.dumps(protection)),
            )
    guard = PositionGuard("simulated", database, queue)
    asyncio.run(guard.refresh(["STOP/USDT"], force=True))
    latencies = []
    for k in range(STOPS):
        price = 99.0 - 0.1 * k - 0.01
        batch = TradeBatch(
            "simulated",
            "STOP/USDT",
            np.array([time.time_ns() // 1_000_000], dtype=np.int64),
            np.array([price]),
            np.array([1.0]),
            np.array([k], dtype=np.int64),
        )
        began = time.perf_counter()
        guard.observe(batch)
        asyncio.run(guard.send())
        latencies.append((time.perf_counter() - began) * 1000)
    assert guard.exits_sent == STOPS, guard.exits_sent
    return float(np.percentile(latencies, 50)), float(np.percentile(latencies, 99))


class BenchQueue:
    """The first tick's messages are only serialised (each body, group and deduplication id
    built, in batches of ten): what the evaluator pays to send, without the network. Once
    `sqs` is set, messages go to SQS."""

    sqs: SqsOrderQueue | None = None

    def send(self, messages: Sequence[OrderMessage]) -> None:
        if self.sqs is not None:
            self.sqs.send(messages)
            return
        for start in range(0, len(messages), 10):
            [(dump_message(m), group_id(m), dedup_id(m)) for m in messages[start : start + 10]]


def _aws_part(port: int) -> None:
    LocalAwsEndpoint(port=port).start()
    threading.Event().wait()


def _print_tick(name: str, report: TickReport) -> None:
    total = sum(report.phases.values())
    cpu = sum(report.cpu.values())
    print(
        f"{name}: {report.bots} bots due, {report.evaluated} evaluated, {report.skipped} skipped,"
        f" {report.intents} intents sent, {report.rejected} refused by risk checks;"
        f" {total * 1000:.0f} ms wall, {cpu * 1000:.0f} ms CPU in this process"
    )
    for phase, seconds in report.phases.items():
        print(f"    {phase:<22} {seconds * 1000:8.1f} ms wall {report.cpu[phase] * 1000:8.1f} ms CPU")


def main() -> None:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as data_dir:
        server = EmbeddedPostgres(Path(data_dir) / "pg")
        admin = server.start()
        port = _free_port()
        endpoint = multiprocessing.get_context("spawn").Process(target=_aws_part, args=(port,), daemon=True)
        endpoint.start()
        try:
            url = ensure_database(admin, "bench")
            migrate(url)
            aws = {"stage": "bench", "aws_endpoint_url": f"http://127.0.0.1:{port}", "database_url": url}
            use_local_credentials()
            _wait_for(aws["aws_endpoint_url"])
            settings = load_settings(**aws)
            provision(settings)
            database = PooledDatabase(url, max_size=4)
            start = (time.time_ns() // 1_000_000 // M - BARS) * M
            setup = time.perf_counter()
            user_ids = populate(database, url, start)
            took = time.perf_counter() - setup
            print(f"setup: {USERS * BOTS_PER_USER} bots over {MARKETS} markets in {took:.0f} s")
            queue = SqsOrderQueue(settings)
            config = EvaluatorConfig(max_feed_age_s=3600)
            # One evaluator for both ticks, as a warm Lambda keeps it (with its parsed strategy
            # versions). The first tick compiles the kernels and every grid places its whole
            # ladder (tens of thousands of intents): serialised and batched as for SQS, but not
            # sent — moto's FIFO queue takes a few dozen messages a second, which would measure
            # moto.
            bench_queue = BenchQueue()
            evaluator = Evaluator(database, bench_queue, config=config)
            _print_tick(
                "tick 1 (cold: numba compiles, every grid places its ladder; intents serialised, not sent)",
                evaluator.tick(Due()),
            )
            next_candle(database, start)
            bench_queue.sqs = queue
            _print_tick("tick 2 (the next candle; intents sent to SQS on moto)", evaluator.tick(Due()))
            p50, p99 = bench_stop_path(database, queue, user_ids[0])
            print(
                f"stop path: trade -> stop trigger -> exit intent on SQS: p50 {p50:.1f} ms, p99 {p99:.1f} ms"
            )
            database.close()
        finally:
            endpoint.terminate()
            server.stop()
    print(f"(whole run {time.perf_counter() - started:.0f} s)")


def _wait_for(url: str) -> None:
    import urllib.request

    for _ in range(200):
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing answers at {url}")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


if __name__ == "__main__":
    main()
