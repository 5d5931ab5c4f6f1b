"""Opaque tokens: refresh tokens and personal API tokens. Only their SHA-256 is ever stored.

Both are 256-bit random values, so a fast hash suffices (nothing to brute-force), and the
database can look the hash up by equality.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

API_TOKEN_PREFIX = "tk"  # noqa: S105 - a public marker, not a secret
_API_TOKEN = re.compile(r"^tk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


def token_hash(token: str) -> bytes:
    """The stored form of an opaque token."""
    return hashlib.sha256(token.encode()).digest()


def new_refresh_token() -> str:
    """A fresh refresh token (URL-safe, 256 bits)."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class NewApiToken:
    """A just-made API token: `secret` is the whole `tk_<prefix>_<secret>` string."""

    secret: str
    prefix: str
    hash: bytes


def new_api_token() -> NewApiToken:
    """Make `tk_<prefix>_<secret>`: the prefix finds the row, the hash proves the secret."""
    prefix = secrets.token_hex(6)
    secret = f"{API_TOKEN_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    return NewApiToken(secret=secret, prefix=prefix, hash=token_hash(secret))


def looks_like_api_token(token: str) -> bool:
    """True for anything claiming to be an API token (starts with `tk_`)."""
    return token.startswith(f"{API_TOKEN_PREFIX}_")


def api_token_prefix(token: str) -> str | None:
    """The lookup prefix of a well-formed API token, else None."""
    match = _API_TOKEN.match(token)
    return match[1] if match else None


def hash_matches(token: str, stored_hash: bytes) -> bool:
    """Constant-time comparison of a presented token with a stored hash."""
    return hmac.compare_digest(token_hash(token), stored_hash)
