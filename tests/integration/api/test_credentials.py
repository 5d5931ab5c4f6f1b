"""/v1/broker-credentials over HTTP against real PostgreSQL and the moto KMS: secrets are sealed,
never shown, audited on every access, and bound to their owner."""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest

from tekoa.aws.kms import KmsKeyProvider
from tekoa.db.audit import list_audit
from tekoa.db.connection import PooledDatabase, service_transaction, tenant_transaction
from tekoa.db.credentials import get_sealed_credential
from tekoa.observability import logger as tekoa_logger
from tekoa.security.envelope import DecryptionFailed, SealedSecret, open_sealed
from tekoa.services.credentials import encryption_context, load_credential_for_use
from tests.conftest import use_verifier
from tests.integration.api.auth_support import settings as settings
from tests.integration.api.trading_support import API_KEY, FakeVerifier, create_credential, new_user

CANARY_SECRET = "CANARY-SECRET-7f3a9c1e55d04b6a"
CANARY_PASSWORD = "CANARY-PASSPHRASE-0b9e2d41"
CANARY_UID = "CANARY-UID-93aa"


def _sealed(settings: Any, user_id: UUID, credential_id: str) -> SealedSecret:
    with psycopg.connect(settings.database_url, autocommit=True) as conn, tenant_transaction(conn, user_id):
        found = get_sealed_credential(conn, user_id, UUID(credential_id))
    assert found is not None
    return found[1]


def test_a_credential_shows_only_its_hint(api: httpx.Client) -> None:
    alice = new_user(api)

    response = api.post(
        "/v1/broker-credentials",
        json={"exchange": "binance", "label": "main", "api_key": API_KEY, "secret": CANARY_SECRET},
        headers=alice.headers,
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {
        "id",
        "exchange",
        "label",
        "hint",
        "verified",
        "verified_at",
        "last_used_at",
        "created_at",
    }
    assert (body["exchange"], body["label"], body["hint"], body["verified"]) == (
        "binance",
        "main",
        "AKIA…WXYZ",
        False,
    )
    assert response.headers["Cache-Control"] == "no-store"


def test_an_unknown_exchange_is_422(api: httpx.Client) -> None:
    alice = new_user(api)

    response = api.post(
        "/v1/broker-credentials",
        json={"exchange": "mtgox", "label": "x", "api_key": API_KEY, "secret": CANARY_SECRET},
        headers=alice.headers,
    )

    assert response.status_code == 422
    assert response.json()["detail"]["field"] == "exchange"
    assert CANARY_SECRET not in response.text


def test_the_secret_round_trips_through_kms_envelope_encryption(api: httpx.Client, settings: Any) -> None:
    alice = new_user(api)
    credential = create_credential(api, alice, secret=CANARY_SECRET, password=CANARY_PASSWORD)
    verifier = FakeVerifier()
    use_verifier(api, verifier)

    response = api.post(f"/v1/broker-credentials/{credential['id']}/verify", headers=alice.headers)

    assert response.status_code == 200, response.text
    assert response.json()["verified"] is True
    [(exchange, secrets)] = verifier.calls
    assert exchange == "binance"
    assert secrets.api_key.get_secret_value() == API_KEY
    assert secrets.secret.get_secret_value() == CANARY_SECRET
    assert secrets.password is not None and secrets.password.get_secret_value() == CANARY_PASSWORD
    sealed = _sealed(settings, alice.user_id, credential["id"])
    assert sealed.key_provider == "kms"
    assert sealed.key_id.startswith("arn:aws:kms:")
    assert CANARY_SECRET.encode() not in sealed.ciphertext + sealed.wrapped_key


def test_kms_refuses_to_unwrap_the_data_key_under_another_users_context(
    api: httpx.Client, settings: Any
) -> None:
    alice, bob = new_user(api), new_user(api)
    credential = create_credential(api, alice, secret=CANARY_SECRET)
    sealed = _sealed(settings, alice.user_id, credential["id"])
    kms = KmsKeyProvider.from_settings(settings)
    credential_id = UUID(credential["id"])

    with pytest.raises(DecryptionFailed):
        kms.decrypt_data_key(sealed.wrapped_key, encryption_context(bob.user_id, credential_id))
    with pytest.raises(DecryptionFailed):
        open_sealed(kms, sealed, encryption_context(bob.user_id, credential_id))
    assert (
        len(kms.decrypt_data_key(sealed.wrapped_key, encryption_context(alice.user_id, credential_id))) == 32
    )


def test_ciphertext_moved_to_another_row_cannot_be_decrypted(api: httpx.Client, settings: Any) -> None:
    alice = new_user(api)
    original = create_credential(api, alice, secret=CANARY_SECRET)
    target = create_credential(api, alice, secret="other")
    with psycopg.connect(settings.database_url, autocommit=True) as conn, service_transaction(conn):
        conn.execute(
            "UPDATE broker_credentials t"
            " SET wrapped_key = o.wrapped_key, nonce = o.nonce, ciphertext = o.ciphertext"
            " FROM broker_credentials o WHERE o.id = %s AND t.id = %s",
            (original["id"], target["id"]),
        )
    use_verifier(api, FakeVerifier())

    response = api.post(f"/v1/broker-credentials/{target['id']}/verify", headers=alice.headers)

    assert response.status_code == 409
    assert response.json()["detail"]["code"] == "SECRET_UNREADABLE"
    assert CANARY_SECRET not in response.text
    with (
        psycopg.connect(settings.database_url, autocommit=True) as conn,
        tenant_transaction(conn, alice.user_id),
    ):
        actions = [entry["action"] for entry in list_audit(conn, alice.user_id)]
    assert "broker_credential.unreadable" in actions


def test_load_for_use_decrypts_audits_and_is_scoped_to_the_owner(api: httpx.Client, settings: Any) -> None:
    alice, bob = new_user(api), new_user(api)
    credential = create_credential(api, alice, secret=CANARY_SECRET)
    database = PooledDatabase(settings.database_url, max_size=1)
    kms = KmsKeyProvider.from_settings(settings)
    try:
        secrets = load_credential_for_use(
            database, kms, alice.user_id, UUID(credential["id"]), purpose="order"
        )
        with pytest.raises(Exception) as refused:
            load_credential_for_use(database, kms, bob.user_id, UUID(credential["id"]), purpose="order")
    finally:
        database.close()

    assert secrets.secret.get_secret_value() == CANARY_SECRET
    assert CANARY_SECRET not in repr(secrets)
    assert getattr(refused.value, "code", None) == "NOT_FOUND"
    with (
        psycopg.connect(settings.database_url, autocommit=True) as conn,
        tenant_transaction(conn, alice.user_id),
    ):
        used = [e for e in list_audit(conn, alice.user_id) if e["action"] == "broker_credential.used"]
    assert [(e["target_id"], e["detail"]["purpose"]) for e in used] == [(credential["id"], "order")]


def test_create_use_verify_and_delete_are_audited(api: httpx.Client, settings: Any) -> None:
    alice = new_user(api)
    credential = create_credential(api, alice, secret=CANARY_SECRET)
    use_verifier(api, FakeVerifier())
    api.post(f"/v1/broker-credentials/{credential['id']}/verify", headers=alice.headers)

    assert api.delete(f"/v1/broker-credentials/{credential['id']}", headers=alice.headers).status_code == 204

    with (
        psycopg.connect(settings.database_url, autocommit=True) as conn,
        tenant_transaction(conn, alice.user_id),
    ):
        entries = [e for e in list_audit(conn, alice.user_id) if e["target_type"] == "broker_credential"]
    assert [e["action"] for e in reversed(entries)] == [
        "broker_credential.created",
        "broker_credential.used",
        "broker_credential.verified",
        "broker_credential.deleted",
    ]
    assert all(e["target_id"] == credential["id"] for e in entries)
    assert api.get(f"/v1/broker-credentials/{credential['id']}", headers=alice.headers).status_code == 404


def test_a_rejected_key_stays_unverified(api: httpx.Client) -> None:
    alice = new_user(api)
    credential = create_credential(api, alice)
    use_verifier(api, FakeVerifier(accept=False))

    response = api.post(f"/v1/broker-credentials/{credential['id']}/verify", headers=alice.headers)

    assert response.status_code == 422
    assert response.json()["detail"]["code"] == "CREDENTIAL_REJECTED"
    assert (
        api.get(f"/v1/broker-credentials/{credential['id']}", headers=alice.headers).json()["verified"]
        is False
    )


def test_the_simulated_exchange_verifies_with_the_default_verifier(api: httpx.Client) -> None:
    alice = new_user(api)
    credential = create_credential(api, alice, exchange="simulated")

    response = api.post(f"/v1/broker-credentials/{credential['id']}/verify", headers=alice.headers)

    assert response.status_code == 200
    assert response.json()["verified"] is True


def test_an_idempotent_create_with_another_secret_is_refused(api: httpx.Client) -> None:
    alice = new_user(api)
    headers = {**alice.headers, "Idempotency-Key": "cred-1"}
    body = {"exchange": "binance", "label": "k", "api_key": API_KEY, "secret": CANARY_SECRET}

    first = api.post("/v1/broker-credentials", json=body, headers=headers)
    replay = api.post("/v1/broker-credentials", json=body, headers=headers)
    other = api.post("/v1/broker-credentials", json={**body, "secret": "different"}, headers=headers)

    assert first.status_code == replay.status_code == 201
    assert replay.json()["id"] == first.json()["id"]
    assert other.status_code == 422
    assert len(api.get("/v1/broker-credentials", headers=alice.headers).json()["items"]) == 1


def test_the_canary_secret_never_appears_in_responses_headers_logs_or_stored_plaintext(
    api: httpx.Client, settings: Any, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    tekoa_logging = logging.getLogger(tekoa_logger.name)
    previous_level = tekoa_logging.level
    tekoa_logging.addHandler(caplog.handler)
    tekoa_logging.setLevel(logging.DEBUG)
    responses: list[httpx.Response] = []
    try:
        alice = new_user(api)
        headers = {**alice.headers, "Idempotency-Key": "canary"}
        body = {
            "exchange": "binance",
            "label": "canary",
            "api_key": API_KEY,
            "secret": CANARY_SECRET,
            "password": CANARY_PASSWORD,
            "uid": CANARY_UID,
        }
        created = api.post("/v1/broker-credentials", json=body, headers=headers)
        responses.append(created)
        responses.append(api.post("/v1/broker-credentials", json=body, headers=headers))  # replay
        too_long = {**body, "secret": CANARY_SECRET * 1000}
        responses.append(api.post("/v1/broker-credentials", json=too_long, headers=alice.headers))
        responses.append(
            api.post("/v1/broker-credentials", json={**body, "exchange": "nope"}, headers=alice.headers)
        )
        credential_id = created.json()["id"]
        responses.append(api.get("/v1/broker-credentials", headers=alice.headers))
        responses.append(api.get(f"/v1/broker-credentials/{credential_id}", headers=alice.headers))
        use_verifier(api, FakeVerifier(accept=False))
        responses.append(api.post(f"/v1/broker-credentials/{credential_id}/verify", headers=alice.headers))
        use_verifier(api, FakeVerifier())
        responses.append(api.post(f"/v1/broker-credentials/{credential_id}/verify", headers=alice.headers))
        responses.append(api.delete(f"/v1/broker-credentials/{credential_id}", headers=alice.headers))
    finally:
        tekoa_logging.removeHandler(caplog.handler)
        tekoa_logging.setLevel(previous_level)

    assert [r.status_code for r in responses] == [201, 201, 422, 422, 200, 200, 422, 200, 204]
    canaries = (CANARY_SECRET, CANARY_PASSWORD, CANARY_UID)
    for response in responses:
        exposed = response.text + "".join(f"{k}: {v}\n" for k, v in response.headers.items())
        assert not any(canary in exposed for canary in canaries), response.request.url
    captured = capfd.readouterr()
    log_text = caplog.text + "".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    assert caplog.records, "expected some log lines to inspect"
    for canary in canaries:
        assert canary not in log_text
        assert canary not in captured.out + captured.err
    with psycopg.connect(settings.database_url, autocommit=True) as conn, service_transaction(conn):
        dump = conn.execute(
            "SELECT coalesce(string_agg(t::text, ''), '') FROM ("
            " SELECT a::text AS t FROM audit_log a UNION ALL SELECT i::text FROM idempotency_keys i"
            " UNION ALL SELECT c::text FROM activity c) rows"
        ).fetchone()
    assert dump is not None
    assert not any(canary in dump[0] for canary in canaries)
