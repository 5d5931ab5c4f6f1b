"""The evaluator against real PostgreSQL and the moto order queue: once per bot and candle,
skips with reasons, bot health, risk verdicts, pinned strategy versions."""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from tekoa.db.connection import service_transaction, tenant_transaction
from tekoa.db.evaluations import MarketFilter
from tekoa.domain.timeframes import Timeframe
from tekoa.evaluation.tick import Due
from tekoa.execution.messages import PlaceMessage
from tekoa.services import activity as activity_service
from tekoa.services import strategies as strategy_service
from tests.integration.evaluation.floor import Floor
from tests.unit.strategies.examples import DCA

DCA_1M = {"kind": "builtin", "bot_type": "dca", "params": {**DCA, "timeframe": "1m"}}
FLAT = list(np.linspace(60_000, 60_100, 300))


def test_a_double_fired_schedule_makes_one_evaluation_and_one_intent_per_bot(floor: Floor) -> None:
    user = floor.desk.user()
    bots = [floor.running_bot(user, DCA_1M) for _ in range(2)]
    last = floor.candles(FLAT)
    floor.price("60100")

    first = floor.tick()
    again = floor.tick()
    event = floor.tick(Due(MarketFilter("simulated", "BTC/USDT", "1m"), candle_open_time=last))

    assert (first.bots, first.evaluated, first.intents) == (2, 2, 2)
    assert again.bots == 0 and event.bots == 0  # nothing due: each bot has seen this candle
    queued = floor.queued()
    assert sorted(m.bot_id for m in queued) == sorted(bots)
    for bot in bots:
        (evaluation,) = floor.evaluations(user, bot)
        assert evaluation["candle"] == last and evaluation["outcome"] == "decided"
        assert evaluation["signal"] == "buy" and evaluation["sent"] and evaluation["strategy_version"] == 1
        (intent,) = evaluation["intents"]
        assert [m.intent.client_order_id for m in queued if m.bot_id == bot] == [intent["client_order_id"]]


def test_a_concurrent_repeat_of_the_same_candle_inserts_nothing_and_sends_nothing(floor: Floor) -> None:
    user = floor.desk.user()
    bot = floor.running_bot(user, DCA_1M)
    floor.candles(FLAT)
    floor.price("60100")
    floor.tick()
    # Another invocation that read the bot before the first one wrote (its runtime is stale).
    with floor.database.connection() as conn, service_transaction(conn):
        conn.execute("UPDATE bot_runtime SET last_candle = NULL WHERE bot_id = %s", (bot,))

    repeat = floor.tick()

    assert (repeat.bots, repeat.repeated, repeat.evaluated) == (1, 1, 0)
    assert len(floor.evaluations(user, bot)) == 1 and len(floor.queued()) == 1


def test_a_stale_market_makes_no_intent_says_why_and_puts_the_bot_in_error_after_n_skips(
    floor: Floor,
) -> None:
    user = floor.desk.user()
    bot = floor.running_bot(user, DCA_1M)
    last = floor.candles(FLAT)
    # No trade recorded for the market: the feed is not running.

    for step in range(3):
        floor.tick(
            Due(MarketFilter("simulated", "BTC/USDT", "1m"), candle_open_time=last - (2 - step) * 60_000),
            max_skips=3,
        )

    evaluations = floor.evaluations(user, bot)
    assert [e["outcome"] for e in evaluations] == ["skipped"] * 3
    assert evaluations[0]["reason"] == "stale data: no trade recorded on this market"
    assert evaluations[0]["intents"] == [] and floor.queued() == []
    assert floor.bot_status(user, bot) == "error"
    activity = activity_service.list_activity(floor.database, user, limit=20)
    assert any("3 evaluations in a row skipped" in a.message for a in activity)


def test_a_market_without_the_candle_is_skipped_as_no_data(floor: Floor) -> None:
    user = floor.desk.user()
    bot = floor.running_bot(user, DCA_1M)
    last = floor.candles(FLAT)
    floor.price("60100")

    floor.tick(Due(MarketFilter("simulated", "BTC/USDT", "1m"), candle_open_time=last + 60_000))

    (evaluation,) = floor.evaluations(user, bot)
    assert evaluation["outcome"] == "skipped" and evaluation["reason"].startswith("no data")


def test_unreadable_risk_state_rejects_every_intent(floor: Floor) -> None:
    user = floor.desk.user()
    bot = floor.running_bot(user, DCA_1M)
    floor.candles(FLAT)
    floor.price("60100")
    with floor.database.connection() as conn, service_transaction(conn):
        conn.execute(
            'INSERT INTO user_risk (user_id, limits) VALUES (%s, \'{"max_open_positions": "many"}\')', (user,)
        )

    report = floor.tick()

    (evaluation,) = floor.evaluations(user, bot)
    assert report.intents == 0 and report.rejected == 1 and floor.queued() == []
    assert evaluation["risk_verdict"] == "rejected" and "fail closed" in evaluation["risk"][0]["reason"]


def test_the_risk_checks_resize_an_entry_to_the_bots_largest_position(floor: Floor) -> None:
    user = floor.desk.user()
    bot = floor.running_bot(user, DCA_1M, risk={"max_position_notional": "50"})
    floor.candles(FLAT)
    floor.price("60100")

    floor.tick()

    (evaluation,) = floor.evaluations(user, bot)
    (message,) = floor.queued()
    assert isinstance(message, PlaceMessage)
    assert evaluation["risk_verdict"] == "resized"
    assert message.intent.quantity * Decimal("60100") <= Decimal(50)


def test_a_running_bot_keeps_its_strategy_version_until_restarted(floor: Floor) -> None:
    user = floor.desk.user()
    bot = floor.running_bot(user, DCA_1M)
    strategy_id = floor.desk.database and _strategy_of(floor, user, bot)
    strategy_service.update_strategy(
        floor.database,
        user,
        strategy_id,
        strategy_service.StrategyUpdate.model_validate(
            {"definition": {**DCA_1M, "params": {**DCA_1M["params"], "base_order_size": "200"}}}
        ),
        lambda version: None,
    )
    floor.candles(FLAT)
    floor.price("60100")

    floor.tick()

    (evaluation,) = floor.evaluations(user, bot)
    (message,) = floor.queued()
    assert evaluation["strategy_version"] == 1
    assert isinstance(message, PlaceMessage)
    assert message.intent.quantity * Decimal("60100") < Decimal(150)  # the 100 of version 1


def _strategy_of(floor: Floor, user: object, bot: object) -> object:
    with floor.database.connection() as conn, tenant_transaction(conn, user):  # type: ignore[arg-type]
        row = conn.execute("SELECT strategy_id FROM bots WHERE id = %s", (bot,)).fetchone()
    assert row is not None
    return row[0]


_ = Timeframe


def test_a_kill_switch_stops_new_intents_and_the_executor_rejects_those_already_queued(floor: Floor) -> None:
    from tekoa.services import risk as risk_service

    user = floor.desk.user()
    bot = floor.running_bot(user, DCA_1M)
    last = floor.candles(FLAT)
    floor.price("60100")
    floor.tick()  # the base order is queued, not executed yet

    result = risk_service.kill_switch(floor.database, floor.fifo.queue, user, reason="panic")
    assert floor.execute_queued() == {"failures": []}
    floor.candles([60_100.0], end=last + 60_000)
    floor.price("60100")
    later = floor.tick()

    assert result.risk.state == "halted" and result.risk.trip == "kill_switch"
    (account,) = _accounts(floor, user)
    (order,) = floor.desk.orders(user, account)
    assert (order.status.value, order.reject_code) == ("rejected", "TRADING_HALTED")
    assert later.intents == 0
    newest = floor.evaluations(user, bot)[-1]
    assert newest["risk_verdict"] == "rejected" and "trading is halted" in newest["risk"][0]["reason"]

    risk_service.reset(floor.database, user)
    assert risk_service.get_risk(floor.database, user).state == "active"


def _accounts(floor: Floor, user: object) -> list[object]:
    from tekoa.db import accounts as account_rows

    with floor.database.connection() as conn, tenant_transaction(conn, user):  # type: ignore[arg-type]
        return list(account_rows.list_accounts(conn, user))  # type: ignore[arg-type]


def test_a_kill_switch_with_flatten_closes_its_users_positions_once_and_no_one_elses(floor: Floor) -> None:
    from tekoa.services import risk as risk_service
    from tekoa.services.risk import flatten_client_order_id

    alice, bob = floor.desk.user(), floor.desk.user()
    for user in (alice, alice, bob):
        floor.running_bot(user, DCA_1M)
    floor.candles(FLAT)
    floor.price("60100")
    floor.tick()  # each bot's base order
    assert floor.execute_queued() == {"failures": []}
    opened = {user: _open_positions(floor, user) for user in (alice, bob)}
    assert (len(opened[alice]), len(opened[bob])) == (2, 1)

    first = risk_service.kill_switch(floor.database, floor.fifo.queue, alice, reason="panic", flatten=True)
    again = risk_service.kill_switch(floor.database, floor.fifo.queue, alice, reason="panic", flatten=True)
    assert floor.execute_queued() == {"failures": []}
    after = risk_service.kill_switch(floor.database, floor.fifo.queue, alice, reason="panic", flatten=True)
    assert floor.execute_queued() == {"failures": []}

    assert first.risk.state == "halted" and (first.flattening_orders, first.not_flattened) == (2, [])
    assert again.flattening_orders == 0 and after.flattening_orders == 0  # one exit per position
    assert _open_positions(floor, alice) == []
    assert [p.id for p in _open_positions(floor, bob)] == [p.id for p in opened[bob]]
    (account,) = _accounts(floor, alice)
    exits = {flatten_client_order_id(p.id): p for p in opened[alice]}
    flattening = [o for o in floor.desk.orders(alice, account) if o.client_order_id in exits]
    assert sorted(o.client_order_id for o in flattening) == sorted(exits)  # each placed once
    for order in flattening:
        assert (order.side.value, order.type.value, order.reduce_only, order.status.value) == (
            "sell",
            "market",
            True,
            "filled",
        )
        assert order.quantity == exits[order.client_order_id].quantity
    with floor.database.connection() as conn, tenant_transaction(conn, alice):
        audited = conn.execute(
            "SELECT detail ->> 'flatten', jsonb_array_length(detail -> 'flattening_orders')"
            " FROM audit_log WHERE user_id = %s AND action = 'risk.kill_switch' ORDER BY id",
            (alice,),
        ).fetchall()
    assert audited == [("true", 2), ("true", 0), ("true", 0)]
    # Still halted: a bot's own order is refused as before.
    assert risk_service.get_risk(floor.database, alice).state == "halted"


def _open_positions(floor: Floor, user: object) -> list[object]:
    from tekoa.db import positions as position_rows

    with floor.database.connection() as conn, tenant_transaction(conn, user):  # type: ignore[arg-type]
        return list(
            position_rows.list_positions(
                conn,
                user,  # type: ignore[arg-type]
                is_open=True,
                bot_id=None,
                account_id=None,
                after=None,
                limit=100,
            )
        )
