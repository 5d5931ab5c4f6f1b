"""The default `CredentialVerifier`: asks the exchange for the account balance through ccxt.

A balance needs a signed request, so a key the exchange accepts for it is a working key.
The simulated exchange has no accounts: every credential for it verifies. The client comes
from `tekoa.exchanges`, which imports ccxt only when a real exchange is asked (it is not part
of the API's slim layer; a deployment without it answers 503 for real exchanges instead of
failing at import).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tekoa.domain.exchanges import SIMULATED_EXCHANGE
from tekoa.domain.resources import CredentialRejected, CredentialSecrets
from tekoa.errors import NotFound, ServiceUnavailable
from tekoa.exchanges.clients import build_client
from tekoa.observability import logger


class ExchangeCredentialVerifier:
    """Verifies a credential by fetching its balance (ccxt `fetch_balance`)."""

    def __init__(self, *, url_overrides: Mapping[str, Any] | None = None) -> None:
        self.url_overrides = url_overrides  # a loopback exchange in tests

    def verify(self, exchange: str, secrets: CredentialSecrets) -> None:
        if exchange == SIMULATED_EXCHANGE:
            return
        try:
            client: Any = build_client(exchange, credentials=secrets, url_overrides=self.url_overrides)
        except ImportError:
            raise ServiceUnavailable("exchange verification is not available in this deployment") from None
        except NotFound:
            unsupported = f"exchange {exchange!r} is not supported by the installed ccxt"
            raise ServiceUnavailable(unsupported) from None
        import ccxt

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
