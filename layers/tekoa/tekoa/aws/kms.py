"""KMS as the key provider of envelope encryption (tekoa.security.envelope).

GenerateDataKey makes one AES-256 data key per secret under the stage's key
(`ResourceNames.broker_key_alias`); the encryption context travels with both calls, and KMS
refuses to decrypt a data key under any other context (and logs the context in CloudTrail,
so every use of a user's secret is attributable).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from tekoa.aws.clients import aws_client
from tekoa.observability import logger
from tekoa.security.envelope import DecryptionFailed, KeyProviderUnavailable
from tekoa.settings import Settings

_WRONG_CONTEXT_OR_DATA = frozenset({"InvalidCiphertextException", "IncorrectKeyException"})


class KmsKeyProvider:
    """Data keys from AWS KMS (moto locally)."""

    name = "kms"

    def __init__(self, client: Any, key_id: str) -> None:
        self._client = client
        self._key_id = key_id

    @classmethod
    def from_settings(cls, settings: Settings) -> KmsKeyProvider:
        """The provider for the stage's KMS key, on the configured endpoint."""
        return cls(aws_client("kms", settings), settings.names.broker_key_alias)

    def generate_data_key(self, context: Mapping[str, str]) -> tuple[bytearray, bytes, str]:
        try:
            response = self._client.generate_data_key(
                KeyId=self._key_id, KeySpec="AES_256", EncryptionContext=dict(context)
            )
        except (ClientError, BotoCoreError) as exc:
            logger.error("kms generate_data_key failed", extra={"error_type": _error_code(exc)})
            raise KeyProviderUnavailable("the key service is unavailable; try again later") from None
        return bytearray(response["Plaintext"]), bytes(response["CiphertextBlob"]), str(response["KeyId"])

    def decrypt_data_key(self, wrapped: bytes, context: Mapping[str, str]) -> bytearray:
        try:
            response = self._client.decrypt(
                CiphertextBlob=wrapped, EncryptionContext=dict(context), KeyId=self._key_id
            )
        except ClientError as exc:
            code = _error_code(exc)
            if code in _WRONG_CONTEXT_OR_DATA:
                raise DecryptionFailed() from None
            logger.error("kms decrypt failed", extra={"error_type": code})
            raise KeyProviderUnavailable("the key service is unavailable; try again later") from None
        except BotoCoreError as exc:
            logger.error("kms decrypt failed", extra={"error_type": _error_code(exc)})
            raise KeyProviderUnavailable("the key service is unavailable; try again later") from None
        return bytearray(response["Plaintext"])


def _error_code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return type(exc).__name__
