"""Secret handling: envelope encryption and the key providers behind it."""

from __future__ import annotations

from tekoa.security.envelope import KeyProvider
from tekoa.settings import Settings


def key_provider_for(settings: Settings) -> KeyProvider:
    """The key provider `settings.key_provider` names: KMS (default) or the local key file."""
    if settings.key_provider == "file":
        from tekoa.security.local_key import LocalFileKeyProvider

        return LocalFileKeyProvider.in_data_dir(settings.data_dir)
    from tekoa.aws.kms import KmsKeyProvider

    return KmsKeyProvider.from_settings(settings)
