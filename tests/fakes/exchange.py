"""A loopback fake of Binance spot that speaks the real wire format, for ccxt-driven tests.

What it serves (all on 127.0.0.1, random port, nothing else):

* REST under `/api/v3`: `ping`, `time`, `exchangeInfo` (a few TRADING spot symbols with the
  filters ccxt reads) and `klines` (Binance semantics: `startTime`/`endTime` inclusive on open
  time, `limit` default 500 and capped at 1000, the still-open current candle included).
  Kline values are a pure function of (symbol, interval, open time), so a test can compare
  what a client fetched with `FakeBinance.klines(...)`.
* WebSocket under `/stream/ws/<n>`: ccxt.pro's binance connects to `<urls.api.ws.spot>/<n>`
  and sends `{"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": k}`; the fake answers
  `{"result": null, "id": k}` and then pushes raw `trade` events
  (`{"e": "trade", "E", "s", "t", "p", "q", "T", "m", "M"}`). The path contains `/stream`
  because ccxt decides "spot or contract" from the URL, exactly as with the real host.

* Spot trading under `/api/v3` (what ccxt's binance calls, signed requests with an
  `X-MBX-APIKEY` header; signatures are not checked): `POST /order` (market and limit, with
  `newClientOrderId`; a client id already used by an open order answers -2010 "Duplicate order
  sent."), `GET /order` (by `origClientOrderId` or `orderId`; -2013 when unknown),
  `DELETE /order`, `GET /openOrders`, `GET /account` (balances) and `GET /myTrades`. A market
  order fills at once at the market's price (`set_price`), as does a marketable limit; other
  limits rest until `fill_resting` fills them.

What a test controls: `publish_trades` (scripted trades), `drop_connections` (close sockets,
politely or abruptly), `stall_connections` (keep sockets open but deliver nothing and answer
no pings: a dead path that TCP has not noticed), `replay_on_subscribe` (re-send the last N
trade events to every new subscriber, as some venues and proxies do after a reconnect),
`fail_next_rest` (HTTP errors for the next REST calls), the fake's clock, and for orders
`script_next_order` (accept then time out, reject, partially fill, answer "duplicate"),
`set_price`, `fill_resting`, `balances` and `refused_api_keys` (answered -2015, as Binance
answers a revoked key).

Bounded by construction: the server stops itself after `lifetime_s` even if a test forgets to
stop it, and every socket is closed on stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from aiohttp import WSMsgType, web

INTERVAL_MS: dict[str, int] = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "1d": 86_400_000,
}
MAX_KLINES_LIMIT = 1000
DEFAULT_KLINES_LIMIT = 500
# Candles exist from this instant on (a fake listing date); earlier requests get fewer rows.
DEFAULT_LISTED_AT_MS = 1_600_000_000_000 - 1_600_000_000_000 % 86_400_000


@dataclass(frozen=True, slots=True)
class FakeMarket:
    """A spot market the fake lists, in unified and exchange spelling."""

    base: str
    quote: str

    @property
    def symbol(self) -> str:
        return f"{self.base}/{self.quote}"

    @property
    def market_id(self) -> str:
        return f"{self.base}{self.quote}"


DEFAULT_MARKETS: tuple[FakeMarket, ...] = (
    FakeMarket("BTC", "USDT"),
    FakeMarket("ETH", "USDT"),
    FakeMarket("SOL", "USDT"),
)


def kline_values(market_id: str, interval: str, open_ms: int) -> tuple[str, str, str, str, str]:
    """Deterministic (open, high, low, close, volume) strings for one candle, Binance-style."""
    digest = hashlib.blake2b(f"{market_id}|{interval}|{open_ms}".encode(), digest_size=16).digest()
    a, b, c, d, e = (int.from_bytes(digest[i : i + 3], "big") for i in range(0, 15, 3))
    base_cents = 2_000_000 + (open_ms // 60_000) % 500_000  # drifts with time, in cents
    open_c = base_cents + a % 20_000
    close_c = base_cents + b % 20_000
    high_c = max(open_c, close_c) + c % 5_000
    low_c = min(open_c, close_c) - d % 5_000
    volume_milli = 1 + e % 10_000_000

    def cents(v: int) -> str:
        return f"{v // 100}.{v % 100:02d}000000"

    return cents(open_c), cents(high_c), cents(low_c), cents(close_c), f"{volume_milli / 1000:.8f}"


class OrderFault(StrEnum):
    """What the fake does with the next new order (`FakeBinance.script_next_order`)."""

    ACCEPT_THEN_TIMEOUT = "accept_then_timeout"
    """Place (and fill) the order, then answer only after `slow_answer_s`: the client times out."""
    REJECT = "reject"
    """Refuse it: -2010 "Account has insufficient balance for requested action."."""
    PARTIAL_FILL = "partial_fill"
    """Place it and fill half of it, leaving the rest open."""
    DUPLICATE = "duplicate"
    """Place it, but answer -2010 "Duplicate order sent." as if an earlier attempt had."""
    UNAVAILABLE = "unavailable"
    """Answer HTTP 503 without placing it."""


@dataclass(slots=True)
class FakeOrder:
    """An order on the fake's books, in Binance's terms."""

    order_id: int
    client_order_id: str
    symbol: str  # exchange id, e.g. BTCUSDT
    side: str  # BUY / SELL
    type: str  # MARKET / LIMIT / STOP_LOSS
    quantity: Decimal
    price: Decimal | None
    time_ms: int
    stop_price: Decimal | None = None
    executed: Decimal = Decimal(0)
    quote_executed: Decimal = Decimal(0)
    status: str = "NEW"

    def wire(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "orderId": self.order_id,
            "orderListId": -1,
            "clientOrderId": self.client_order_id,
            "price": f"{self.price or 0:f}",
            "origQty": f"{self.quantity:f}",
            "executedQty": f"{self.executed:f}",
            "cummulativeQuoteQty": f"{self.quote_executed:f}",
            "status": self.status,
            "timeInForce": "GTC",
            "type": self.type,
            "side": self.side,
            "stopPrice": f"{self.stop_price or 0:f}",
            "time": self.time_ms,
            "updateTime": self.time_ms,
            "transactTime": self.time_ms,
            "isWorking": True,
            "workingTime": self.time_ms,
            "origQuoteOrderQty": "0.00000000",
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }


@dataclass(frozen=True, slots=True)
class FakeTrade:
    trade_id: int
    order_id: int
    symbol: str
    price: Decimal
    quantity: Decimal
    commission: Decimal
    commission_asset: str
    maker: bool
    buyer: bool
    time_ms: int

    def wire(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "id": self.trade_id,
            "orderId": self.order_id,
            "orderListId": -1,
            "price": f"{self.price:f}",
            "qty": f"{self.quantity:f}",
            "quoteQty": f"{self.price * self.quantity:f}",
            "commission": f"{self.commission:f}",
            "commissionAsset": self.commission_asset,
            "time": self.time_ms,
            "isBuyer": self.buyer,
            "isMaker": self.maker,
            "isBestMatch": True,
        }


FEE_RATE = Decimal("0.001")


@dataclass(slots=True)
class _Connection:
    ws: web.WebSocketResponse
    request: web.Request
    number: int
    streams: set[str] = field(default_factory=set)
    stalled: bool = False


class FakeBinance:
    """The fake exchange; use as `async with FakeBinance() as fake:`.

    `clock_ms` is the exchange's clock for kline history, `serverTime` and trade times; tests
    fix it to put "now" inside a candle.
    """

    def __init__(
        self,
        *,
        markets: Iterable[FakeMarket] = DEFAULT_MARKETS,
        clock_ms: Callable[[], int] | None = None,
        listed_at_ms: int = DEFAULT_LISTED_AT_MS,
        replay_on_subscribe: int = 0,
        lifetime_s: float = 120.0,
    ) -> None:
        self.markets = {m.market_id: m for m in markets}
        self.clock_ms: Callable[[], int] = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self.listed_at_ms = listed_at_ms
        self.replay_on_subscribe = replay_on_subscribe
        self.lifetime_s = lifetime_s
        self.rest_requests: list[tuple[str, dict[str, str]]] = []
        self.ws_messages_received: list[dict[str, Any]] = []
        self.connections_opened = 0
        self.pings_ignored = 0
        self._connections: list[_Connection] = []
        self._sent: dict[str, deque[dict[str, Any]]] = {}
        self._trade_ids = {market_id: itertools.count(1_000_000) for market_id in self.markets}
        self._subscriptions: dict[str, int] = {}
        self._subscribed = asyncio.Condition()
        self._rest_failures: deque[int] = deque()
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._port = 0
        self._deadline: asyncio.TimerHandle | None = None
        # Trading.
        self.orders: dict[int, FakeOrder] = {}
        self.trades: list[FakeTrade] = []
        self.balances: dict[str, Decimal] = {"USDT": Decimal(100_000), "BTC": Decimal(0)}
        self.prices: dict[str, Decimal] = {m.market_id: Decimal(60_000) for m in self.markets.values()}
        self.create_requests: list[dict[str, str]] = []
        self.refused_api_keys: set[str] = set()
        self.slow_answer_s = 3.0
        self._order_faults: deque[OrderFault] = deque()
        self._order_ids = itertools.count(5_000_000)
        self._fill_ids = itertools.count(9_000_000)

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> FakeBinance:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Listen on 127.0.0.1 (random port); schedule the self-stop after `lifetime_s`."""
        app = web.Application()
        app.router.add_get("/api/v3/ping", self._ping)
        app.router.add_get("/api/v3/time", self._time)
        app.router.add_get("/api/v3/exchangeInfo", self._exchange_info)
        app.router.add_get("/api/v3/klines", self._klines)
        app.router.add_get("/api/v3/ticker/24hr", self._ticker)
        app.router.add_post("/api/v3/order", self._create_order)
        app.router.add_get("/api/v3/order", self._get_order)
        app.router.add_delete("/api/v3/order", self._cancel_order)
        app.router.add_get("/api/v3/openOrders", self._open_orders)
        app.router.add_get("/api/v3/account", self._account)
        app.router.add_get("/api/v3/myTrades", self._my_trades)
        app.router.add_get("/stream/ws", self._websocket)
        app.router.add_get("/stream/ws/{stream_index}", self._websocket)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await self._site.start()
        self._port = int(self._runner.addresses[0][1])
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(self.lifetime_s, lambda: loop.create_task(self.stop()))

    async def stop(self) -> None:
        """Close every socket and the listener; safe to call twice."""
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        await self.drop_connections(abrupt=True)
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    # ------------------------------------------------------------------ addresses

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/api/v3"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self._port}/stream/ws"

    def url_overrides(self) -> dict[str, Any]:
        """The entries of ccxt binance's `urls['api']` to point at this fake (spot only)."""
        return {"public": self.rest_url, "private": self.rest_url, "ws": {"spot": self.ws_url}}

    # ------------------------------------------------------------------ controls

    def market_id(self, symbol: str) -> str:
        return symbol.replace("/", "")

    def subscriptions(self, symbol: str) -> int:
        """How many SUBSCRIBE requests for `symbol`'s trade stream the fake has answered."""
        return self._subscriptions.get(self._trade_stream(symbol), 0)

    async def wait_subscribed(self, symbol: str, count: int = 1, timeout_s: float = 10.0) -> None:
        """Wait until the `count`-th subscription to `symbol`'s trade stream has been answered."""
        stream = self._trade_stream(symbol)
        async with self._subscribed:
            await asyncio.wait_for(
                self._subscribed.wait_for(lambda: self._subscriptions.get(stream, 0) >= count),
                timeout_s,
            )

    async def publish_trades(
        self,
        symbol: str,
        trades: Iterable[tuple[float | str, float | str]],
        *,
        ts_ms: int | None = None,
    ) -> list[dict[str, Any]]:
        """Trade (price, amount) pairs on `symbol`; push each as one `trade` event to subscribers.

        Ids increase per symbol as Binance's do; every trade gets time `ts_ms` (default: now).
        Returns the events as sent. Stalled sockets receive nothing (that is what stalled means).
        """
        market_id = self.market_id(symbol)
        stream = self._trade_stream(symbol)
        events: list[dict[str, Any]] = []
        for price, amount in trades:
            now = self.clock_ms()
            trade_ts = now if ts_ms is None else ts_ms
            event = {
                "e": "trade",
                "E": now,
                "s": market_id,
                "t": next(self._trade_ids[market_id]),
                "p": str(price),
                "q": str(amount),
                "T": trade_ts,
                "m": False,
                "M": True,
            }
            events.append(event)
            self._sent.setdefault(stream, deque(maxlen=1000)).append(event)
            await self._broadcast(stream, event)
        return events

    async def drop_connections(self, *, abrupt: bool = False) -> int:
        """Close every open WebSocket; `abrupt` cuts TCP without a close frame. Returns count."""
        connections, self._connections = self._connections, []
        for conn in connections:
            if abrupt:
                transport = conn.request.transport
                if transport is not None:
                    transport.close()
            else:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.ws.close(code=1001, message=b"going away"), 2.0)
        return len(connections)

    def stall_connections(self) -> int:
        """Keep the current sockets open but deliver nothing on them, pongs included.

        New connections are healthy, so a client that reconnects gets data again.
        """
        for conn in self._connections:
            conn.stalled = True
        return len(self._connections)

    def open_connections(self) -> int:
        return sum(1 for c in self._connections if not c.ws.closed)

    def fail_next_rest(self, count: int, status: int = 503) -> None:
        """Answer the next `count` REST requests with HTTP `status` (503: ccxt NetworkError)."""
        self._rest_failures.extend([status] * count)

    # ------------------------------------------------------------------ trading controls

    def script_next_order(self, *faults: OrderFault) -> None:
        """Apply `faults` to the next new orders, one each, in order."""
        self._order_faults.extend(faults)

    def set_price(self, symbol: str, price: str | Decimal) -> None:
        self.prices[self.market_id(symbol)] = Decimal(price)

    def order_by_client_id(self, client_order_id: str) -> FakeOrder | None:
        for order in self.orders.values():
            if order.client_order_id == client_order_id:
                return order
        return None

    def fill_resting(self, client_order_id: str, quantity: str | Decimal | None = None) -> None:
        """Fill (part of) a resting order at its limit price, as a maker; a stop at the market
        price, as a taker (the market reached its trigger)."""
        order = self.order_by_client_id(client_order_id)
        assert order is not None and order.status in ("NEW", "PARTIALLY_FILLED")
        amount = order.quantity - order.executed if quantity is None else Decimal(quantity)
        if order.type == "STOP_LOSS":
            self._execute(order, amount, self.prices[order.symbol], maker=False)
            return
        self._execute(order, amount, order.price or self.prices[order.symbol], maker=True)

    def _execute(self, order: FakeOrder, quantity: Decimal, price: Decimal, *, maker: bool) -> FakeTrade:
        market = self.markets[order.symbol]
        buyer = order.side == "BUY"
        commission = (quantity * price * FEE_RATE).quantize(Decimal("1e-8"))
        trade = FakeTrade(
            next(self._fill_ids),
            order.order_id,
            order.symbol,
            price,
            quantity,
            commission,
            market.quote,
            maker,
            buyer,
            self.clock_ms(),
        )
        self.trades.append(trade)
        order.executed += quantity
        order.quote_executed += quantity * price
        order.status = "FILLED" if order.executed == order.quantity else "PARTIALLY_FILLED"
        sign = 1 if buyer else -1
        self.balances[market.base] = self.balances.get(market.base, Decimal(0)) + sign * quantity
        self.balances[market.quote] = (
            self.balances.get(market.quote, Decimal(0)) - sign * quantity * price - commission
        )
        return trade

    # ------------------------------------------------------------------ trading handlers

    @staticmethod
    def _error(code: int, message: str, status: int = 400) -> web.Response:
        return web.json_response({"code": code, "msg": message}, status=status)

    async def _signed_params(self, request: web.Request) -> dict[str, str] | web.Response:
        failed = self._log_rest(request)
        if failed is not None:
            return failed
        key = request.headers.get("X-MBX-APIKEY")
        if not key or key in self.refused_api_keys:
            return self._error(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        params = dict(request.query)
        if request.can_read_body:
            params.update({k: str(v) for k, v in (await request.post()).items()})
        return params

    async def _create_order(self, request: web.Request) -> web.Response:
        params = await self._signed_params(request)
        if isinstance(params, web.Response):
            return params
        self.create_requests.append(params)
        fault = self._order_faults.popleft() if self._order_faults else None
        if fault is OrderFault.UNAVAILABLE:
            return web.Response(status=503, text="Service Unavailable")
        if fault is OrderFault.REJECT:
            return self._error(-2010, "Account has insufficient balance for requested action.")
        client_id = params.get("newClientOrderId") or f"x-{next(self._order_ids)}"
        existing = self.order_by_client_id(client_id)
        if existing is not None and existing.status in ("NEW", "PARTIALLY_FILLED"):
            return self._error(-2010, "Duplicate order sent.")
        market_id = params.get("symbol", "")
        if market_id not in self.markets:
            return self._error(-1121, "Invalid symbol.")
        order = FakeOrder(
            order_id=next(self._order_ids),
            client_order_id=client_id,
            symbol=market_id,
            side=params.get("side", "BUY"),
            type=params.get("type", "MARKET"),
            quantity=Decimal(params.get("quantity", "0")),
            price=Decimal(params["price"]) if "price" in params else None,
            time_ms=self.clock_ms(),
            stop_price=Decimal(params["stopPrice"]) if "stopPrice" in params else None,
        )
        self.orders[order.order_id] = order
        market_price = self.prices[market_id]
        # A STOP_LOSS rests until `fill_resting` says the market reached it.
        marketable = order.type == "MARKET" or (
            order.price is not None
            and (market_price <= order.price if order.side == "BUY" else market_price >= order.price)
        )
        fills: list[FakeTrade] = []
        if fault is OrderFault.PARTIAL_FILL:
            half = (order.quantity / 2).quantize(Decimal("1e-5"))
            fills.append(self._execute(order, half, order.price or market_price, maker=False))
        elif marketable:
            fills.append(self._execute(order, order.quantity, market_price, maker=False))
        if fault is OrderFault.DUPLICATE:
            return self._error(-2010, "Duplicate order sent.")
        if fault is OrderFault.ACCEPT_THEN_TIMEOUT:
            await asyncio.sleep(self.slow_answer_s)
        body = order.wire()
        body["fills"] = [
            {
                "price": f"{t.price:f}",
                "qty": f"{t.quantity:f}",
                "commission": f"{t.commission:f}",
                "commissionAsset": t.commission_asset,
                "tradeId": t.trade_id,
            }
            for t in fills
        ]
        return web.json_response(body)

    def _find(self, params: dict[str, str]) -> FakeOrder | None:
        if "origClientOrderId" in params:
            order = self.order_by_client_id(params["origClientOrderId"])
        else:
            order = self.orders.get(int(params.get("orderId", "0") or 0))
        if order is not None and order.symbol != params.get("symbol"):
            return None
        return order

    async def _ticker(self, request: web.Request) -> web.Response:
        failed = self._log_rest(request)
        if failed is not None:
            return failed
        market_id = request.query.get("symbol", "")
        if market_id not in self.markets:
            return self._error(-1121, "Invalid symbol.")
        price = f"{self.prices[market_id]:f}"
        now = self.clock_ms()
        return web.json_response(
            {
                "symbol": market_id,
                "priceChange": "0",
                "priceChangePercent": "0",
                "weightedAvgPrice": price,
                "prevClosePrice": price,
                "lastPrice": price,
                "lastQty": "0.001",
                "bidPrice": price,
                "bidQty": "1",
                "askPrice": price,
                "askQty": "1",
                "openPrice": price,
                "highPrice": price,
                "lowPrice": price,
                "volume": "100",
                "quoteVolume": "6000000",
                "openTime": now - 86_400_000,
                "closeTime": now,
                "firstId": 1,
                "lastId": 100,
                "count": 100,
            }
        )

    async def _get_order(self, request: web.Request) -> web.Response:
        params = await self._signed_params(request)
        if isinstance(params, web.Response):
            return params
        order = self._find(params)
        if order is None:
            return self._error(-2013, "Order does not exist.")
        return web.json_response(order.wire())

    async def _cancel_order(self, request: web.Request) -> web.Response:
        params = await self._signed_params(request)
        if isinstance(params, web.Response):
            return params
        order = self._find(params)
        if order is None or order.status not in ("NEW", "PARTIALLY_FILLED"):
            return self._error(-2011, "Unknown order sent.")
        order.status = "CANCELED"
        return web.json_response(order.wire())

    async def _open_orders(self, request: web.Request) -> web.Response:
        params = await self._signed_params(request)
        if isinstance(params, web.Response):
            return params
        symbol = params.get("symbol")
        return web.json_response(
            [
                o.wire()
                for o in self.orders.values()
                if o.status in ("NEW", "PARTIALLY_FILLED") and (symbol is None or o.symbol == symbol)
            ]
        )

    async def _account(self, request: web.Request) -> web.Response:
        params = await self._signed_params(request)
        if isinstance(params, web.Response):
            return params
        locked: dict[str, Decimal] = {}
        for o in self.orders.values():
            if o.status in ("NEW", "PARTIALLY_FILLED"):
                market = self.markets[o.symbol]
                rest = o.quantity - o.executed
                if o.side == "BUY":
                    locked[market.quote] = locked.get(market.quote, Decimal(0)) + rest * (o.price or 0)
                else:
                    locked[market.base] = locked.get(market.base, Decimal(0)) + rest
        return web.json_response(
            {
                "makerCommission": 10,
                "takerCommission": 10,
                "canTrade": True,
                "canWithdraw": True,
                "canDeposit": True,
                "updateTime": self.clock_ms(),
                "accountType": "SPOT",
                "balances": [
                    {
                        "asset": asset,
                        "free": f"{total - locked.get(asset, Decimal(0)):f}",
                        "locked": f"{locked.get(asset, Decimal(0)):f}",
                    }
                    for asset, total in self.balances.items()
                ],
                "permissions": ["SPOT"],
            }
        )

    async def _my_trades(self, request: web.Request) -> web.Response:
        params = await self._signed_params(request)
        if isinstance(params, web.Response):
            return params
        wanted = params.get("orderId")
        return web.json_response(
            [
                t.wire()
                for t in self.trades
                if t.symbol == params.get("symbol") and (wanted is None or str(t.order_id) == wanted)
            ]
        )

    # ------------------------------------------------------------------ kline series

    def klines(
        self, symbol: str, interval: str, start_ms: int, end_ms: int, *, closed_only: bool = True
    ) -> list[list[float]]:
        """The series as `[open_time, o, h, l, c, v]` floats for open times in [start, end).

        `closed_only` drops the candle still open at the fake's current clock.
        """
        step = INTERVAL_MS[interval]
        market_id = self.market_id(symbol)
        now = self.clock_ms()
        rows: list[list[float]] = []
        first = max(self._align_up(start_ms, step), self.listed_at_ms)
        for open_ms in range(first, end_ms, step):
            if open_ms > now or (closed_only and open_ms + step > now):
                break
            values = kline_values(market_id, interval, open_ms)
            rows.append([float(open_ms), *(float(v) for v in values)])
        return rows

    # ------------------------------------------------------------------ REST handlers

    def _log_rest(self, request: web.Request) -> web.Response | None:
        self.rest_requests.append((request.path, dict(request.query)))
        if self._rest_failures:
            status = self._rest_failures.popleft()
            return web.Response(status=status, text="Service Unavailable")
        return None

    async def _ping(self, request: web.Request) -> web.Response:
        return self._log_rest(request) or web.json_response({})

    async def _time(self, request: web.Request) -> web.Response:
        return self._log_rest(request) or web.json_response({"serverTime": self.clock_ms()})

    async def _exchange_info(self, request: web.Request) -> web.Response:
        failed = self._log_rest(request)
        if failed is not None:
            return failed
        return web.json_response(
            {
                "timezone": "UTC",
                "serverTime": self.clock_ms(),
                "rateLimits": [
                    {
                        "rateLimitType": "REQUEST_WEIGHT",
                        "interval": "MINUTE",
                        "intervalNum": 1,
                        "limit": 6000,
                    },
                    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                    {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
                ],
                "exchangeFilters": [],
                "symbols": [self._symbol_info(m) for m in self.markets.values()],
            }
        )

    @staticmethod
    def _symbol_info(market: FakeMarket) -> dict[str, Any]:
        return {
            "symbol": market.market_id,
            "status": "TRADING",
            "baseAsset": market.base,
            "baseAssetPrecision": 8,
            "quoteAsset": market.quote,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": [
                "LIMIT",
                "LIMIT_MAKER",
                "MARKET",
                "STOP_LOSS",
                "STOP_LOSS_LIMIT",
                "TAKE_PROFIT_LIMIT",
            ],
            "icebergAllowed": True,
            "ocoAllowed": True,
            "otoAllowed": True,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": True,
            "cancelReplaceAllowed": True,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": "0.01000000",
                    "maxPrice": "1000000.00000000",
                    "tickSize": "0.01000000",
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": "0.00001000",
                    "maxQty": "9000.00000000",
                    "stepSize": "0.00001000",
                },
                {
                    "filterType": "NOTIONAL",
                    "minNotional": "5.00000000",
                    "applyMinToMarket": True,
                    "maxNotional": "9000000.00000000",
                    "applyMaxToMarket": False,
                    "avgPriceMins": 5,
                },
            ],
            "permissions": [],
            "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
        }

    async def _klines(self, request: web.Request) -> web.Response:
        failed = self._log_rest(request)
        if failed is not None:
            return failed
        query = request.query
        market_id = query.get("symbol", "")
        interval = query.get("interval", "")
        if market_id not in self.markets:
            return web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)
        if interval not in INTERVAL_MS:
            return web.json_response({"code": -1120, "msg": "Invalid interval."}, status=400)
        step = INTERVAL_MS[interval]
        limit = min(int(query.get("limit", DEFAULT_KLINES_LIMIT)), MAX_KLINES_LIMIT)
        now = self.clock_ms()
        current_open = now - now % step
        last_open = current_open
        if "endTime" in query:
            end = int(query["endTime"])
            last_open = min(last_open, end - end % step)
        if "startTime" in query:
            first_open = max(self._align_up(int(query["startTime"]), step), self.listed_at_ms)
        else:
            first_open = max(last_open - (limit - 1) * step, self.listed_at_ms)
        rows: list[list[Any]] = []
        for open_ms in range(first_open, last_open + 1, step):
            if len(rows) >= limit:
                break
            o, h, low, c, v = kline_values(market_id, interval, open_ms)
            rows.append([open_ms, o, h, low, c, v, open_ms + step - 1, "0", 10, "0", "0", "0"])
        return web.json_response(rows)

    @staticmethod
    def _align_up(ts_ms: int, step: int) -> int:
        return ts_ms + (-ts_ms) % step

    # ------------------------------------------------------------------ WebSocket

    def _trade_stream(self, symbol: str) -> str:
        return f"{self.market_id(symbol).lower()}@trade"

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        # autoping off: the fake answers pings itself so that a stalled socket can ignore them.
        ws = web.WebSocketResponse(autoping=False, heartbeat=None)
        await ws.prepare(request)
        self.connections_opened += 1
        conn = _Connection(ws=ws, request=request, number=self.connections_opened)
        self._connections.append(conn)
        try:
            async for message in ws:
                if message.type == WSMsgType.PING:
                    if conn.stalled:
                        self.pings_ignored += 1
                    else:
                        await ws.pong(message.data)
                elif message.type == WSMsgType.TEXT and not conn.stalled:
                    await self._on_text(conn, message.data)
                elif message.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                    break
        finally:
            if conn in self._connections:
                self._connections.remove(conn)
        return ws

    async def _on_text(self, conn: _Connection, text: str) -> None:
        request = json.loads(text)
        self.ws_messages_received.append(request)
        method = request.get("method")
        params = [str(p) for p in request.get("params", [])]
        if method == "SUBSCRIBE":
            new_streams = [p for p in params if p not in conn.streams]
            conn.streams.update(params)
            await conn.ws.send_str(json.dumps({"result": None, "id": request.get("id")}))
            if self.replay_on_subscribe:
                for stream in new_streams:
                    for event in list(self._sent.get(stream, ()))[-self.replay_on_subscribe :]:
                        await conn.ws.send_str(json.dumps(event))
            async with self._subscribed:
                for stream in params:
                    self._subscriptions[stream] = self._subscriptions.get(stream, 0) + 1
                self._subscribed.notify_all()
        elif method == "UNSUBSCRIBE":
            conn.streams.difference_update(params)
            await conn.ws.send_str(json.dumps({"result": None, "id": request.get("id")}))
        else:
            await conn.ws.send_str(
                json.dumps(
                    {"error": {"code": 2, "msg": f"Invalid request: {method}"}, "id": request.get("id")}
                )
            )

    async def _broadcast(self, stream: str, event: dict[str, Any]) -> None:
        text = json.dumps(event)
        for conn in list(self._connections):
            if stream in conn.streams and not conn.stalled and not conn.ws.closed:
                with contextlib.suppress(ConnectionError):
                    await conn.ws.send_str(text)


class FakeBinanceThread:
    """A `FakeBinance` on its own event loop in a thread, for synchronous clients (ccxt sync).

    `with FakeBinanceThread() as fake:` — its controls are plain attribute changes, safe from
    the test's thread; `call(coro)` runs a coroutine control (e.g. `publish_trades`) on its loop.
    """

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-binance", daemon=True)
        self.fake: FakeBinance | None = None

    def __enter__(self) -> FakeBinance:
        self._thread.start()
        self.fake = self.call(self._make())
        return self.fake

    async def _make(self) -> FakeBinance:
        fake = FakeBinance(**self._kwargs)
        await fake.start()
        return fake

    def call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=30)

    def __exit__(self, *exc: object) -> None:
        if self.fake is not None:
            self.call(self.fake.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
