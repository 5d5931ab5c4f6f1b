"""The default `CredentialVerifier`: asks the exchange for the account balance through ccxt.

A balance needs a signed request, so a key the exchange accepts for it is a working key.
The simulated exchange has no accounts: every credential for it verifies. ccxt is imported
only when a real exchange is asked (it is not part of the API's slim layer; a deployment
without it answers 503 for real exchanges instead of failing at import).
"""

from __future__ import annotations

from typing import Any

from tekoa.domain.exchanges import SIMULATED_EXCHANGE
from tekoa.domain.resources import CredentialRejected, CredentialSecrets
from tekoa.errors import ServiceUnavailable
from tekoa.observability import logger

TIMEOUT_MS = 10_000


class ExchangeCredentialVerifier:
    """Verifies a credential by fetching its balance (ccxt `fetch_balance`)."""

    def verify(self, exchange: str, secrets: CredentialSecrets) -> None:
        if exchange == SIMULATED_EXCHANGE:
            return
        try:
            import ccxt
        except ImportError:
            raise ServiceUnavailable("exchange verification is not available in this deployment") from None
        exchange_class: Any = getattr(ccxt, exchange, None)
        if exchange_class is None:
            raise ServiceUnavailable(f"exchange {exchange!r} is not supported by the installed ccxt")
        client = exchange_class({**secrets.ccxt_config(), "timeout": TIMEOUT_MS, "enableRateLimit": True})
        try:
            client.fetch_balance()
        except (ccxt.AuthenticationError, ccxt.PermissionDenied, ccxt.AccountSuspended):
            raise CredentialRejected(
                f"{exchange} refused this API key (check the key, secret and its permissions)",
                field="api_key",
            ) from None
        except ccxt.BaseError as exc:
            logger.warning(
                "credential verification failed",
                extra={"exchange": exchange, "error_type": type(exc).__name__},
            )
            raise ServiceUnavailable(
                f"{exchange} could not be reached to verify the key; try again"
            ) from None
