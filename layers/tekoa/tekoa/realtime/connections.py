"""What the WebSocket routes do, independent of API Gateway's event shape.

* `$connect`: the bearer (an access token or a personal API token) must be good right now —
  the same check the REST API makes, token generation included — else the connection is
  refused. The connection is recorded with what it was opened with, so that a later sign-out,
  revocation or disabling ends what is pushed to it.
* `$disconnect`: the connection is forgotten.
* `subscribe` / `unsubscribe`: market channels are public; a bot channel needs the bot to be
  the caller's (another user's bot is "no bot with this id", as over REST).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import psycopg

from tekoa.auth.models import Principal
from tekoa.auth.service import Accounts
from tekoa.db import bots as bot_rows
from tekoa.db import ws_connections as rows
from tekoa.db.connection import Database, service_transaction, tenant_transaction
from tekoa.errors import AuthenticationFailed, ValidationFailed
from tekoa.realtime.messages import MAX_CHANNELS_PER_CONNECTION, SubscriptionRequest

CONNECTION_LIFETIME = timedelta(hours=2)
"""API Gateway closes every WebSocket connection after two hours."""


class ConnectionGone(AuthenticationFailed):
    """The connection is unknown, or what opened it (a session, an API token) has ended."""

    def __init__(self) -> None:
        super().__init__("this connection is no longer signed in; connect again with a valid token")


class WebSocketRoutes:
    """The route logic of the WebSocket API (see the module docstring)."""

    def __init__(self, database: Database, accounts: Accounts) -> None:
        self.database = database
        self.accounts = accounts

    def connect(self, connection_id: str, bearer: str | None, *, now: datetime | None = None) -> Principal:
        """Authenticate and record a new connection; AuthenticationFailed refuses it."""
        if not bearer:
            raise AuthenticationFailed("missing token: pass ?token=... or the bearer.<token> subprotocol")
        principal = self.accounts.authenticate(self.database, bearer)
        expires_at = (now or datetime.now(UTC)) + CONNECTION_LIFETIME
        with self.database.connection() as conn, tenant_transaction(conn, principal.user_id):
            rows.insert_connection(
                conn,
                principal.user_id,
                connection_id,
                token_generation=principal.generation,
                api_token_id=principal.token_id,
                expires_at=expires_at,
            )
        return principal

    def disconnect(self, connection_id: str) -> None:
        """Forget a closed connection (unknown ids are fine: $disconnect is at-least-once)."""
        with self.database.connection() as conn, service_transaction(conn):
            rows.delete_connections(conn, [connection_id])

    def subscribe(self, connection_id: str, request: SubscriptionRequest) -> list[str]:
        """Add the request's channels; the connection's channels after it."""
        user_id = self._owner(connection_id)
        with self.database.connection() as conn, tenant_transaction(conn, user_id):
            wanted = request.bot_ids()
            owned = bot_rows.owned_bot_ids(conn, user_id, wanted) if wanted else set()
            for index, bot in enumerate(request.bots):
                if isinstance(bot, UUID) and bot not in owned:
                    raise ValidationFailed("no bot with this id", field=f"bots.{index}")
            try:
                channels = rows.add_channels(conn, user_id, connection_id, request.channels())
            except psycopg.errors.CheckViolation:
                raise ValidationFailed(
                    f"a connection subscribes to at most {MAX_CHANNELS_PER_CONNECTION} channels",
                    field="markets",
                ) from None
        if channels is None:
            raise ConnectionGone()
        return channels

    def unsubscribe(self, connection_id: str, request: SubscriptionRequest) -> list[str]:
        """Remove the request's channels; the connection's channels after it."""
        user_id = self._owner(connection_id)
        with self.database.connection() as conn, tenant_transaction(conn, user_id):
            channels = rows.remove_channels(conn, user_id, connection_id, request.channels())
        if channels is None:
            raise ConnectionGone()
        return channels

    def _owner(self, connection_id: str) -> UUID:
        with self.database.connection() as conn, service_transaction(conn):
            user_id = rows.owner_of(conn, connection_id)
        if user_id is None:
            raise ConnectionGone()
        return user_id
