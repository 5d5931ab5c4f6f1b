"""A key provider backed by a master key file, for the local platform.

moto's KMS keys live in memory and vanish when the local AWS endpoint restarts, which would
make every stored broker credential unreadable after `tekoa up` is run again. Locally the
data keys are therefore wrapped with AES-256-GCM under a 256-bit master key kept in
`<data_dir>/master.key` (created once, mode 0600). The encryption context is the wrapping's
associated data, exactly as KMS binds it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Mapping
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tekoa.security.envelope import (
    DATA_KEY_BYTES,
    NONCE_BYTES,
    DecryptionFailed,
    KeyProviderUnavailable,
    associated_data,
    zeroize,
)

MASTER_KEY_FILE = "master.key"


class LocalFileKeyProvider:
    """Wraps data keys under a master key file; the file is created on first use."""

    name = "file"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._master: bytes | None = None

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> LocalFileKeyProvider:
        """The provider whose master key is `<data_dir>/master.key`."""
        return cls(data_dir / MASTER_KEY_FILE)

    def _master_key(self) -> bytes:
        with self._lock:
            if self._master is None:
                self._master = load_or_create_key_file(self.path, DATA_KEY_BYTES)
            return self._master

    @property
    def key_id(self) -> str:
        """A fingerprint of the master key (not the key): tells which key sealed a secret."""
        return "file:" + hashlib.sha256(b"tekoa.master-key-id\x00" + self._master_key()).hexdigest()[:32]

    def generate_data_key(self, context: Mapping[str, str]) -> tuple[bytearray, bytes, str]:
        data_key = bytearray(os.urandom(DATA_KEY_BYTES))
        nonce = os.urandom(NONCE_BYTES)
        wrapped = nonce + AESGCM(self._master_key()).encrypt(nonce, bytes(data_key), associated_data(context))
        return data_key, wrapped, self.key_id

    def decrypt_data_key(self, wrapped: bytes, context: Mapping[str, str]) -> bytearray:
        nonce, body = wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:]
        try:
            plaintext = AESGCM(self._master_key()).decrypt(nonce, body, associated_data(context))
        except (InvalidTag, ValueError):
            raise DecryptionFailed() from None
        key = bytearray(plaintext)
        if len(key) != DATA_KEY_BYTES:
            zeroize(key)
            raise DecryptionFailed()
        return key


def load_or_create_key_file(path: Path, size: int) -> bytes:
    """The `size` random bytes kept in `path` (mode 0600), created on first use.

    Safe against concurrent first uses: every process ends up with the same key.
    """
    try:
        return _read(path, size)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write a complete key to a private temporary file, then link it into place: link fails
    # if another process won the race, and nobody ever reads a half-written key.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(os.urandom(size))
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return _read(path, size)


def _read(path: Path, size: int) -> bytes:
    key = path.read_bytes()
    if len(key) != size:
        raise KeyProviderUnavailable(f"key file {path} is not a {size}-byte key")
    return key
