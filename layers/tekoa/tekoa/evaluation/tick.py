"""One evaluator tick: every due running bot decides on its newest closed candle, once.

1. **Select**: the running bots of the markets the invocation names (all, one shard, or the
   series of a `candle.closed` event), each due when its candle — the event's, or the newest
   stored candle of its series — is newer than the last one it saw.
2. **Load**: candles once per (market, timeframe) with the union of the bots' lookbacks (one
   query for every series, a row of binary arrays per series), then one `MarketData` per
   market: bots on the same market share every indicator and condition array (`tekoa.engine`
   memoises them on the data).
3. **Decide**: each bot's state from the database (position, the orders it asked for that
   are not final, fills not shown to it yet, memory, money) into `tekoa.engine.decide`.
4. **Check**: the pre-trade risk checks (`tekoa.risk.checks`) on every intent, after the
   circuit breaker assessed each user (`tekoa.risk.breaker`). Unreadable risk state rejects.
   The candle's path also runs through an open position's protection: the position manager's
   candle-close fallback (the market stream checks every trade), with the same exit ids.
5. **Record**: one evaluation per (bot, candle) — UNIQUE, so a repeated tick inserts nothing
   — with the runtime (memory, orders) in the same transaction; only the bots whose row went
   in go on.
6. **Send**: their intents to the order queue in batches, then mark the evaluations sent (a
   crash in between leaves them for the next tick to send again: the ids make it harmless).

A market without a fresh candle gets a *skipped* evaluation with the reason; after
`max_skips` in a row the bot goes to `error` with the reason in its activity log.
"""

from __future__ import annotations

import gc
import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import numpy as np
from pydantic import TypeAdapter

from tekoa.aws.events import BusEvent, EventPublisher
from tekoa.aws.queues import OrderQueue
from tekoa.backtest.data import resampled, timeframes_needed
from tekoa.db import accounts as account_rows
from tekoa.db import activity as activity_rows
from tekoa.db import evaluations as rows
from tekoa.db import risk as risk_rows
from tekoa.db.candle_copy import read_frames
from tekoa.db.connection import Database, service_transaction
from tekoa.domain.bots import RiskSettings, TradingMode
from tekoa.domain.execution import FINAL_STATUSES, TradingState
from tekoa.domain.orders import CancelIntent, Intent, OrderIntent
from tekoa.domain.resources import ActivityLevel
from tekoa.domain.timeframes import Timeframe
from tekoa.domain.trading import (
    BotMemory,
    BotState,
    Fill,
    Position,
    PositionSide,
    ProtectionState,
    RestingOrder,
)
from tekoa.engine import MarketData, MarketView, decide
from tekoa.engine import protection as pr
from tekoa.engine.decision import Decision
from tekoa.execution.accounts import PaperDefaults, open_account
from tekoa.execution.messages import CancelMessage, OrderMessage, PlaceMessage
from tekoa.market.frame import CandleFrame
from tekoa.market.stream.positions import Guarded, exit_intent, natively_stopped
from tekoa.names import EventType
from tekoa.observability import logger
from tekoa.risk import breaker
from tekoa.risk.checks import Checked, RiskContext, Verdict, check_intents
from tekoa.risk.limits import RiskLimits, RiskTracking, stricter
from tekoa.strategies.models import STRATEGY_ADAPTER, RulesStrategy, StrategyDefinition
from tekoa.strategies.rules import lookback_by_timeframe

_ORDERS: TypeAdapter[list[RestingOrder]] = TypeAdapter(list[RestingOrder])
_MAX_CACHED_VERSIONS = 50_000
_FAIL_CLOSED = "risk state could not be read: every order is refused until it can (fail closed)"


@dataclass(frozen=True, slots=True)
class EvaluatorConfig:
    """The evaluator's knobs (`tekoa.settings.Settings.evaluator_*`)."""

    max_skips: int = 5
    """Skipped evaluations in a row that put a bot in error."""
    max_feed_age_s: float = 180.0
    """A market whose stream recorded no trade for this long is stale."""
    builtin_lookback: int = 500
    """Bars the built-in bot types get (their longest indicator converges well within)."""
    max_lookback: int = 5000
    fanout_threshold: int = 2000
    """Past this many running bots, a schedule tick fans out by market shard."""
    shards: int = 8
    orders_ttl_ms: int = 3_600_000
    """An order the executor never recorded is forgotten after this long (lost message)."""
    paper: PaperDefaults = field(default_factory=PaperDefaults)


@dataclass(frozen=True, slots=True)
class Due:
    """What a tick evaluates: a series' candle (event) or each series' newest (schedule)."""

    filter: rows.MarketFilter = field(default_factory=rows.MarketFilter)
    candle_open_time: int | None = None
    """The event's candle; None: the newest stored candle of each bot's series."""


@dataclass
class TickReport:
    """What one tick did, with the time of each phase in seconds."""

    bots: int = 0
    evaluated: int = 0
    skipped: int = 0
    repeated: int = 0
    intents: int = 0
    rejected: int = 0
    failed_bots: int = 0
    phases: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    """Each phase's CPU time in this process (seconds): less sensitive to a busy machine than
    the wall time, and without the database's share."""

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.phases[name] = self.phases.get(name, 0.0) + time.perf_counter() - start
            self.cpu[name] = self.cpu.get(name, 0.0) + time.process_time() - cpu


@dataclass
class _Bot:
    row: dict[str, Any]
    strategy: StrategyDefinition
    timeframe: Timeframe
    candle: int
    lookback: int
    id: UUID
    user_id: UUID
    market: tuple[str, str]
    close: Decimal = Decimal(0)
    exits: list[Intent] = field(default_factory=list)
    account_id: UUID | None = None
    orders: list[RestingOrder] = field(default_factory=list)
    remembered: list[RestingOrder] = field(default_factory=list)
    """The orders as read from the runtime: `orders` is this very list when none ended."""
    decision: Decision | None = None
    skip: str | None = None
    checked: list[Checked] = field(default_factory=list)
    fills_seen: list[UUID] = field(default_factory=list)


class Evaluator:
    """Runs ticks against the database, the order queue and (optionally) the bus."""

    def __init__(
        self,
        database: Database,
        queue: OrderQueue,
        *,
        publisher: EventPublisher | None = None,
        config: EvaluatorConfig | None = None,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.database = database
        self.queue = queue
        self.publisher = publisher
        self.config = config or EvaluatorConfig()
        self.clock_ms = clock_ms
        self._strategies: dict[tuple[UUID, int], StrategyDefinition] = {}
        self._definitions: dict[str, StrategyDefinition] = {}
        self._orders_parsed: dict[UUID, tuple[str, list[RestingOrder]]] = {}
        """Each bot's order list as parsed last tick, with its text: a grid's ladder is the
        same from one candle to the next (its runtime keeps the stored text), so it is parsed
        once rather than every tick. Only the last tick's bots are kept."""

    # -- the tick ------------------------------------------------------------------------------

    def tick(self, due: Due = Due()) -> TickReport:
        with _collector_paused():
            return self._tick(due)

    def _tick(self, due: Due) -> TickReport:
        report = TickReport()
        events: list[BusEvent] = []
        with self.database.connection() as conn:
            self._resend_unsent(conn)
            with report.phase("bots loaded"), service_transaction(conn):
                bots = self._due_bots(conn, due)
                report.bots = len(bots)
                if not bots:
                    return report
                self._open_paper_accounts(conn, bots)
                facts = self._facts(conn, bots)
            with report.phase("candles loaded"), service_transaction(conn):
                frames = self._frames(conn, bots)
            with report.phase("indicators computed"):
                data = self._market_data(bots, frames)
            with report.phase("decisions made"):
                self._decide_all(bots, data, facts)
            with report.phase("risk checked"), service_transaction(conn):
                users = self._assess_users(conn, bots, facts, events)
                for bot in bots:
                    if bot.decision is None:
                        continue
                    # Protective exits pass as they are (an exit must never be held back).
                    bot.checked = [Checked(i, Verdict.APPROVED) for i in bot.exits]
                    if bot.decision.intents:  # most decisions on most candles: nothing to check
                        bot.checked += check_intents(
                            bot.decision.intents, self._risk_context(bot, facts, users)
                        )
            with report.phase("evaluations written"), service_transaction(conn):
                written = self._record(conn, bots, report, events)
            with report.phase("intents enqueued"):
                self._send(conn, [bot for bot in bots if bot.id in written], written, report)
        self._publish(events)
        return report

    # -- selection -----------------------------------------------------------------------------

    def _due_bots(self, conn: Any, due: Due) -> list[_Bot]:
        found = rows.running_bots(conn, due.filter)
        self._load_strategies(conn, found)
        newest = (
            rows.newest_candles(conn, {(r["exchange"], r["symbol"], r["timeframe"]) for r in found})
            if due.candle_open_time is None
            else {}
        )
        bots = []
        for row in found:
            timeframe = Timeframe(row["timeframe"])
            stored = (
                newest.get((row["exchange"], row["symbol"], row["timeframe"]))
                if due.candle_open_time is None
                else None
            )
            if due.candle_open_time is not None:
                candle = due.candle_open_time
            elif stored is not None:
                candle = stored
            else:  # nothing stored: the bot is due on the wall clock's candle (and skips: no data)
                candle = (self.clock_ms() // timeframe.ms - 1) * timeframe.ms
            last = row["last_candle"]
            if last is not None and candle <= last:
                continue
            strategy = self._strategies[(row["strategy_id"], row["strategy_version"])]
            bots.append(
                _Bot(
                    row=row,
                    strategy=strategy,
                    timeframe=timeframe,
                    candle=candle,
                    lookback=self._lookback(strategy, timeframe),
                    id=row["id"],
                    user_id=row["user_id"],
                    market=(row["exchange"], row["symbol"]),
                    account_id=row["account_id"],
                )
            )
        return bots

    def _load_strategies(self, conn: Any, found: list[dict[str, Any]]) -> None:
        """Parse the pinned definitions this process has not seen yet. A version never changes
        (decision 44), so a parsed definition is kept for the life of the process (a warm
        Lambda). Equal definitions (many users run a type's defaults) are one object, so their
        bots share the engine's compiled brain and memoised arrays, which are keyed by it."""
        if len(self._strategies) > _MAX_CACHED_VERSIONS:  # versions no bot runs any more pile up
            self._strategies.clear()
            self._definitions.clear()
        missing = {(row["strategy_id"], row["strategy_version"]) for row in found} - self._strategies.keys()
        for key, text in rows.strategy_definitions(conn, missing).items():
            strategy = STRATEGY_ADAPTER.validate_json(text)
            canonical = strategy.model_dump_json()
            self._strategies[key] = self._definitions.setdefault(canonical, strategy)

    def _lookback(self, strategy: StrategyDefinition, primary: Timeframe) -> int:
        """Primary bars to load: what the rules read (coarser timeframes in primary bars), three
        times over so recursive indicators (EMA, RSI) have converged, within the bounds."""
        if not isinstance(strategy, RulesStrategy):
            return self.config.builtin_lookback
        needs = lookback_by_timeframe(strategy.rules)
        bars = max(n * max(1, t.ms // primary.ms) for t, n in needs.items())
        return max(200, min(self.config.max_lookback, 3 * bars + 10))

    def _open_paper_accounts(self, conn: Any, bots: list[_Bot]) -> None:
        for bot in bots:
            if bot.account_id is not None:
                continue
            if TradingMode(bot.row["mode"]) is TradingMode.PAPER:
                account = open_account(
                    conn, bot.user_id, exchange=bot.market[0], mode=TradingMode.PAPER, paper=self.config.paper
                )
                bot.account_id = account.id
                bot.row.update(account_state=account.trading_state.value, account_reason=None)
            else:
                bot.skip = f"no live account on {bot.market[0]}: open one with POST /v1/accounts"

    # -- facts ---------------------------------------------------------------------------------

    def _facts(self, conn: Any, bots: list[_Bot]) -> dict[str, Any]:
        ids = [bot.id for bot in bots]
        accounts = {bot.account_id for bot in bots if bot.account_id is not None}
        markets = {bot.market for bot in bots}
        parsed = self._orders_parsed
        self._orders_parsed = {}
        for bot in bots:
            text = bot.row["orders"]
            if not text or text == "[]":
                continue
            known = parsed.get(bot.id)
            orders = known[1] if known is not None and known[0] == text else _ORDERS.validate_json(text)
            bot.remembered = orders
            self._orders_parsed[bot.id] = (text, orders)
        statuses = rows.order_statuses(conn, (o.client_order_id for bot in bots for o in bot.remembered))
        now = self.clock_ms()
        for bot in bots:
            kept = [
                order
                for order in bot.remembered
                if (
                    (status := statuses.get(order.client_order_id)) is None
                    and now - order.placed_at < self.config.orders_ttl_ms + bot.timeframe.ms
                )
                or (status is not None and status not in _FINAL)
            ]
            bot.orders = bot.remembered if len(kept) == len(bot.remembered) else kept
        money = rows.account_money(conn, list(accounts))
        positions = rows.open_positions(conn, ids)
        return {
            "positions": positions,
            "native_stops": rows.bots_with_native_stops(
                conn,
                [
                    bot.id
                    for bot in bots
                    if bot.id in positions and natively_stopped(bot.market[0], bot.row["mode"])
                ],
            ),
            "fills": rows.unseen_fills(conn, ids),
            "money": money,
            # (available, equity) once per account: a hundred bots may share one.
            "cash": {
                account_id: (
                    Decimal(books["available"]),
                    Decimal(books["available"]) + Decimal(books["held"]) + Decimal(books["positions"]),
                )
                for account_id, books in money.items()
            },
            "markets": rows.markets(conn, markets),
            "feeds": rows.feed_ages(conn, markets),
            "order_counts": rows.recent_order_counts(conn, ids),
        }

    # -- candles and indicators ---------------------------------------------------------------

    def _frames(self, conn: Any, bots: list[_Bot]) -> dict[tuple[str, str, Timeframe], CandleFrame]:
        windows: dict[tuple[str, str, Timeframe], tuple[int, int]] = {}
        for bot in bots:
            if bot.skip is not None:
                continue
            key = (*bot.market, bot.timeframe)
            start = bot.candle - bot.lookback * bot.timeframe.ms
            end = bot.candle + bot.timeframe.ms
            lo, hi = windows.get(key, (start, end))
            windows[key] = (min(lo, start), max(hi, end))
        return read_frames(conn, windows) if windows else {}

    def _market_data(
        self, bots: list[_Bot], frames: dict[tuple[str, str, Timeframe], CandleFrame]
    ) -> dict[tuple[str, str, Timeframe], MarketData]:
        """One MarketData per (market, primary timeframe, candle): coarser timeframes the rules
        read are resampled from the primary frame, as the backtester does."""
        needed: dict[tuple[str, str, Timeframe], set[Timeframe]] = defaultdict(set)
        for bot in bots:
            if bot.skip is None:
                needed[(*bot.market, bot.timeframe)].update(timeframes_needed(bot.strategy))
        data = {}
        for key, timeframes in needed.items():
            primary = frames[key]
            result = {key[2]: primary}
            for timeframe in timeframes - {key[2]}:
                if len(primary) and timeframe.ms > key[2].ms and timeframe.ms % key[2].ms == 0:
                    result[timeframe] = resampled(primary, timeframe)
            data[key] = MarketData(result, symbol=key[1])
        return data

    # -- decisions -----------------------------------------------------------------------------

    def _decide_all(
        self, bots: list[_Bot], data: dict[tuple[str, str, Timeframe], MarketData], facts: dict[str, Any]
    ) -> None:
        """Each bot's decision; what is the same for every bot of a market (its freshness, its
        last bar) is settled once per market."""
        by_market: dict[tuple[str, str, Timeframe], list[_Bot]] = defaultdict(list)
        for bot in bots:
            if bot.skip is None:
                by_market[(*bot.market, bot.timeframe)].append(bot)
        for key, group in by_market.items():
            market = data[key]
            frame = market.frames[key[2]]
            age = facts["feeds"].get(key[:2])
            view = market.last(key[2]) if len(frame) else None
            newest = None if view is None else view.open_time
            close = Decimal(repr(float(frame.close[-1]))) if len(frame) else Decimal(0)
            for bot in group:
                if view is None or newest != bot.candle:
                    bot.skip = "no data: the market has no candle for this period"
                elif age is None:
                    bot.skip = "stale data: no trade recorded on this market"
                elif age > self.config.max_feed_age_s:
                    bot.skip = f"stale data: the last trade was recorded {int(age)} s ago"
                else:
                    self._decide(bot, view, close, facts)

    def _decide(self, bot: _Bot, view: MarketView, close: Decimal, facts: dict[str, Any]) -> None:
        bot.close = close
        bot.exits = self._protective_exits(
            bot, view.frame, facts["positions"].get(bot.id), native=bot.id in facts["native_stops"]
        )
        try:
            bot.decision = decide(bot.strategy, view, self._state(bot, facts))
        except Exception as exc:  # a bug or bad data in one bot must not stop the others
            logger.exception("a bot's decision failed", extra={"bot_id": str(bot.id)})
            bot.skip = f"the decision failed: {type(exc).__name__}: {exc}"[:500]

    def _protective_exits(
        self, bot: _Bot, frame: CandleFrame, position: dict[str, Any] | None, *, native: bool
    ) -> list[Intent]:
        """The candle-close fallback of the position manager: the candle's path through the
        position's protection. Its exits carry the ids the stream's would, so an exit the
        stream already sent is not placed twice. A stop working on the exchange (`native`) is
        left to the exchange, as the stream leaves it."""
        if position is None or position["protection"] is None or bot.account_id is None:
            return []
        vector = pr.from_state(ProtectionState.model_validate_json(position["protection"]), PositionSide.LONG)
        size = pr.MAX_TARGETS + 1
        kinds, points = np.zeros(size, dtype=np.int64), np.zeros(size, dtype=np.int64)
        refs, fractions = np.zeros(size), np.zeros(size)
        written = pr.on_candle(
            vector,
            float(frame.open[-1]),
            float(frame.high[-1]),
            float(frame.low[-1]),
            float(frame.close[-1]),
            kinds,
            refs,
            fractions,
            points,
        )
        guarded = Guarded(
            position_id=position["id"],
            user_id=bot.user_id,
            account_id=bot.account_id,
            bot_id=bot.id,
            exchange=bot.market[0],
            symbol=bot.market[1],
            quantity=position["quantity"],
            entry_quantity=position["entry_quantity"],
            opened_ms=position["opened_ms"],
        )
        legs = [(k, pr.exit_leg(int(kinds[k]))) for k in range(written)]
        return [
            exit_intent(guarded, leg, float(fractions[k]), float(refs[k]))
            for k, leg in legs
            if not (native and leg == "stop")
        ]

    def _state(self, bot: _Bot, facts: dict[str, Any]) -> BotState:
        tf = bot.timeframe.ms
        position = facts["positions"].get(bot.id)
        available, equity = facts["cash"].get(bot.account_id, (Decimal(0), Decimal(0)))
        fills = []
        for fill in facts["fills"].get(bot.id, []):
            fills.append(
                Fill(
                    client_order_id=fill["client_order_id"],
                    leg=fill["leg"] or "manual",
                    side=fill["side"],
                    quantity=fill["quantity"],
                    price=fill["price"],
                    fee=fill["fee"],
                    time=fill["executed_at"] // tf * tf,
                )
            )
            bot.fills_seen.append(fill["id"])
        return BotState(
            bot_id=str(bot.id),
            cash=available,
            equity=equity,
            position=None
            if position is None
            else Position(
                side=PositionSide.LONG,
                quantity=position["quantity"],
                average_entry=position["average_entry"],
                entry_quantity=position["entry_quantity"],
                opened_at=position["opened_ms"] // tf * tf,
                protection=None
                if position["protection"] is None
                else ProtectionState.model_validate_json(position["protection"]),
            ),
            orders=tuple(bot.orders),
            fills=tuple(fills),
            memory=BotMemory.model_validate_json(bot.row["memory"] or "{}"),
        )

    # -- risk ----------------------------------------------------------------------------------

    def _assess_users(
        self, conn: Any, bots: list[_Bot], facts: dict[str, Any], events: list[BusEvent]
    ) -> dict[UUID, tuple[RiskLimits, RiskTracking] | None]:
        """Each user's limits and state after the circuit breaker saw their money now; None for
        a user whose risk state could not be read (their intents are refused)."""
        user_ids = sorted({bot.user_id for bot in bots})
        try:
            with conn.transaction():
                risks: dict[UUID, tuple[RiskLimits, RiskTracking] | None] = dict(
                    risk_rows.user_risks(conn, user_ids)
                )
        except Exception:
            logger.exception("risk state unreadable; refusing the tick's orders")
            return dict.fromkeys(user_ids)
        accounts = rows.user_accounts(conn, user_ids)
        money = rows.account_money(conn, [a for ids in accounts.values() for a in ids])
        facts["open_positions"] = rows.open_position_counts(conn, user_ids)
        today = datetime.now(UTC).date()
        for user_id in user_ids:
            found = risks[user_id]
            assert found is not None
            limits, tracking = found
            books = [money[a] for a in accounts.get(user_id, []) if a in money]
            if not books:
                continue
            performance = breaker.Performance(
                equity=sum((Decimal(b["available"]) + b["held"] + b["positions"] for b in books), Decimal(0)),
                capital=sum((Decimal(b["capital"]) for b in books), Decimal(0)),
            )
            updated, tripped = breaker.assess(tracking, performance, limits, today)
            if updated != tracking:
                risk_rows.save_tracking(conn, user_id, updated)
                risks[user_id] = (limits, updated)
            if tripped is not None:
                events.append(
                    BusEvent(
                        EventType.RISK_TRIPPED,
                        {"user_id": str(user_id), "state": updated.state.value, "reason": tripped},
                    )
                )
                activity_rows.insert_activity(
                    conn, user_id, level=ActivityLevel.WARNING, message=f"Risk: {tripped}; exits only"
                )
        facts["platform"] = account_rows.platform_trading_state(conn)
        return risks

    def _risk_context(
        self, bot: _Bot, facts: dict[str, Any], users: dict[UUID, tuple[RiskLimits, RiskTracking] | None]
    ) -> RiskContext:
        decision = bot.decision
        assert decision is not None
        risk = users.get(bot.user_id)
        platform_state, platform_reason = facts.get("platform", (TradingState.HALTED, _FAIL_CLOSED))
        market = facts["markets"].get(bot.market, {})
        position = facts["positions"].get(bot.id)
        reason: str | None
        if risk is None:
            state, reason, limits = TradingState.HALTED, _FAIL_CLOSED, RiskLimits()
        else:
            limits, tracking = risk
            state, reason = tracking.state, tracking.reason
            why: str | None
            account_state = TradingState(bot.row.get("account_state") or "active")
            for other, why in (
                (account_state, bot.row.get("account_reason")),
                (platform_state, platform_reason),
            ):
                if stricter(state, other) is not state:
                    state, reason = other, why
        return RiskContext(
            state=state,
            state_reason=reason,
            limits=limits,
            settings=RiskSettings.model_validate_json(bot.row["risk"]),
            equity=decision.state.equity,
            reference_price=bot.close,
            last_price=market.get("last_price"),
            min_notional=market.get("min_notional"),
            position_quantity=Decimal(0) if position is None else position["quantity"],
            orders_last_minute=facts["order_counts"].get(bot.id, 0),
            user_open_positions=facts.get("open_positions", {}).get(bot.user_id, 0),
        )

    # -- recording and sending -----------------------------------------------------------------

    def _record(
        self, conn: Any, bots: list[_Bot], report: TickReport, events: list[BusEvent]
    ) -> dict[UUID, int]:
        evaluations = []
        for bot in bots:
            if bot.decision is None:
                evaluations.append(
                    rows.EvaluationRow(
                        bot.user_id,
                        bot.id,
                        bot.candle,
                        bot.timeframe.value,
                        bot.row["strategy_version"],
                        outcome="skipped",
                        signal="none",
                        reason=bot.skip or "skipped",
                    )
                )
                continue
            why = bot.decision.why
            checked = bot.checked
            passed = [c.intent for c in checked if c.passed]
            evaluations.append(
                rows.EvaluationRow(
                    bot.user_id,
                    bot.id,
                    bot.candle,
                    bot.timeframe.value,
                    bot.row["strategy_version"],
                    outcome="decided",
                    signal=_signal(passed),
                    reason=why.reason,
                    score=why.score,
                    matched=json.dumps(why.matched) if why.matched else "[]",
                    risk_verdict=_verdict(checked),
                    risk=json.dumps(
                        [
                            {
                                "client_order_id": c.intent.client_order_id,
                                "verdict": c.verdict.value,
                                "reason": c.reason,
                            }
                            for c in checked
                        ]
                    )
                    if checked
                    else "[]",
                    intents=_INTENTS.dump_json(passed).decode() if passed else "[]",
                )
            )
        written = rows.insert_evaluations(conn, evaluations)
        runtime = []
        seen = []
        to_fail = []
        for bot in bots:
            if bot.id not in written:
                report.repeated += 1
                continue
            skips = 0
            memory = bot.row["memory"] or "{}"
            orders = bot.orders
            if bot.decision is None:
                report.skipped += 1
                skips = (bot.row["skips"] or 0) + 1
                if skips >= self.config.max_skips:
                    to_fail.append(bot)
            else:
                report.evaluated += 1
                memory = bot.decision.state.memory.model_dump_json()
                orders = _orders_after(bot.orders, bot.checked, bot.decision.intents)
                report.intents += sum(1 for c in bot.checked if c.passed)
                report.rejected += sum(1 for c in bot.checked if not c.passed)
                seen += [(fill_id, bot.user_id, bot.id) for fill_id in bot.fills_seen]
            runtime.append(
                rows.RuntimeRow(
                    bot_id=bot.id,
                    user_id=bot.user_id,
                    memory=memory,
                    # Unchanged on most candles: a grid's ladder is kilobytes of JSON.
                    orders=None if orders is bot.remembered else _ORDERS.dump_json(orders).decode(),
                    last_candle=bot.candle,
                    skips=skips,
                    exists=bot.row["memory"] is not None,
                )
            )
        rows.save_runtime(conn, runtime)
        rows.mark_fills_seen(conn, seen)
        for bot in to_fail:
            from tekoa.services.bots import fail_bot

            reason = f"{self.config.max_skips} evaluations in a row skipped; the last: {bot.skip}"
            if (event := fail_bot(conn, bot.user_id, bot.id, reason)) is not None:
                report.failed_bots += 1
                events.append(event)
        return written

    def _send(self, conn: Any, bots: Sequence[_Bot], written: dict[UUID, int], report: TickReport) -> None:
        messages: list[OrderMessage] = []
        sent: list[int] = []
        now = self.clock_ms()
        for bot in bots:
            passed = [c.intent for c in bot.checked if c.passed]
            if not passed or bot.account_id is None:
                continue
            messages += [
                _message(bot.user_id, bot.account_id, bot.id, *bot.market, intent, now) for intent in passed
            ]
            sent.append(written[bot.id])
        if not messages:
            return
        self.queue.send(messages)
        with service_transaction(conn):
            rows.mark_sent(conn, sent)

    def _resend_unsent(self, conn: Any) -> None:
        """Send again what a crashed tick decided but never confirmed sent."""
        with service_transaction(conn):
            stuck = rows.unsent(conn, older_than_s=30, limit=1000)
        if not stuck:
            return
        now = self.clock_ms()
        messages = [
            _message(
                row["user_id"], row["account_id"], row["bot_id"], row["exchange"], row["symbol"], intent, now
            )
            for row in stuck
            for intent in _INTENTS.validate_json(row["intents"])
        ]
        self.queue.send(messages)
        with service_transaction(conn):
            rows.mark_sent(conn, [row["id"] for row in stuck])
        logger.warning("re-sent the intents of unsent evaluations", extra={"evaluations": len(stuck)})

    def _publish(self, events: list[BusEvent]) -> None:
        if not events or self.publisher is None:
            return
        try:
            self.publisher.publish(events)
        except Exception:
            logger.exception("publishing evaluator events failed", extra={"events": len(events)})


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection during a tick. A tick allocates a few hundred thousand
    short-lived objects (rows, models, intents), freed by reference counting; each 700 of them
    started a collection that walked the process's large, long-lived heap (numba, pydantic
    schemas): 40 % of the tick's CPU. The collector resumes after the tick."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


_FINAL = {status.value for status in FINAL_STATUSES}
_INTENTS: TypeAdapter[list[Intent]] = TypeAdapter(list[Intent])


def _message(
    user_id: UUID, account_id: UUID, bot_id: UUID, exchange: str, symbol: str, intent: Intent, now: int
) -> OrderMessage:
    if isinstance(intent, CancelIntent):
        return CancelMessage(
            user_id=user_id,
            account_id=account_id,
            enqueued_at=now,
            target_client_order_id=intent.target_client_order_id,
            reason=intent.reason[:200],
            intent=intent,
        )
    return PlaceMessage(
        user_id=user_id,
        account_id=account_id,
        enqueued_at=now,
        bot_id=bot_id,
        exchange=exchange,
        symbol=symbol,
        intent=intent,
    )


def _orders_after(
    before: list[RestingOrder], checked: list[Checked], intents: Sequence[Intent]
) -> list[RestingOrder]:
    """The bot's orders after this decision: cancelled ones out, placed ones in — as the bot
    asked for them (the quantity before any resizing), so it recognises them next time."""
    if not checked:
        return before
    cancelled = {c.intent.target_client_order_id for c in checked if isinstance(c.intent, CancelIntent)}
    passed = {c.intent.client_order_id for c in checked if c.passed}
    out = [order for order in before if order.client_order_id not in cancelled]
    for intent in intents:
        if isinstance(intent, OrderIntent) and intent.client_order_id in passed:
            out.append(
                RestingOrder(
                    client_order_id=intent.client_order_id,
                    leg=intent.leg,
                    side=intent.side,
                    type=intent.type,
                    price=intent.price,
                    quantity=intent.quantity,
                    reduce_only=intent.reduce_only,
                    placed_at=intent.candle_open_time,
                )
            )
    return out


def _signal(intents: Sequence[Intent]) -> str:
    for intent in intents:
        if isinstance(intent, OrderIntent):
            return intent.side.value
    return "none"


def _verdict(checked: Sequence[Checked]) -> str | None:
    verdicts = {c.verdict for c in checked if isinstance(c.intent, OrderIntent)}
    if not verdicts:
        return None
    if len(verdicts) > 1:
        return "mixed"
    return next(iter(verdicts)).value
