"""Password hashing with argon2id (memory-hard), and the password policy."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 128


@dataclass(frozen=True)
class PasswordHashing:
    """argon2id with the given cost; a hash made with other parameters is flagged for rehash."""

    time_cost: int = 3
    memory_kib: int = 65536
    parallelism: int = 4

    @cached_property
    def _hasher(self) -> PasswordHasher:
        return PasswordHasher(
            time_cost=self.time_cost, memory_cost=self.memory_kib, parallelism=self.parallelism
        )

    @cached_property
    def _dummy_hash(self) -> str:
        # Verified against when the email matches no account, so an unknown email costs
        # as much time as a wrong password and the two cannot be told apart.
        return self._hasher.hash("tekoa-dummy-password-for-timing")

    def hash(self, password: str) -> str:
        """A self-describing argon2id hash (salt and parameters included)."""
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """True when `password` matches; `None` (no such account) costs the same and is False."""
        try:
            if password_hash is None:
                self._hasher.verify(self._dummy_hash, password)
                return False
            return self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the hash was made with other parameters than the current ones."""
        return self._hasher.check_needs_rehash(password_hash)


def password_problem(password: str, email: str) -> str | None:
    """Why `password` is unacceptable, or None. Length is the rule that matters (NIST 800-63B)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"password must be at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"password must be at most {MAX_PASSWORD_LENGTH} characters"
    if not password.strip():
        return "password must not be blank"
    if password.strip().lower() == email.strip().lower():
        return "password must not be the email address"
    return None
