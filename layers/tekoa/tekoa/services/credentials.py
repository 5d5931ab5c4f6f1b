"""Broker credentials: stored envelope-encrypted, shown only as a hint, every access audited.

* create: the secrets are sealed (tekoa.security.envelope) under a new data key whose
  encryption context is `{"user_id": owner, "credential_id": id}`, then stored with an
  audit entry `broker_credential.created`.
* use: `load_credential_for_use` is the only way back to the plaintext (the executor and the
  verifier call it); it writes `broker_credential.used` in the transaction that decrypts.
* verify: the `CredentialVerifier` port asks the exchange whether the key works
  (`tekoa.execution.credential_check` is the default adapter); success stamps `verified_at`.
* delete: removes the ciphertext for good (`broker_credential.deleted`); 409 while bots use it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Annotated, Any, Protocol
from uuid import UUID, uuid4

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr

from tekoa.db import credentials as rows
from tekoa.db.audit import record_audit
from tekoa.db.connection import BeforeCommit, Database, tenant_transaction
from tekoa.domain.exchanges import ExchangeId
from tekoa.domain.resources import BrokerCredential, CredentialNotFound, CredentialSecrets
from tekoa.domain.text import Name, storable_text
from tekoa.observability import logger
from tekoa.security.envelope import DecryptionFailed, KeyProvider, open_sealed, seal


def _storable_secret(value: SecretStr) -> SecretStr:
    storable_text(value.get_secret_value())
    return value


ApiKey = Annotated[SecretStr, Field(min_length=1, max_length=512), AfterValidator(_storable_secret)]
LongSecret = Annotated[SecretStr, Field(min_length=1, max_length=8192), AfterValidator(_storable_secret)]
ShortSecret = Annotated[SecretStr, Field(min_length=1, max_length=512), AfterValidator(_storable_secret)]


class CredentialCreate(BaseModel):
    """An exchange API key to store. The secrets are write-only: no response ever shows them."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    exchange: ExchangeId
    label: Name = Field(description="Your name for this key, e.g. 'Binance main'.")
    api_key: ApiKey
    secret: LongSecret
    password: ShortSecret | None = Field(None, description="Passphrase, for exchanges that use one.")
    uid: ShortSecret | None = Field(None, description="Account uid, for exchanges that use one.")

    def secrets(self) -> CredentialSecrets:
        """The secret parts, as the executor will get them back."""
        return CredentialSecrets(
            api_key=self.api_key, secret=self.secret, password=self.password, uid=self.uid
        )

    def fingerprint(self) -> dict[str, Any]:
        """What identifies this request for idempotency, with the secrets only as a digest."""
        digest = hashlib.sha256(_payload(self.secrets())).hexdigest()
        return {"exchange": self.exchange, "label": self.label, "secrets_sha256": digest}


class CredentialVerifier(Protocol):
    """Asks an exchange whether a credential works (e.g. by fetching the balance)."""

    def verify(self, exchange: str, secrets: CredentialSecrets) -> None:
        """Return if the exchange accepts the key; CredentialRejected if it refuses it;
        ServiceUnavailable if the exchange cannot be asked now."""
        ...


def key_hint(api_key: str) -> str:
    """First 4 … last 4 characters of an API key; fewer for short keys, so most stays hidden."""
    if len(api_key) >= 12:
        return f"{api_key[:4]}…{api_key[-4:]}"
    return "…" + api_key[-(len(api_key) // 4) :] if len(api_key) >= 4 else "…"


ENCRYPTION_CONTEXT_KEYS = ("user_id", "credential_id")
"""The keys of every broker-key envelope's context: the KMS key's policy refuses any other shape."""


def encryption_context(user_id: UUID, credential_id: UUID) -> dict[str, str]:
    """The context a credential's data key and payload are bound to."""
    return dict(zip(ENCRYPTION_CONTEXT_KEYS, (str(user_id), str(credential_id)), strict=True))


def create_credential(
    database: Database,
    key_provider: KeyProvider,
    user_id: UUID,
    request: CredentialCreate,
    *,
    request_id: str | None = None,
    before_commit: BeforeCommit[BrokerCredential] | None = None,
) -> BrokerCredential:
    """Seal and store a credential; audited as `broker_credential.created`."""
    credential_id = uuid4()
    # Seal before the transaction: the key service round trip holds no database lock.
    sealed = seal(key_provider, _payload(request.secrets()), encryption_context(user_id, credential_id))
    hint = key_hint(request.api_key.get_secret_value())
    with database.connection() as conn, tenant_transaction(conn, user_id):
        credential = rows.insert_credential(
            conn,
            user_id,
            credential_id=credential_id,
            exchange=request.exchange,
            label=request.label,
            hint=hint,
            sealed=sealed,
        )
        record_audit(
            conn,
            user_id=user_id,
            action="broker_credential.created",
            target_type="broker_credential",
            target_id=str(credential_id),
            detail={"exchange": request.exchange, "key_provider": sealed.key_provider},
            request_id=request_id,
        )
        if before_commit is not None:
            before_commit(conn, credential)
    logger.info(
        "broker credential stored", extra={"credential_id": str(credential_id), "exchange": request.exchange}
    )
    return credential


def list_credentials(
    database: Database, user_id: UUID, *, after: tuple[datetime, UUID] | None = None, limit: int
) -> list[BrokerCredential]:
    """The caller's credentials (hints only), newest first."""
    with database.connection() as conn, tenant_transaction(conn, user_id):
        return rows.list_credentials(conn, user_id, after=after, limit=limit)


def get_credential(database: Database, user_id: UUID, credential_id: UUID) -> BrokerCredential:
    """One of the caller's credentials (hint only); CredentialNotFound otherwise."""
    with database.connection() as conn, tenant_transaction(conn, user_id):
        credential = rows.get_credential(conn, user_id, credential_id)
    if credential is None:
        raise CredentialNotFound()
    return credential


def delete_credential(
    database: Database, user_id: UUID, credential_id: UUID, *, request_id: str | None = None
) -> None:
    """Delete a credential and its ciphertext; audited as `broker_credential.deleted`."""
    with database.connection() as conn, tenant_transaction(conn, user_id):
        credential = rows.get_credential(conn, user_id, credential_id)
        if credential is None:
            raise CredentialNotFound()
        rows.delete_credential(conn, user_id, credential_id)
        record_audit(
            conn,
            user_id=user_id,
            action="broker_credential.deleted",
            target_type="broker_credential",
            target_id=str(credential_id),
            detail={"exchange": credential.exchange},
            request_id=request_id,
        )


def load_credential_for_use(
    database: Database,
    key_provider: KeyProvider,
    user_id: UUID,
    credential_id: UUID,
    *,
    purpose: str,
    request_id: str | None = None,
) -> CredentialSecrets:
    """Decrypt a credential for `purpose` (e.g. `verify`, `order`), audited as `broker_credential.used`.

    The audit entry commits with the decryption; a credential that cannot be decrypted (wrong
    owner context, tampering, lost key) raises DecryptionFailed and is audited as
    `broker_credential.unreadable` instead.
    """
    try:
        with database.connection() as conn, tenant_transaction(conn, user_id):
            found = rows.get_sealed_credential(conn, user_id, credential_id)
            if found is None:
                raise CredentialNotFound()
            credential, sealed = found
            plaintext = open_sealed(key_provider, sealed, encryption_context(user_id, credential_id))
            rows.touch_last_used(conn, user_id, credential_id)
            record_audit(
                conn,
                user_id=user_id,
                action="broker_credential.used",
                target_type="broker_credential",
                target_id=str(credential_id),
                detail={"purpose": purpose, "exchange": credential.exchange},
                request_id=request_id,
            )
    except DecryptionFailed:
        logger.warning("broker credential unreadable", extra={"credential_id": str(credential_id)})
        with database.connection() as conn, tenant_transaction(conn, user_id):
            record_audit(
                conn,
                user_id=user_id,
                action="broker_credential.unreadable",
                target_type="broker_credential",
                target_id=str(credential_id),
                detail={"purpose": purpose},
                request_id=request_id,
            )
        raise
    return CredentialSecrets.model_validate(json.loads(plaintext))


def verify_credential(
    database: Database,
    key_provider: KeyProvider,
    verifier: CredentialVerifier,
    user_id: UUID,
    credential_id: UUID,
    *,
    request_id: str | None = None,
) -> BrokerCredential:
    """Ask the exchange whether the credential works; on success mark it verified.

    No transaction is held while the exchange is asked.
    """
    credential = get_credential(database, user_id, credential_id)
    secrets = load_credential_for_use(
        database, key_provider, user_id, credential_id, purpose="verify", request_id=request_id
    )
    verifier.verify(credential.exchange, secrets)
    with database.connection() as conn, tenant_transaction(conn, user_id):
        verified = rows.mark_verified(conn, user_id, credential_id)
        if verified is None:  # deleted while the exchange was asked
            raise CredentialNotFound()
        record_audit(
            conn,
            user_id=user_id,
            action="broker_credential.verified",
            target_type="broker_credential",
            target_id=str(credential_id),
            detail={"exchange": credential.exchange},
            request_id=request_id,
        )
    return verified


def _payload(secrets: CredentialSecrets) -> bytes:
    values = {
        "api_key": secrets.api_key.get_secret_value(),
        "secret": secrets.secret.get_secret_value(),
        "password": secrets.password.get_secret_value() if secrets.password is not None else None,
        "uid": secrets.uid.get_secret_value() if secrets.uid is not None else None,
    }
    return json.dumps(values, sort_keys=True, separators=(",", ":")).encode()
