"""The platform's customer-managed KMS key."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from constructs import Construct


class DataKey(Construct):
    """KMS key for the database, its secrets and envelope encryption of users' broker keys.

    Retained on stack deletion: destroying it would make every encrypted broker key and
    snapshot unreadable. Rotated yearly by KMS (old material stays usable for decryption).
    """

    def __init__(self, scope: Construct, construct_id: str, *, alias: str) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            alias=alias,
            description="Tekoa data key: Aurora storage, secrets, broker-key envelopes",
            enable_key_rotation=True,
            pending_window=Duration.days(30),
            removal_policy=RemovalPolicy.RETAIN,
        )
