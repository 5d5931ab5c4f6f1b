"""Workload logins on a real PostgreSQL: each workload's role is created as the deploy declares
it, can do its own work through the tenancy transactions and nothing else, and holds a
password that matches its secret without the password ever reaching the server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from infra.workloads import DATABASE_LOGINS, WORKLOADS
from tekoa.db import candles as store
from tekoa.db.connection import PooledDatabase, connect, service_transaction, tenant_transaction
from tekoa.db.logins import LoginSecretMismatch, LoginSpec, ensure_login, provision_logins
from tekoa.domain.timeframes import Timeframe
from tekoa.market.stream.service import MarketStreamService
from tests.integration.market.market_support import T0, M, config, eventually, run, simulated, start, stop

SECRETS = {login.role: f"pw-{login.role}-{'x' * 24}" for login in DATABASE_LOGINS}


def _specs() -> list[LoginSpec]:
    return [
        LoginSpec(
            role=login.role,
            secret_arn=f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{login.role}",
            member_of=login.member_of,
            connection_limit=login.connection_limit,
        )
        for login in DATABASE_LOGINS
    ]


def _read_secret(arn: str) -> str:
    role = arn.rsplit(":", 1)[1]
    return json.dumps({"username": role, "password": SECRETS[role]})


def as_role(database_url: str, role: str) -> str:
    """The same database, logged in as `role` (the embedded server trusts its Unix socket)."""
    params = conninfo_to_dict(database_url)
    params["user"] = role
    params.pop("password", None)
    return make_conninfo("", **params)


@pytest.fixture
def provisioned(database_url: str) -> str:
    """A migrated database with every registry login provisioned, as the migrations Lambda does."""
    assert provision_logins(database_url, _specs(), _read_secret) == [login.role for login in DATABASE_LOGINS]
    return database_url


@pytest.fixture
def _restore_secrets() -> Iterator[None]:
    saved = dict(SECRETS)
    yield
    SECRETS.update(saved)


def _scram_matches(verifier: str, password: str) -> bool:
    # SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey> (RFC 5803)
    method, params, keys = verifier.split("$")
    iterations, salt = params.split(":")
    stored_key = keys.split(":")[0]
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    return (
        method == "SCRAM-SHA-256"
        and base64.b64encode(hashlib.sha256(client_key).digest()).decode() == stored_key
    )


def _role(database_url: str, role: str) -> dict[str, Any]:
    with connect(database_url) as conn:
        row = conn.execute(
            "SELECT rolcanlogin, rolinherit, rolconnlimit, rolsuper, rolcreaterole, rolbypassrls,"
            " rolpassword,"
            " ARRAY(SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid"
            "       WHERE m.member = a.oid ORDER BY 1)"
            " FROM pg_authid a WHERE rolname = %s",
            (role,),
        ).fetchone()
    assert row is not None, role
    keys = ("login", "inherit", "limit", "super", "createrole", "bypassrls", "password", "member_of")
    return dict(zip(keys, row, strict=True))


def test_every_registry_login_is_created_as_declared(provisioned: str) -> None:
    for login in DATABASE_LOGINS:
        role = _role(provisioned, login.role)
        assert (role["login"], role["inherit"], role["super"], role["createrole"], role["bypassrls"]) == (
            True, False, False, False, False
        )  # fmt: skip
        assert role["limit"] == login.connection_limit
        assert role["member_of"] == sorted(login.member_of)
        # The server holds only a SCRAM verifier, and it matches the secret's password.
        assert role["password"].startswith("SCRAM-SHA-256$")
        assert SECRETS[login.role] not in role["password"]
        assert _scram_matches(role["password"], SECRETS[login.role])


@pytest.mark.usefixtures("_restore_secrets")
def test_a_redeploy_brings_a_login_back_in_line(provisioned: str) -> None:
    # Given a login someone widened by hand and whose secret was replaced
    with connect(provisioned) as conn:
        conn.execute("GRANT tekoa_app TO tekoa_ingest")
        conn.execute("ALTER ROLE tekoa_ingest CONNECTION LIMIT 500")
    SECRETS["tekoa_ingest"] = "a-new-password-from-a-new-secret"

    # When the migrations Lambda runs again
    provision_logins(provisioned, _specs(), _read_secret)

    # Then it is exactly as declared again, with the new password
    role = _role(provisioned, "tekoa_ingest")
    assert role["member_of"] == ["tekoa_service"]
    assert role["limit"] == WORKLOADS["ingest"].database_login.connection_limit  # type: ignore[union-attr]
    assert _scram_matches(role["password"], "a-new-password-from-a-new-secret")


def test_a_secret_for_another_user_is_refused(database_url: str) -> None:
    def wrong(arn: str) -> str:
        return json.dumps({"username": "tekoa_admin", "password": "x"})

    with pytest.raises(LoginSecretMismatch):
        provision_logins(database_url, _specs()[:1], wrong)


@pytest.mark.parametrize(
    ("role", "member_of"),
    [("tekoa_app", ("tekoa_service",)), ("postgres", ("tekoa_app",)), ("tekoa_api", ("pg_read_all_data",))],
)
def test_a_login_can_neither_be_a_group_nor_join_anything_but_the_groups(
    role: str, member_of: tuple[str, ...]
) -> None:
    with pytest.raises(ValueError):
        LoginSpec(role=role, secret_arn="arn", member_of=member_of, connection_limit=5)


def test_a_login_alone_can_do_nothing(provisioned: str) -> None:
    with psycopg.connect(as_role(provisioned, "tekoa_api"), autocommit=True) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("tekoa_api",)
        # Outside a tenancy transaction: no table is readable, nothing can be created ...
        for statement in (
            "SELECT count(*) FROM users",
            "SELECT count(*) FROM candles",
            "CREATE TABLE x (a int)",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
        # ... and no role but its groups can be assumed.
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SET ROLE tekoa_market_stream")


def test_a_service_only_login_cannot_act_for_a_user(provisioned: str) -> None:
    with psycopg.connect(as_role(provisioned, "tekoa_market_stream"), autocommit=True) as conn:
        with service_transaction(conn):
            conn.execute("SELECT count(*) FROM candles").fetchone()
        with pytest.raises(psycopg.errors.InsufficientPrivilege), tenant_transaction(conn, uuid.uuid4()):
            pass


def test_the_api_does_its_work_as_tekoa_api(provisioned: str, settings: Any) -> None:
    import httpx

    from functions.api.app import create_app
    from functions.api.context import ApiContext
    from tests.conftest import LiveServer

    database = PooledDatabase(as_role(provisioned, "tekoa_api"), max_size=2)
    app = create_app(
        ApiContext.build(
            settings.model_copy(update={"database_url": as_role(provisioned, "tekoa_api")}), database
        )
    )
    try:
        with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=10) as client:
            registered = client.post(
                "/v1/auth/register",
                json={"email": "role@example.com", "password": "correct horse battery staple"},
            )
            assert registered.status_code == 201, registered.text
            auth = {"Authorization": f"Bearer {registered.json()['tokens']['access_token']}"}
            login = client.post(
                "/v1/auth/login",
                json={"email": "role@example.com", "password": "correct horse battery staple"},
            )
            assert login.status_code == 200, login.text
            assert client.get("/v1/me", headers=auth).status_code == 200
            credential = client.post(
                "/v1/broker-credentials",
                headers=auth,
                json={
                    "exchange": "binance",
                    "label": "main",
                    "api_key": "AKIA-role-test",
                    "secret": "s3cr3t-value",
                },
            )
            assert credential.status_code == 201, credential.text
            assert client.get("/v1/broker-credentials", headers=auth).status_code == 200
            grid = {
                "name": "BTC grid",
                "definition": {
                    "kind": "builtin",
                    "bot_type": "grid",
                    "params": {
                        "lower_price": "50000",
                        "upper_price": "70000",
                        "levels": 11,
                        "spacing": "geometric",
                        "order_size": {"amount": "0.001", "unit": "base"},
                    },
                },
            }
            strategy = client.post("/v1/strategies", headers={**auth, "Idempotency-Key": "grid-1"}, json=grid)
            assert strategy.status_code == 201, strategy.text
            replay = client.post("/v1/strategies", headers={**auth, "Idempotency-Key": "grid-1"}, json=grid)
            assert replay.headers.get("Idempotent-Replayed") == "true"
            bot = client.post(
                "/v1/bots",
                headers=auth,
                json={
                    "name": "grid bot",
                    "strategy_id": strategy.json()["id"],
                    "exchange": "simulated",
                    "symbol": "BTC/USDT",
                    "timeframe": "1m",
                },
            )
            assert bot.status_code == 201, bot.text
            started = client.post(f"/v1/bots/{bot.json()['id']}/start", headers=auth)
            assert started.status_code == 200, started.text
            assert client.get(f"/v1/bots/{bot.json()['id']}/status-history", headers=auth).status_code == 200
            assert client.get("/v1/activity", headers=auth).status_code == 200
            token = client.post("/v1/api-tokens", headers=auth, json={"name": "script", "scope": "read"})
            assert token.status_code == 201, token.text
            candles = client.get(
                "/v1/market/candles",
                headers=auth,
                params={"exchange": "simulated", "symbol": "BTC/USDT", "timeframe": "1m", "limit": 5},
            )
            assert candles.status_code == 200, candles.text
            assert client.get("/health").json()["database"]["ok"] is True
    finally:
        database.close()


def test_the_market_stream_does_its_work_as_tekoa_market_stream(provisioned: str) -> None:
    conninfo = as_role(provisioned, "tekoa_market_stream")

    async def body() -> None:
        exchange = simulated(start_ms=T0, stop_ms=T0 + 4 * M + 30_000)
        database = PooledDatabase(conninfo, max_size=2)
        service = MarketStreamService(exchange, database, None, config(), clock_ms=exchange.now_ms)
        task = await start(service)
        await eventually(
            lambda: service.counters["candles_written"] > 0, "candles written as the stream role"
        )
        await stop(service, task)
        database.close()

    run(body)
    with connect(provisioned) as conn, service_transaction(conn):
        assert store.read_candles(conn, "simulated", "BTC/USDT", Timeframe.M1, limit=100)


def test_ingest_does_its_work_as_tekoa_ingest(provisioned: str) -> None:
    import asyncio

    from tekoa.db.connection import LambdaDatabase
    from tekoa.market.ingest import BackfillRequest, run_backfill

    now = time.time_ns() // 1_000_000
    end = now - now % 3_600_000 - 3_600_000
    request = BackfillRequest(
        exchange="simulated", symbol="ETH/USDT", timeframe=Timeframe.M15, start=end - 2 * 3_600_000, end=end
    )
    database = LambdaDatabase(as_role(provisioned, "tekoa_ingest"))
    try:
        result = asyncio.run(run_backfill(request, database))
    finally:
        database.close()
    assert result.as_dict()["written"] == 8


def test_ensure_login_refuses_what_the_spec_would_refuse(database_url: str) -> None:
    with connect(database_url) as conn, pytest.raises(ValueError):
        ensure_login(conn, role="tekoa_service", password="x", member_of=["tekoa_app"], connection_limit=1)
