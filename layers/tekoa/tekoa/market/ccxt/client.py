"""The ccxt clients of one exchange: one REST client (markets loaded once) and a WebSocket
client per watched symbol, created, closed and retried in one place.

Requests the exchange will never accept (bad symbol, authentication, unsupported) are not
retried; REST retries only what is transient by nature (`ccxt.NetworkError`), after an
exponential, jittered, capped delay (`Backoff`), so a failed page is not retried forever.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar, cast

import ccxt
import ccxt.pro

from tekoa.errors import NotFound
from tekoa.exchanges.clients import build_client, deep_merge

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

# Requests the exchange will refuse however often they are sent: surface them, do not retry.
FATAL_ERRORS: Final = (ccxt.AuthenticationError, ccxt.BadRequest, ccxt.NotSupported, ccxt.ArgumentsRequired)
# Everything else a socket or an exchange throws at a live stream is worth reconnecting for.
STREAM_RETRYABLE: Final = (ccxt.NetworkError, ccxt.ExchangeError, OSError)
# REST retries only what is transient by nature: a failed page must not be retried forever.
_REST_RETRYABLE: Final = (ccxt.NetworkError,)

_MAX_BACKOFF_EXPONENT: Final = 64

# Stream options on top of the venue's (`tekoa.exchanges` builds every client): ccxt.pro keeps
# this many trades per symbol between two watch calls; a slow consumer beyond it would lose
# trades silently, so leave generous room.
_STREAM_OPTIONS: Final[Mapping[str, Any]] = {"options": {"tradesLimit": 10_000}}


@dataclass(frozen=True, slots=True)
class Backoff:
    """Reconnect delays: `initial_s * factor**attempt`, capped at `max_s`, minus random jitter.

    Jitter takes up to `jitter` (a fraction) off each delay so that many containers losing the
    same exchange do not reconnect in lockstep.
    """

    initial_s: float = 0.5
    max_s: float = 30.0
    factor: float = 2.0
    jitter: float = 0.5

    def delay_s(self, attempt: int, rng: random.Random) -> float:
        """Delay before retry number `attempt` (0 for the first retry)."""
        capped = min(self.max_s, self.initial_s * self.factor ** min(attempt, _MAX_BACKOFF_EXPONENT))
        return capped * (1.0 - self.jitter * rng.random())


class ExchangeClients:
    """Creates, retries and closes one exchange's ccxt clients.

    `config` is passed to the ccxt constructor (API keys, options); it is never logged.
    `url_overrides` is deep-merged into the client's `urls['api']` (how tests aim the real
    ccxt code at a loopback fake).
    """

    def __init__(
        self,
        exchange_id: str,
        *,
        config: Mapping[str, Any] | None,
        url_overrides: Mapping[str, Any] | None,
        backoff: Backoff,
        rest_attempts: int,
        close_timeout_s: float,
        rng: random.Random,
    ) -> None:
        if exchange_id not in ccxt.pro.exchanges:
            raise NotFound(f"ccxt.pro has no exchange {exchange_id!r}", field="exchange")
        self.exchange = exchange_id
        self.backoff = backoff
        self.rng = rng
        self._extra = deep_merge(_STREAM_OPTIONS, config or {})
        self._url_overrides = url_overrides
        self._rest_attempts = max(1, rest_attempts)
        self._close_timeout_s = close_timeout_s
        self._rest: Any = None
        self._rest_lock = asyncio.Lock()
        self._ws_clients: set[Any] = set()
        self._closing: set[asyncio.Task[None]] = set()

    async def rest(self) -> Any:
        """The REST client with markets loaded (once; retried while the exchange is unreachable)."""
        async with self._rest_lock:
            if self._rest is None:
                self._rest = self._make_client()
            rest = self._rest
            if not rest.markets:

                async def load() -> object:
                    return cast(object, await rest.load_markets())

                await self.with_retries("load_markets", load)
        return rest

    def _make_client(self) -> Any:
        return build_client(self.exchange, kind="pro", url_overrides=self._url_overrides, extra=self._extra)

    def new_ws_client(self) -> Any:
        """A fresh WebSocket client sharing the markets the REST client loaded (no REST call)."""
        client = self._make_client()
        client.set_markets_from_exchange(self._rest)
        self._ws_clients.add(client)
        return client

    async def close_client(self, client: Any) -> None:
        """Close a client; being cancelled meanwhile never leaks its socket."""
        self._ws_clients.discard(client)
        closing = asyncio.create_task(self._close_quietly(client))
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)
        try:
            await asyncio.shield(closing)
        except asyncio.CancelledError:
            # Being cancelled must not leak the socket: finish releasing it, then go on cancelling.
            await asyncio.wait([closing])
            raise

    async def _close_quietly(self, client: Any) -> None:
        try:
            # A dead peer may never answer the close handshake: do not wait on it forever.
            async with asyncio.timeout(self._close_timeout_s):
                await client.close()
        except Exception as exc:
            logger.warning(
                "closing ccxt client failed", extra={"exchange": self.exchange, "error": repr(exc)}
            )

    async def with_retries(self, what: str, call: Callable[[], Awaitable[_T]]) -> _T:
        """`call()`, retried after transient network errors up to `rest_attempts` times."""
        for attempt in itertools.count():
            try:
                return await call()
            except _REST_RETRYABLE as exc:
                if attempt + 1 >= self._rest_attempts:
                    raise
                delay = self.backoff.delay_s(attempt, self.rng)
                logger.warning(
                    "exchange request failed, retrying",
                    extra={
                        "exchange": self.exchange,
                        "request": what,
                        "attempt": attempt + 1,
                        "delay_s": round(delay, 3),
                        "error": str(exc),
                    },
                )
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def close(self) -> None:
        """Close every WebSocket client, then the REST client."""
        for client in list(self._ws_clients):
            await self.close_client(client)
        if self._rest is not None:
            rest, self._rest = self._rest, None
            await self.close_client(rest)
