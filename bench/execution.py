"""Execution benchmarks: the executor's throughput and the order path end to end.

Run: `python bench/execution.py` (a few minutes). Against an embedded PostgreSQL 16 started
in a temp dir (and a moto server for SQS and EventBridge), on this machine:

* **executor**: paper market orders handled as Lambda receives them, SQS batches of 10 through
  the real handler (claim, checks, hold, fill, position, ledger, events in the outbox), by 1
  and by 4 concurrent invocations, each its own process as Lambda's are (Lambda runs one per
  message group at a time; these span many accounts), and once more with the events put on
  EventBridge (moto) per batch, as the Lambda does. Each row notes the executor processes' CPU
  time, the statements they sent and the transactions committed, per order. Target: at least
  1,000 orders/s.
* **end to end**: orders enqueued on the FIFO queue at a steady 200 orders/s (in batches of up
  to ten, as the evaluator sends them), taken by the local poller (`tekoa.local.sqs_poller`,
  Lambda's event source mapping) and executed; orders/s and the time from enqueue to the
  fill's commit, p50 and p99. Processes as `tekoa up` runs them: moto's server, the executor
  part (`functions.executor.local`: its pollers and the outbox relay), and this one sending.
  Target: p99 at most 250 ms.
"""

from __future__ import annotations

import multiprocessing
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from functions.executor import local as local_executor
from functions.executor.handler import ExecutorHandler
from tekoa.aws.clients import aws_client
from tekoa.aws.events import EventBridgePublisher
from tekoa.aws.queues import SqsOrderQueue
from tekoa.db import markets as market_rows
from tekoa.db import users
from tekoa.db.connection import PooledDatabase, connect, service_transaction, tenant_transaction
from tekoa.db.migrate import migrate
from tekoa.domain.bots import TradingMode
from tekoa.domain.orders import OrderSide, OrderType, place
from tekoa.exchanges.simulated import simulated_rules
from tekoa.execution.accounts import PaperDefaults, open_account
from tekoa.execution.executor import Executor, Result
from tekoa.execution.messages import PlaceMessage, dump_message, group_id
from tekoa.local.aws import LocalAwsEndpoint, provision, use_local_credentials
from tekoa.local.postgres import EmbeddedPostgres, ensure_database
from tekoa.local.sqs_poller import lambda_record
from tekoa.services import bots as bot_service
from tekoa.services import strategies as strategy_service
from tekoa.settings import load_settings

ACCOUNTS = 100
ORDERS_PER_ACCOUNT = 40
E2E_RATE = 200  # orders/s
E2E_SECONDS = 10
SYMBOL = "BTC/USDT"
SCALPER = {
    "timeframe": "1m",
    "fast_ema_period": 9,
    "slow_ema_period": 21,
    "rsi_period": 14,
    "rsi_oversold": 30,
    "rsi_overbought": 70,
    "take_profit_pct": "0.6",
    "stop_loss_pct": "0.3",
    "max_trades_per_hour": 12,
    "order_size": {"amount": "100", "unit": "quote"},
}


@dataclass(frozen=True)
class Row:
    section: str
    case: str
    orders_per_s: float
    p50_ms: float | None = None
    p99_ms: float | None = None
    note: str = ""


@dataclass(frozen=True)
class Trader:
    user_id: uuid.UUID
    account_id: uuid.UUID
    bot_id: uuid.UUID


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def traders(database: PooledDatabase, count: int) -> list[Trader]:
    """Users with a paper account (a large balance) and a bot each, made by the services."""
    made = []
    for _ in range(count):
        with database.connection() as conn, service_transaction(conn):
            user = users.insert_user(conn, f"bench-{uuid.uuid4().hex}@example.com", "x", None)
        strategy = strategy_service.create_strategy(
            database,
            user.id,
            strategy_service.StrategyCreate.model_validate(
                {
                    "name": f"s-{uuid.uuid4().hex[:8]}",
                    "definition": {"kind": "builtin", "bot_type": "scalper", "params": SCALPER},
                }
            ),
        )
        bot = bot_service.create_bot(
            database,
            user.id,
            bot_service.BotCreate(
                name=f"b-{uuid.uuid4().hex[:8]}", strategy_id=strategy.id, exchange="simulated", symbol=SYMBOL
            ),
        )
        with database.connection() as conn, tenant_transaction(conn, user.id):
            account = open_account(
                conn,
                user.id,
                exchange="simulated",
                mode=TradingMode.PAPER,
                paper=PaperDefaults(starting_balance=Decimal(10**9)),
            )
        made.append(Trader(user.id, account.id, bot.id))
    return made


def intent(trader: Trader, leg: str) -> PlaceMessage:
    return PlaceMessage(
        user_id=trader.user_id,
        account_id=trader.account_id,
        bot_id=trader.bot_id,
        exchange="simulated",
        symbol=SYMBOL,
        intent=place(
            str(trader.bot_id), 1_717_200_000_000, leg, OrderSide.BUY, OrderType.MARKET, Decimal("0.001")
        ),
        enqueued_at=now_ms(),
    )


class LastTradeFeed:
    """What the market stream does: keep the market's last trade fresh (about once a second)."""

    def __init__(self, database: PooledDatabase) -> None:
        self.database = database
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _write(self) -> None:
        with self.database.connection() as conn, service_transaction(conn):
            market_rows.record_last_trades(
                conn, [market_rows.LastTrade("simulated", SYMBOL, Decimal("60000.00"), now_ms())]
            )

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self._write()

    def __enter__(self) -> LastTradeFeed:
        self._write()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def lambda_batches(messages: list[PlaceMessage], size: int = 10) -> list[dict[str, Any]]:
    """SQS events as the event source mapping delivers them: up to ten records."""
    records = [
        lambda_record(
            {
                "MessageId": str(uuid.uuid4()),
                "ReceiptHandle": "bench",
                "Body": dump_message(m),
                "Attributes": {"MessageGroupId": group_id(m), "ApproximateReceiveCount": "1"},
            },
            "arn:aws:sqs:us-east-1:123456789012:bench.fifo",
            "us-east-1",
        )
        for m in messages
    ]
    return [{"Records": records[i : i + size]} for i in range(0, len(records), size)]


def _invocations(
    url: str, aws: dict[str, str] | None, batches: list[dict[str, Any]], go: Any, out: Any
) -> None:
    """One Lambda instance (its own process, as Lambda runs them): wait for `go`, handle the
    batches in turn, report (started, finished, failed records, CPU seconds, statements sent)."""
    database = PooledDatabase(url, max_size=2)
    publisher = EventBridgePublisher(load_settings(**aws)) if aws else None
    handler = ExecutorHandler(Executor(database, _no_live, publisher=publisher))
    statements = [0]
    execute = psycopg.Cursor.execute

    def counted(cursor: Any, *args: Any, **kwargs: Any) -> Any:
        statements[0] += 1
        return execute(cursor, *args, **kwargs)

    psycopg.Cursor.execute = counted  # type: ignore[method-assign,assignment]
    go.wait()
    started, cpu = time.time(), time.process_time()
    failed = sum(len(handler(batch, None)["batchItemFailures"]) for batch in batches)
    out.put((started, time.time(), failed, time.process_time() - cpu, statements[0]))
    database.close()


def _commits(url: str) -> int:
    with connect(url) as conn:
        row = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    return int(row[0]) if row else 0


def bench_executor(url: str, people: list[Trader], aws: dict[str, str]) -> list[Row]:
    rows = []
    runs = [
        (1, None, "events to the outbox"),
        (4, None, "events to the outbox"),
        (4, aws, "events on EventBridge"),
    ]
    spawn = multiprocessing.get_context("spawn")
    for run, (workers, bus, note) in enumerate(runs):
        messages = [intent(t, f"r{run}-{k}") for k in range(ORDERS_PER_ACCOUNT) for t in people]
        batches = lambda_batches(messages)
        go, out = spawn.Event(), spawn.Queue()
        processes = [
            spawn.Process(target=_invocations, args=(url, bus, batches[i::workers], go, out))
            for i in range(workers)
        ]
        for process in processes:
            process.start()
        time.sleep(3)  # imports and connections, before the clock starts
        commits = _commits(url)
        go.set()
        reports = [out.get(timeout=600) for _ in processes]
        for process in processes:
            process.join()
        commits = _commits(url) - commits
        failures = sum(r[2] for r in reports)
        assert failures == 0, f"{failures} records failed"
        elapsed = max(r[1] for r in reports) - min(r[0] for r in reports)
        orders = len(messages)
        cpu_ms = sum(r[3] for r in reports) * 1000 / orders
        per_order = sum(r[4] for r in reports) / orders
        rows.append(
            Row(
                "executor",
                f"paper market orders, batches of 10, {workers} invocation(s)",
                orders / elapsed,
                note=f"{note}; executor CPU {cpu_ms:.2f} ms, {per_order:.1f} statements,"
                f" {commits / orders:.2f} commits per order",
            )
        )
    return rows


class _NoLive:
    def live(self, *_: object) -> Any:
        raise AssertionError("paper only")


_no_live = _NoLive()


def _executor_part(url: str, aws: dict[str, str], stop: Any, out: Any) -> None:
    """The executor as `tekoa up` runs it (`functions.executor.local`): its own process, pollers
    on the order queue and the outbox relay beside them.

    Reports when each order's fill committed (wall clock, as the producer's)."""
    settings = load_settings(**aws)
    database = PooledDatabase(url, max_size=local_executor.POLLERS + 2)
    executor = Executor(database, _no_live)
    committed: dict[str, float] = {}
    handle_batch = executor.handle_batch

    def timed(messages: Any) -> list[Result | Exception]:
        results = handle_batch(messages)
        at = time.time()
        for message, result in zip(messages, results, strict=True):
            if isinstance(result, Result):
                committed[message.intent.client_order_id] = at
        return results

    executor.handle_batch = timed  # type: ignore[method-assign]
    halt = threading.Event()
    threads = local_executor.start(settings, database, executor, halt)
    stop.wait()
    halt.set()
    for thread in threads:
        thread.join(timeout=10)
    out.put(committed)
    database.close()


def _offer(queue: SqsOrderQueue, people: list[Trader]) -> tuple[dict[str, float], float]:
    """Send E2E_RATE orders/s for E2E_SECONDS: what is due every 50 ms, in batches of up to
    ten, as the evaluator does; when each order was enqueued, and when sending started."""
    enqueued: dict[str, float] = {}
    started = time.time()
    sent = 0
    while sent < E2E_RATE * E2E_SECONDS:
        due = min(E2E_RATE * E2E_SECONDS, int((time.time() - started) * E2E_RATE) + 1)
        batch = [intent(people[n % len(people)], f"e2e-{n}") for n in range(sent, due)]
        for message in batch:
            enqueued[message.intent.client_order_id] = time.time()
        queue.send(batch)
        sent = due
        time.sleep(max(0.05, started + sent / E2E_RATE - time.time()))
    return enqueued, started


def _in_queue(sqs: Any, queue_url: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    counts = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]
    return sum(int(counts[name]) for name in names)


def bench_end_to_end(url: str, people: list[Trader], aws: dict[str, str]) -> list[Row]:
    settings = load_settings(**aws)
    sqs = aws_client("sqs", settings)
    queue = SqsOrderQueue(settings)
    spawn = multiprocessing.get_context("spawn")
    stop, out = spawn.Event(), spawn.Queue()
    part = spawn.Process(target=_executor_part, args=(url, aws, stop, out))
    part.start()
    try:
        time.sleep(5)  # the part starts polling
        enqueued, started = _offer(queue, people)
        deadline = time.time() + 60
        while _in_queue(sqs, queue.url) and time.time() < deadline:
            time.sleep(0.2)
    finally:
        stop.set()
    committed = out.get(timeout=60)
    part.join()
    elapsed = max(committed.values()) - started
    latencies = np.array([(committed[k] - enqueued[k]) * 1000 for k in enqueued if k in committed])
    return [
        Row(
            "end to end",
            f"{E2E_RATE} orders/s offered for {E2E_SECONDS} s, {local_executor.POLLERS} pollers",
            len(latencies) / elapsed,
            float(np.percentile(latencies, 50)),
            float(np.percentile(latencies, 99)),
            note=f"{len(latencies)}/{E2E_RATE * E2E_SECONDS} committed; enqueue -> fill committed",
        )
    ]


def _aws_part(port: int) -> None:
    """moto's server as `tekoa up` runs it: its own process."""
    LocalAwsEndpoint(port=port).start()
    threading.Event().wait()


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
            provision(load_settings(**aws))
            database = PooledDatabase(url, max_size=4)
            with database.connection() as conn, service_transaction(conn):
                market_rows.upsert_rules(conn, [simulated_rules(SYMBOL)])
            people = traders(database, ACCOUNTS)
            with LastTradeFeed(database):
                with connect(url) as conn:
                    conn.execute("ANALYZE")
                rows = bench_executor(url, people, aws) + bench_end_to_end(url, people, aws)
            database.close()
        finally:
            endpoint.terminate()
            server.stop()
    _print(rows)
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


def _print(rows: list[Row]) -> None:
    print(f"{'section':<11} {'case':<58} {'orders/s':>9} {'p50 ms':>8} {'p99 ms':>8}  note")
    for r in rows:
        p50 = "" if r.p50_ms is None else f"{r.p50_ms:.1f}"
        p99 = "" if r.p99_ms is None else f"{r.p99_ms:.1f}"
        print(f"{r.section:<11} {r.case:<58} {r.orders_per_s:>9.0f} {p50:>8} {p99:>8}  {r.note}")


if __name__ == "__main__":
    main()
