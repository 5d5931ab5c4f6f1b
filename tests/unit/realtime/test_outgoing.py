"""What a bus event becomes: which audience, which message types, and that a user's events are
addressed to that user alone (the recipient query filters on the address)."""

from __future__ import annotations

import json
import uuid

from tekoa.bus_rules import NOTIFY, PUSH
from tekoa.names import EventType
from tekoa.notify.delivery import classify, text_of
from tekoa.notify.models import NotifyEvent
from tekoa.realtime.fanout import outgoing_for

USER = uuid.uuid4()
BOT = uuid.uuid4()


def _types(messages: tuple[str, ...]) -> list[str]:
    return [json.loads(m)["type"] for m in messages]


def test_a_closed_candle_goes_to_its_market_channel() -> None:
    detail = {"exchange": "simulated", "symbol": "BTC/USDT", "timeframe": "5m", "open_time": 0, "close": "1"}
    (item,) = outgoing_for(EventType.CANDLE_CLOSED, detail)
    assert item.channel == "market:simulated:BTC/USDT:5m" and item.user_id is None and not item.everyone
    (message,) = item.messages
    assert json.loads(message)["data"] == {**detail, "closed": True}


def test_a_fill_goes_to_its_owner_and_bot_as_a_trade_and_the_position_it_moved() -> None:
    detail = {"user_id": str(USER), "bot_id": str(BOT), "order_id": "o", "symbol": "BTC/USDT"}
    (item,) = outgoing_for(EventType.ORDER_FILLED, detail, lambda d: {"symbol": d["symbol"], "quantity": "1"})
    assert (item.user_id, item.bot_id, item.channel, item.everyone) == (USER, BOT, None, False)
    assert _types(item.messages) == ["trade_executed", "position_update"]
    assert all("user_id" not in json.loads(m)["data"] for m in item.messages)
    (without_position,) = outgoing_for(EventType.ORDER_FILLED, detail)
    assert _types(without_position.messages) == ["trade_executed"]


def test_each_user_event_type_has_its_message_type() -> None:
    expected = {
        EventType.ORDER_UPDATED: "order_update",
        EventType.BOT_STATUS_CHANGED: "bot_status_changed",
        EventType.RISK_TRIPPED: "risk_alert",
        EventType.EVALUATION_RECORDED: "signal_generated",
        EventType.BACKTEST_PROGRESS: "backtest_progress",
    }
    for detail_type, message_type in expected.items():
        (item,) = outgoing_for(detail_type, {"user_id": str(USER), "bot_id": None})
        assert (item.user_id, item.bot_id) == (USER, None)
        assert _types(item.messages) == [message_type]


def test_a_platform_wide_risk_event_alerts_everyone_and_an_ownerless_user_event_nobody() -> None:
    (item,) = outgoing_for(EventType.RISK_TRIPPED, {"scope": "platform", "reason": "kill switch"})
    assert item.everyone and _types(item.messages) == ["system_alert"]
    assert outgoing_for(EventType.ORDER_FILLED, {"order_id": "o"}) == []
    assert outgoing_for("something.else", {"user_id": str(USER)}) == []


def test_the_push_rule_matches_every_event_the_fan_out_handles() -> None:
    handled = [
        t
        for t in PUSH.detail_types
        if outgoing_for(t, {"user_id": str(USER), "exchange": "x", "symbol": "s", "timeframe": "1m"})
    ]
    assert handled == list(PUSH.detail_types)


def test_notifications_classify_fills_stops_risk_and_failed_bots() -> None:
    assert classify(EventType.ORDER_FILLED, {"type": "market", "reason": ""}) == [NotifyEvent.FILLS]
    assert classify(EventType.ORDER_FILLED, {"type": "stop"}) == [NotifyEvent.FILLS, NotifyEvent.STOP_HIT]
    assert classify(EventType.ORDER_FILLED, {"type": "market", "reason": "stop loss"}) == [
        NotifyEvent.FILLS,
        NotifyEvent.STOP_HIT,
    ]
    assert classify(EventType.RISK_TRIPPED, {}) == [NotifyEvent.RISK_TRIPPED]
    assert classify(EventType.BOT_STATUS_CHANGED, {"to": "error"}) == [NotifyEvent.BOT_ERROR]
    assert classify(EventType.BOT_STATUS_CHANGED, {"to": "stopped"}) == []
    assert set(NOTIFY.detail_types) == {
        EventType.ORDER_FILLED,
        EventType.RISK_TRIPPED,
        EventType.BOT_STATUS_CHANGED,
    }
    assert (
        text_of(NotifyEvent.BOT_ERROR, {"name": "grid", "reason": "exchange down"})
        == "Bot grid failed: exchange down"
    )


def test_the_daily_summary_reads_as_a_sentence() -> None:
    from decimal import Decimal

    from tekoa.notify.delivery import summary_text
    from tekoa.services.trades import stats_of

    stats = stats_of([(Decimal("12.5"), Decimal("0.25")), (Decimal("-2.5"), Decimal("0.25"))])
    assert (
        summary_text(stats) == "Daily summary: 2 trades closed (1 won, 1 lost), P&L +10.0 after 0.50 in fees."
    )
