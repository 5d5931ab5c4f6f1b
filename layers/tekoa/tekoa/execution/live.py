"""Live brokers from stored credentials: the executor's and reconciliation's `BrokerProvider`.

A credential is decrypted (audited as `broker_credential.used`, purpose `trade`) when its
client is first built, and the client is kept for `ttl_s` so its markets load once. A live
account whose credential was deleted cannot trade: its orders are rejected before this.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from tekoa.db.connection import Database
from tekoa.domain.execution import Account
from tekoa.exchanges.capabilities import capabilities
from tekoa.exchanges.clients import build_client
from tekoa.execution.brokers import CcxtBroker, ExchangeRejected, LiveBroker
from tekoa.security.envelope import KeyProvider
from tekoa.services.credentials import load_credential_for_use


class CredentialBrokers:
    """`BrokerProvider` building a `CcxtBroker` per credential (thread-safe, cached)."""

    def __init__(
        self,
        database: Database,
        key_provider: KeyProvider,
        *,
        url_overrides: Mapping[str, Mapping[str, Any]] | None = None,
        timeout_ms: int = 10_000,
        ttl_s: float = 900.0,
    ) -> None:
        """`url_overrides` maps an exchange id to its ccxt `urls['api']` entries (tests aim
        real ccxt at a loopback fake this way)."""
        self._database = database
        self._key_provider = key_provider
        self._url_overrides = dict(url_overrides or {})
        self._timeout_ms = timeout_ms
        self._ttl_s = ttl_s
        self._lock = threading.Lock()
        self._brokers: dict[UUID, tuple[float, CcxtBroker]] = {}

    def live(self, user_id: UUID, account: Account) -> LiveBroker:
        credential_id = account.credential_id
        if credential_id is None:
            raise ExchangeRejected("the live account has no broker credential")
        with self._lock:
            cached = self._brokers.get(credential_id)
            if cached is not None and time.monotonic() - cached[0] < self._ttl_s:
                return cached[1]
        secrets = load_credential_for_use(
            self._database, self._key_provider, user_id, credential_id, purpose="trade"
        )
        client = build_client(
            account.exchange,
            credentials=secrets,
            url_overrides=self._url_overrides.get(account.exchange),
            timeout_ms=self._timeout_ms,
        )
        broker = CcxtBroker(client, account.exchange, capabilities(account.exchange))
        with self._lock:
            self._brokers[credential_id] = (time.monotonic(), broker)
        return broker
