"""What the single-position bots (scalper, dip, momentum) share: conditions built in the rule
language, and the sized market entry with its protection attached."""

from __future__ import annotations

import math
from typing import Any

from pydantic import TypeAdapter

from tekoa.domain.orders import OrderIntent, OrderType, ProtectionSpec, place
from tekoa.domain.trading import BotState, PositionSide
from tekoa.engine.decision import to_decimal
from tekoa.engine.market import MarketView
from tekoa.engine.sizing import entry_quantity, sizing_code
from tekoa.strategies.rules import Condition, Operand
from tekoa.strategies.units import OrderSize

CONDITION: TypeAdapter[Condition] = TypeAdapter(Condition)
OPERAND: TypeAdapter[Operand] = TypeAdapter(Operand)


def condition(tree: dict[str, Any]) -> Condition:
    """A condition tree from its JSON form (the bots state their signals in the rule language,
    so they share its compiled, memoised evaluation)."""
    return CONDITION.validate_python(tree)


def operand(tree: dict[str, Any]) -> Operand:
    """An operand from its JSON form."""
    return OPERAND.validate_python(tree)


def indicator(name: str, **params: Any) -> dict[str, Any]:
    """An indicator operand of the primary timeframe."""
    offset = params.pop("offset", 0)
    return {"type": "indicator", "name": name, "params": params, "offset": offset}


def constant(value: Any) -> dict[str, Any]:
    """A constant operand."""
    return {"type": "constant", "value": str(value)}


def compare(left: dict[str, Any], op: str, right: dict[str, Any]) -> dict[str, Any]:
    """A comparison node."""
    return {"type": "compare", "left": left, "op": op, "right": right}


def entering(state: BotState) -> bool:
    """Whether an entry order of the bot is still pending."""
    return any(order.leg == "entry" for order in state.orders)


def market_entry(
    view: MarketView, state: BotState, size: OrderSize, protection: ProtectionSpec, reason: str
) -> OrderIntent | None:
    """A long market entry of `size` at the bar's close as reference, or None without cash."""
    kind, value = sizing_code(size)
    quantity = entry_quantity(kind, value, float(state.equity), float(state.cash), view.close, math.nan)
    if quantity <= 0.0:
        return None
    return place(
        state.bot_id,
        view.open_time,
        "entry",
        PositionSide.LONG.entry_side,
        OrderType.MARKET,
        to_decimal(quantity),
        protection=protection,
        reason=reason,
    )
