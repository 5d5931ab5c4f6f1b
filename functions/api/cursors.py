"""Opaque, tamper-evident list cursors: base64url JSON plus an HMAC.

The key derives from the JWT signing secret, so every instance of a deployment agrees on it
without another secret; it is fetched on first use. A forged, tampered or garbage cursor is
422 VALIDATION_ERROR with field "cursor".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import threading
from collections.abc import Callable
from typing import Any

from tekoa.errors import ValidationFailed

_MAC_BYTES = 16


def invalid_cursor() -> ValidationFailed:
    """The error for a cursor that is not one this API issued for this list."""
    return ValidationFailed("cursor is invalid; use next_cursor from a previous page", field="cursor")


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CursorSigner:
    """Encodes and checks cursors with a key fetched once, on first use."""

    def __init__(self, key: Callable[[], bytes]) -> None:
        self._fetch = key
        self._key: bytes | None = None
        self._lock = threading.Lock()

    def _signing_key(self) -> bytes:
        if self._key is None:
            with self._lock:
                if self._key is None:
                    self._key = self._fetch()
        return self._key

    def encode(self, payload: dict[str, Any]) -> str:
        """A cursor carrying `payload` (JSON-serialisable)."""
        data = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        mac = hmac.new(self._signing_key(), data, hashlib.sha256).digest()[:_MAC_BYTES]
        return f"{_b64encode(data)}.{_b64encode(mac)}"

    def decode(self, cursor: str) -> dict[str, Any]:
        """The payload of a cursor made by `encode`; `invalid_cursor()` for anything else."""
        try:
            data_part, mac_part = cursor.split(".")
            data, mac = _b64decode(data_part), _b64decode(mac_part)
        except (ValueError, binascii.Error) as exc:
            raise invalid_cursor() from exc
        expected = hmac.new(self._signing_key(), data, hashlib.sha256).digest()[:_MAC_BYTES]
        if not hmac.compare_digest(mac, expected):
            raise invalid_cursor()
        try:
            payload = json.loads(data)
        except ValueError as exc:
            raise invalid_cursor() from exc
        if not isinstance(payload, dict):
            raise invalid_cursor()
        return payload
