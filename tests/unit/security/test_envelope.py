"""Envelope encryption: round trips, binding to the encryption context, tamper detection,
the local key file, and the wiping of plaintext data keys."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import pytest

from tekoa.security import key_provider_for
from tekoa.security.envelope import DecryptionFailed, SealedSecret, open_sealed, seal
from tekoa.security.local_key import LocalFileKeyProvider
from tekoa.settings import load_settings

ALICE = {"user_id": "11111111-1111-4111-8111-111111111111", "credential_id": "c1"}
BOB = {"user_id": "22222222-2222-4222-8222-222222222222", "credential_id": "c1"}


class ContextBlindProvider:
    """A provider that ignores the context (as a careless KMS stand-in would) and keeps the
    plaintext keys it hands out, so a test can see whether they were wiped."""

    name = "blind"

    def __init__(self) -> None:
        self.key = os.urandom(32)
        self.handed_out: list[bytearray] = []

    def generate_data_key(self, context: Mapping[str, str]) -> tuple[bytearray, bytes, str]:
        data_key = bytearray(os.urandom(32))
        self.handed_out.append(data_key)
        return data_key, bytes(data_key), "blind-key"

    def decrypt_data_key(self, wrapped: bytes, context: Mapping[str, str]) -> bytearray:
        data_key = bytearray(wrapped)
        self.handed_out.append(data_key)
        return data_key


def test_a_sealed_secret_opens_under_its_own_context(tmp_path: Path) -> None:
    provider = LocalFileKeyProvider.in_data_dir(tmp_path)

    sealed = seal(provider, b"top secret", ALICE)

    assert open_sealed(provider, sealed, ALICE) == b"top secret"
    assert b"top secret" not in sealed.ciphertext + sealed.wrapped_key
    assert "top secret" not in repr(sealed)


def test_another_users_context_cannot_open_it(tmp_path: Path) -> None:
    provider = LocalFileKeyProvider.in_data_dir(tmp_path)
    sealed = seal(provider, b"top secret", ALICE)

    with pytest.raises(DecryptionFailed):
        open_sealed(provider, sealed, BOB)
    with pytest.raises(DecryptionFailed):
        provider.decrypt_data_key(sealed.wrapped_key, BOB)


def test_the_payload_is_bound_to_the_context_even_if_the_provider_ignores_it() -> None:
    provider = ContextBlindProvider()
    sealed = seal(provider, b"top secret", ALICE)

    with pytest.raises(DecryptionFailed):
        open_sealed(provider, sealed, BOB)
    assert open_sealed(provider, sealed, ALICE) == b"top secret"


@pytest.mark.parametrize("part", ["ciphertext", "nonce", "wrapped_key"])
def test_a_tampered_secret_does_not_open(tmp_path: Path, part: str) -> None:
    provider = LocalFileKeyProvider.in_data_dir(tmp_path)
    sealed = seal(provider, b"top secret", ALICE)
    original: bytes = getattr(sealed, part)
    tampered = replace(sealed, **{part: bytes([original[0] ^ 1]) + original[1:]})

    with pytest.raises(DecryptionFailed):
        open_sealed(provider, tampered, ALICE)


def test_a_secret_sealed_by_another_provider_is_refused(tmp_path: Path) -> None:
    sealed = seal(ContextBlindProvider(), b"x", ALICE)

    with pytest.raises(DecryptionFailed, match="blind"):
        open_sealed(LocalFileKeyProvider.in_data_dir(tmp_path), sealed, ALICE)


def test_plaintext_data_keys_are_wiped_after_use() -> None:
    provider = ContextBlindProvider()

    sealed = seal(provider, b"top secret", ALICE)
    open_sealed(provider, sealed, ALICE)

    assert len(provider.handed_out) == 2
    assert all(key == bytearray(32) for key in provider.handed_out)


def test_the_master_key_file_is_private_and_survives_a_restart(tmp_path: Path) -> None:
    sealed = seal(LocalFileKeyProvider.in_data_dir(tmp_path), b"top secret", ALICE)
    key_file = tmp_path / "master.key"

    restarted = LocalFileKeyProvider.in_data_dir(tmp_path)

    assert open_sealed(restarted, sealed, ALICE) == b"top secret"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(key_file.read_bytes()) == 32
    assert [p.name for p in tmp_path.iterdir()] == ["master.key"]


def test_another_master_key_cannot_open_the_secret(tmp_path: Path) -> None:
    sealed = seal(LocalFileKeyProvider.in_data_dir(tmp_path / "a"), b"top secret", ALICE)

    with pytest.raises(DecryptionFailed):
        open_sealed(LocalFileKeyProvider.in_data_dir(tmp_path / "b"), sealed, ALICE)


def test_the_setting_selects_the_provider(tmp_path: Path) -> None:
    file_provider = key_provider_for(load_settings(key_provider="file", data_dir=tmp_path))
    kms_provider = key_provider_for(load_settings(key_provider="kms", aws_endpoint_url="http://127.0.0.1:9"))

    assert file_provider.name == "file"
    assert kms_provider.name == "kms"
    assert load_settings().key_provider == "kms"


def test_sealed_secret_repr_shows_no_key_material() -> None:
    sealed = SealedSecret("file", "file:abc", b"\x01" * 40, b"\x02" * 12, b"\x03" * 40)

    assert "\\x01" not in repr(sealed)
    assert "\\x03" not in repr(sealed)
