"""Order intents and bot state: deterministic exchange-safe ids, validation at the door, and
an exact JSON round trip (the queue message and the stored state)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from tekoa.domain.orders import (
    CLIENT_ORDER_ID_PATTERN,
    INTENT_ADAPTER,
    OrderSide,
    OrderType,
    ProtectionSpec,
    StopSpec,
    TargetSpec,
    cancel,
    client_order_id,
    place,
)
from tekoa.domain.trading import (
    ArmedTarget,
    BotMemory,
    BotState,
    Fill,
    Position,
    PositionSide,
    ProtectionState,
    RestingOrder,
)

BOT = "6f1c2a9e-3b7d-4c1e-9a2f-0d8e5b4c3a21"


def test_the_same_decision_yields_the_same_id_and_any_difference_another() -> None:
    same = client_order_id(BOT, 1_700_000_000_000, "entry")

    assert same == client_order_id(BOT, 1_700_000_000_000, "entry")
    assert same != client_order_id(BOT, 1_700_000_060_000, "entry")
    assert same != client_order_id(BOT, 1_700_000_000_000, "exit")
    assert same != client_order_id("another-bot", 1_700_000_000_000, "entry")


def test_ids_fit_every_exchange() -> None:
    for leg in ("entry", "grid-b499", "so-100", "cancel:" + "x" * 40):
        ident = client_order_id(BOT, 2**62, leg)
        assert len(ident) <= 36 and CLIENT_ORDER_ID_PATTERN.match(ident)


def _entry() -> object:
    return place(
        BOT,
        1_700_000_000_000,
        "entry",
        OrderSide.BUY,
        OrderType.MARKET,
        Decimal("0.012345678901234567"),
        protection=ProtectionSpec(
            stop=StopSpec(kind="distance", value=Decimal("123.4500000000000001")),
            targets=(TargetSpec(kind="r_multiple", value=Decimal("1.5"), size_fraction=Decimal("0.5")),),
            breakeven_after_first_target=True,
        ),
        reason="entry conditions met",
    )


def test_intents_round_trip_through_json_exactly() -> None:
    entry = _entry()
    stop = cancel(BOT, 1_700_000_000_000, "tk0123", "tp", "take profit moved")

    for intent in (entry, stop):
        text = INTENT_ADAPTER.dump_json(intent)  # type: ignore[arg-type]
        assert INTENT_ADAPTER.validate_json(text) == intent
    assert b'"quantity":"0.012345678901234567"' in INTENT_ADAPTER.dump_json(entry)  # type: ignore[arg-type]


def test_a_market_order_takes_no_price_and_a_limit_needs_one() -> None:
    with pytest.raises(ValidationError, match="need a price"):
        place(BOT, 0, "x", OrderSide.BUY, OrderType.LIMIT, Decimal(1))
    with pytest.raises(ValidationError, match="need a price"):
        place(BOT, 0, "x", OrderSide.BUY, OrderType.MARKET, Decimal(1), price=Decimal(1))


def test_bad_quantities_and_exits_with_protection_are_refused() -> None:
    for quantity in (Decimal(0), Decimal(-1), Decimal("NaN")):
        with pytest.raises(ValidationError):
            place(BOT, 0, "x", OrderSide.BUY, OrderType.MARKET, quantity)
    with pytest.raises(ValidationError, match="carries no protection"):
        place(
            BOT, 0, "x", OrderSide.SELL, OrderType.MARKET, Decimal(1),
            reduce_only=True, protection=ProtectionSpec(stop=StopSpec(kind="percent", value=Decimal(1))),
        )  # fmt: skip


def test_r_multiple_targets_need_a_fixed_stop_and_fractions_fit_the_position() -> None:
    with pytest.raises(ValidationError, match="fixed initial stop"):
        ProtectionSpec(targets=(TargetSpec(kind="r_multiple", value=Decimal(2)),))
    with pytest.raises(ValidationError, match="at most the whole entry"):
        ProtectionSpec(
            targets=(
                TargetSpec(kind="percent", value=Decimal(1), size_fraction=Decimal("0.6")),
                TargetSpec(kind="percent", value=Decimal(2), size_fraction=Decimal("0.6")),
            )
        )


def test_bot_state_round_trips_through_json_exactly() -> None:
    state = BotState(
        bot_id=BOT,
        cash=Decimal("1234.567890123456789"),
        equity=Decimal("2000.1"),
        position=Position(
            side=PositionSide.LONG,
            quantity=Decimal("0.5"),
            average_entry=Decimal("101.23456789012345"),
            entry_quantity=Decimal("0.25"),
            opened_at=1_700_000_000_000,
            protection=ProtectionState(
                entry_price=Decimal("100.5"),
                stop=Decimal("98"),
                trailing_pct=Decimal("2.5"),
                anchor=Decimal("104.2"),
                targets=(ArmedTarget(price=Decimal(110), size_fraction=Decimal("0.5"), hit=True),),
                breakeven_after_first_target=True,
            ),
        ),
        orders=(
            RestingOrder(
                client_order_id="tkabc",
                leg="grid-s3",
                side=OrderSide.SELL,
                type=OrderType.LIMIT,
                price=Decimal("105.5"),
                quantity=Decimal("0.1"),
                reduce_only=True,
                placed_at=1_700_000_000_000,
            ),
        ),
        fills=(
            Fill(
                client_order_id="tkdef",
                leg="grid-b2",
                side=OrderSide.BUY,
                quantity=Decimal("0.1"),
                price=Decimal("99.5"),
                fee=Decimal("0.00995"),
                time=1_700_000_000_000,
            ),
        ),
        memory=BotMemory(
            last_decided=1_700_000_000_000,
            entries=(1, 2),
            grid={2: OrderSide.BUY, 3: OrderSide.SELL},
            base_price=Decimal("100"),
        ),
    )

    text = state.model_dump_json()

    assert BotState.model_validate_json(text) == state
    assert '"cash":"1234.567890123456789"' in text
