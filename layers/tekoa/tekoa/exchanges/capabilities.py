"""What each exchange can do, declared once (as freqtrade's `_ft_has`).

Code asks the table instead of testing exchange names: how the client order id travels, whether
an order can be found by it, whether stops are native, and how a duplicate id is reported.
Binance is exercised end to end against the loopback fake (tests/fakes/exchange.py); the other
entries follow ccxt's unified parameters and each venue's documented id rules.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from tekoa.domain.exchanges import SIMULATED_EXCHANGE


@dataclass(frozen=True, slots=True)
class ExchangeCapabilities:
    """One exchange's answers; the defaults are the conservative ones."""

    client_order_id_param: str = "clientOrderId"
    """The create-order parameter that carries our id (ccxt's unified name unless the venue's own)."""
    client_order_id_max_length: int = 32
    client_order_id_alphabet: str = r"[A-Za-z0-9]"
    """Characters the venue accepts in a client id; anything else is mapped out deterministically."""
    fetch_order_by_client_id: bool = False
    """`fetch_order(None, symbol, {param: id})` finds an order by our id, open or closed."""
    lookup_param: str = "clientOrderId"
    native_stop_orders: bool = False
    """A sell stop rests on the venue (ccxt's `createStopLossOrder`, Binance spot STOP_LOSS): live
    positions' stops are placed there instead of emulated by the market stream."""
    duplicate_client_id_markers: tuple[str, ...] = ()
    """Substrings of the error a venue answers when our client id is already in use."""
    spot_options: dict[str, object] = field(default_factory=dict)
    """ccxt constructor options for trading spot on this venue."""

    def exchange_client_id(self, client_order_id: str) -> str:
        """Our client id as this venue accepts it: unchanged when it fits, else a stable digest."""
        allowed = re.compile(f"^{self.client_order_id_alphabet}+$")
        if len(client_order_id) <= self.client_order_id_max_length and allowed.match(client_order_id):
            return client_order_id
        digest = hashlib.blake2b(client_order_id.encode(), digest_size=16).hexdigest()
        return ("tk" + digest)[: self.client_order_id_max_length]

    def is_duplicate_client_id(self, message: str) -> bool:
        return any(marker in message for marker in self.duplicate_client_id_markers)


_BINANCE = ExchangeCapabilities(
    client_order_id_param="newClientOrderId",
    client_order_id_max_length=36,
    client_order_id_alphabet=r"[.A-Za-z0-9:/_-]",
    fetch_order_by_client_id=True,
    lookup_param="origClientOrderId",
    native_stop_orders=True,
    duplicate_client_id_markers=("Duplicate order sent",),
    spot_options={
        "defaultType": "spot",
        "fetchMarkets": {"types": ["spot"]},
        "fetchCurrencies": False,
        "fetchMargins": False,
    },
)

CAPABILITIES: dict[str, ExchangeCapabilities] = {
    "binance": _BINANCE,
    "binanceus": _BINANCE,
    "bybit": ExchangeCapabilities(
        client_order_id_max_length=36,
        client_order_id_alphabet=r"[A-Za-z0-9_-]",
        fetch_order_by_client_id=True,
        native_stop_orders=True,
        duplicate_client_id_markers=("OrderLinkedID is duplicate", "orderLinkId is duplicate"),
        spot_options={"defaultType": "spot"},
    ),
    "okx": ExchangeCapabilities(
        client_order_id_max_length=32,
        fetch_order_by_client_id=True,
        native_stop_orders=True,
        duplicate_client_id_markers=("Duplicated clOrdId",),
        spot_options={"defaultType": "spot"},
    ),
    SIMULATED_EXCHANGE: ExchangeCapabilities(client_order_id_max_length=36, native_stop_orders=False),
}
DEFAULT_CAPABILITIES = ExchangeCapabilities()


def capabilities(exchange: str) -> ExchangeCapabilities:
    """The table's entry for `exchange`, or the conservative defaults."""
    return CAPABILITIES.get(exchange, DEFAULT_CAPABILITIES)
