"""`Decision` and what every strategy kind shares: the `Brain` protocol, the float-to-Decimal
rule of the engine, and the reconciliation of wanted and resting orders."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

import numpy as np
import numpy.typing as npt

from tekoa.domain.orders import (
    CancelIntent,
    FrozenModel,
    Intent,
    OrderIntent,
    OrderSide,
    OrderType,
    ProtectionSpec,
    cancel,
    place,
)
from tekoa.domain.timeframes import Timeframe
from tekoa.domain.trading import BotMemory, BotState
from tekoa.engine.market import Bools, MarketView


class Why(FrozenModel):
    """Why a decision is what it is: the reason, the conditions that matched, the confluence
    score (share of the entry's top-level conditions that held), when there is one."""

    reason: str
    matched: tuple[str, ...] = ()
    score: float | None = None


class Decision(FrozenModel):
    """What `decide` answers: intents to send (in order), the bot's new state, and why."""

    intents: tuple[Intent, ...] = ()
    state: BotState
    why: Why


class Brain(Protocol):
    """A strategy compiled against one market's data: decides on a bar, and tells the
    backtester the next bar on which it could decide anything."""

    timeframe: Timeframe

    def decide(self, view: MarketView, state: BotState) -> Decision:
        """The decision on the bar `view` stands on."""

    def next_bar(self, memory: BotMemory, in_market: bool, after: int) -> int:
        """The first bar after `after` on which `decide` could place, cancel or remember anything,
        given that no order fills in between (`in_market`: a position or resting orders exist);
        the frame's length if none. Deciding on the bars it skips would change nothing."""


def to_decimal(value: float) -> Decimal:
    """The engine's float -> Decimal rule: the shortest decimal that reads back as the same
    float (`repr`), so an intent's numbers convert back to exactly the floats the engine and
    the backtester computed. The order layer then rounds to the market's precision."""
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {value!r}")
    return Decimal(repr(float(value)))


class SignalIndex:
    """The true bars of a boolean signal, indexed on first use: `next_after` is a bisection."""

    def __init__(self, mask: Bools) -> None:
        self.mask = mask
        self._bars: npt.NDArray[np.intp] | None = None

    def next_after(self, after: int) -> int:
        """The first bar after `after` where the signal holds; the mask's length if none."""
        if self._bars is None:
            self._bars = np.flatnonzero(self.mask)
        position = int(np.searchsorted(self._bars, after, side="right"))
        return int(self._bars[position]) if position < self._bars.shape[0] else self.mask.shape[0]


@dataclass(frozen=True, slots=True)
class Wanted:
    """A resting order a bot wants in the book."""

    leg: str
    side: OrderSide
    order_type: OrderType
    price: Decimal
    quantity: Decimal
    reduce_only: bool = False
    protection: ProtectionSpec | None = None
    reason: str = ""


def reconcile(
    state: BotState, candle_open_time: int, wanted: Sequence[Wanted], legs: Iterable[str] | None = None
) -> list[Intent]:
    """Cancels for resting orders that are not wanted (or differ), then places for wanted
    orders that are not resting. Only resting orders whose leg starts with one of `legs` are
    managed (all when None). Cancels come first, so funds they free are there for the places."""
    managed = tuple(legs) if legs is not None else None
    by_leg = {w.leg: w for w in wanted}
    keep: set[str] = set()
    intents: list[Intent] = []
    for order in state.orders:
        if managed is not None and not order.leg.startswith(managed):
            continue
        want = by_leg.get(order.leg)
        if (
            want is not None
            and order.side is want.side
            and order.type is want.order_type
            and order.price == want.price
            and order.quantity == want.quantity
        ):
            keep.add(order.leg)
            continue
        intents.append(
            cancel(state.bot_id, candle_open_time, order.client_order_id, order.leg, "no longer wanted")
        )
    for want in wanted:
        if want.leg in keep:
            continue
        intents.append(
            place(
                state.bot_id,
                candle_open_time,
                want.leg,
                want.side,
                want.order_type,
                want.quantity,
                price=want.price,
                reduce_only=want.reduce_only,
                protection=want.protection,
                reason=want.reason,
            )
        )
    return intents


def cancels(intents: Sequence[Intent]) -> list[CancelIntent]:
    """The cancel intents among `intents`."""
    return [i for i in intents if isinstance(i, CancelIntent)]


def places(intents: Sequence[Intent]) -> list[OrderIntent]:
    """The place intents among `intents`."""
    return [i for i in intents if isinstance(i, OrderIntent)]


def decided(state: BotState, memory: BotMemory, intents: Sequence[Intent], why: Why) -> Decision:
    """A decision: the fills are consumed, the memory replaced."""
    return Decision(
        intents=tuple(intents), state=state.model_copy(update={"fills": (), "memory": memory}), why=why
    )
