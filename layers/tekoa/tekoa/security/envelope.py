"""Envelope encryption of secrets: a fresh data key per secret, wrapped by a key provider,
and the payload sealed with AES-256-GCM under that data key.

The *encryption context* (e.g. `{"user_id": ..., "credential_id": ...}`) is bound twice:
the key provider binds it to the wrapped data key (KMS refuses to unwrap under another
context), and it is the payload's AES-GCM associated data, so a ciphertext moved to another
owner or row fails to decrypt even under a provider that ignored the context.

Plaintext data keys live in a `bytearray` that is overwritten as soon as the payload is
sealed or opened. In Python this is best effort (the AEAD object and boto3 keep copies we
cannot reach), so the real guarantee is that plaintext keys are never stored, logged or
returned, and go out of scope at the end of one call.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tekoa.errors import Conflict, ServiceUnavailable

NONCE_BYTES = 12
DATA_KEY_BYTES = 32
_AAD_PREFIX = b"tekoa.envelope.v1\x00"


class DecryptionFailed(Conflict):
    """A sealed secret cannot be opened: wrong owner/context, tampered data or a lost key."""

    code = "SECRET_UNREADABLE"

    def __init__(
        self, message: str = "the stored secret cannot be decrypted; delete it and add it again"
    ) -> None:
        super().__init__(message)


class KeyProviderUnavailable(ServiceUnavailable):
    """The key provider (KMS, key file) could not be reached or refused to work."""


class KeyProvider(Protocol):
    """Makes and unwraps data keys. Implementations: KMS (AWS) and a local key file."""

    @property
    def name(self) -> str:
        """Stable provider name stored with each secret (`kms` or `file`)."""
        ...

    def generate_data_key(self, context: Mapping[str, str]) -> tuple[bytearray, bytes, str]:
        """A new 256-bit data key: (plaintext key, wrapped key, id of the wrapping key)."""
        ...

    def decrypt_data_key(self, wrapped: bytes, context: Mapping[str, str]) -> bytearray:
        """Unwrap a data key; raise DecryptionFailed when `context` is not the one it was made with."""
        ...


@dataclass(frozen=True, slots=True)
class SealedSecret:
    """Everything stored for one secret; none of it reveals the plaintext."""

    key_provider: str
    key_id: str
    wrapped_key: bytes
    nonce: bytes
    ciphertext: bytes

    def __repr__(self) -> str:
        return f"SealedSecret(key_provider={self.key_provider!r}, key_id={self.key_id!r}, ...)"


def associated_data(context: Mapping[str, str]) -> bytes:
    """Canonical bytes of an encryption context (sorted keys, no whitespace)."""
    return _AAD_PREFIX + json.dumps(dict(context), sort_keys=True, separators=(",", ":")).encode()


def zeroize(buffer: bytearray) -> None:
    """Overwrite a buffer that held key material."""
    buffer[:] = bytes(len(buffer))


def seal(provider: KeyProvider, plaintext: bytes, context: Mapping[str, str]) -> SealedSecret:
    """Encrypt `plaintext` under a new data key bound to `context`."""
    data_key, wrapped, key_id = provider.generate_data_key(context)
    try:
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = AESGCM(data_key).encrypt(nonce, plaintext, associated_data(context))
    finally:
        zeroize(data_key)
    return SealedSecret(
        key_provider=provider.name, key_id=key_id, wrapped_key=wrapped, nonce=nonce, ciphertext=ciphertext
    )


def open_sealed(provider: KeyProvider, sealed: SealedSecret, context: Mapping[str, str]) -> bytes:
    """Decrypt a sealed secret; DecryptionFailed when context, key or data do not match."""
    if sealed.key_provider != provider.name:
        raise DecryptionFailed(
            f"the secret was sealed by the {sealed.key_provider!r} key provider, not {provider.name!r}"
        )
    data_key = provider.decrypt_data_key(sealed.wrapped_key, context)
    try:
        return AESGCM(data_key).decrypt(sealed.nonce, sealed.ciphertext, associated_data(context))
    except InvalidTag:
        raise DecryptionFailed() from None
    finally:
        zeroize(data_key)
