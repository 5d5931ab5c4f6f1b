"""The only code that builds ccxt clients, and turns a venue's markets into `MarketRules`.

Every client gets the same base options (rate limiting, a timeout, spot markets) and the
venue's own from the capability table, then the caller's (credentials, loopback URLs in
tests). ccxt is imported here and nowhere inward, lazily, so importing `tekoa.exchanges`
costs nothing where ccxt is not installed (the API).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal

from tekoa.domain.resources import CredentialSecrets
from tekoa.errors import NotFound
from tekoa.exchanges.capabilities import capabilities
from tekoa.exchanges.rules import MarketRules

DEFAULT_TIMEOUT_MS = 10_000
ClientKind = Literal["sync", "async", "pro"]

_BASE_CONFIG: Mapping[str, Any] = {"enableRateLimit": True, "options": {"defaultType": "spot"}}


def deep_merge(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Merge nested mappings left to right; later layers win, nested dicts merge."""
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            current = merged.get(key)
            if isinstance(value, Mapping) and isinstance(current, dict):
                merged[key] = deep_merge(current, value)
            elif isinstance(value, Mapping):
                merged[key] = deep_merge(value)
            else:
                merged[key] = value
    return merged


def client_config(
    exchange: str,
    *,
    credentials: CredentialSecrets | None = None,
    url_overrides: Mapping[str, Any] | None = None,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The constructor options of a client for `exchange` (secrets included: never log them)."""
    return deep_merge(
        _BASE_CONFIG,
        {"timeout": timeout_ms, "options": capabilities(exchange).spot_options},
        extra or {},
        credentials.ccxt_config() if credentials is not None else {},
        {"urls": {"api": url_overrides}} if url_overrides else {},
    )


def build_client(
    exchange: str,
    *,
    kind: ClientKind = "sync",
    credentials: CredentialSecrets | None = None,
    url_overrides: Mapping[str, Any] | None = None,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
    extra: Mapping[str, Any] | None = None,
) -> Any:
    """A ccxt client: `sync` (executor, reconciliation), `async` or `pro` (market stream)."""
    import ccxt

    if kind == "sync":
        module: Any = ccxt
    elif kind == "async":
        import ccxt.async_support

        module = ccxt.async_support
    else:
        import ccxt.pro

        module = ccxt.pro
    exchange_class = getattr(module, exchange, None)
    if exchange_class is None or exchange not in module.exchanges:
        raise NotFound(f"ccxt has no {kind} exchange {exchange!r}", field="exchange")
    config = client_config(
        exchange, credentials=credentials, url_overrides=url_overrides, timeout_ms=timeout_ms, extra=extra
    )
    return exchange_class(config)


def _step(value: Any, precision_mode: int) -> Decimal | None:
    from ccxt.base.decimal_to_precision import TICK_SIZE

    if value is None:
        return None
    if precision_mode == TICK_SIZE:
        return Decimal(str(value))
    # DECIMAL_PLACES (and SIGNIFICANT_DIGITS, approximated by places): 10 ** -value.
    return Decimal(1).scaleb(-int(value))


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def rules_from_markets(exchange: str, markets: Mapping[str, Any], precision_mode: int) -> list[MarketRules]:
    """`MarketRules` of every spot market a ccxt client loaded."""
    rules = []
    for symbol, market in markets.items():
        if not market.get("spot"):
            continue
        precision = market.get("precision") or {}
        limits = market.get("limits") or {}
        amount_step = _step(precision.get("amount"), precision_mode)
        price_step = _step(precision.get("price"), precision_mode)
        if amount_step is None or price_step is None or amount_step <= 0 or price_step <= 0:
            continue
        rules.append(
            MarketRules(
                exchange=exchange,
                symbol=symbol,
                base=str(market["base"]),
                quote=str(market["quote"]),
                amount_step=amount_step,
                price_step=price_step,
                min_amount=_decimal((limits.get("amount") or {}).get("min")),
                max_amount=_decimal((limits.get("amount") or {}).get("max")),
                min_price=_decimal((limits.get("price") or {}).get("min")),
                max_price=_decimal((limits.get("price") or {}).get("max")),
                min_notional=_decimal((limits.get("cost") or {}).get("min")),
                max_notional=_decimal((limits.get("cost") or {}).get("max")),
                active=market.get("active") is not False,
            )
        )
    return rules


class MarketRulesCache:
    """Rules per (exchange, symbol), loaded from a ccxt client and kept for `ttl_s`.

    One per process: markets change rarely, and reloading them costs the venue's heaviest
    public call. Thread-safe.
    """

    def __init__(self, ttl_s: float = 3600.0) -> None:
        self._ttl_s = ttl_s
        self._lock = threading.Lock()
        self._loaded: dict[str, tuple[float, dict[str, MarketRules]]] = {}

    def rules(self, client: Any, exchange: str) -> dict[str, MarketRules]:
        """Every spot market's rules for `exchange`, loading them through `client` when stale."""
        with self._lock:
            cached = self._loaded.get(exchange)
            if cached is not None and time.monotonic() - cached[0] < self._ttl_s:
                return cached[1]
        markets = client.load_markets()
        loaded = {r.symbol: r for r in rules_from_markets(exchange, markets, int(client.precisionMode))}
        with self._lock:
            self._loaded[exchange] = (time.monotonic(), loaded)
        return loaded
