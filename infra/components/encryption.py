"""The platform's customer-managed KMS keys: one for its own data, one for users' broker keys."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

# A dev stage's keys go after a week; prod keeps the longest window KMS allows.
_PENDING_WINDOW = {True: Duration.days(30), False: Duration.days(7)}
# Everything that can make or open a data key, or move ciphertext between contexts.
_CONTEXT_BOUND_ACTIONS = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"]


def _removal(protect: bool) -> RemovalPolicy:
    # Retained once it exists, but removed if the stack that creates it rolls back: destroying a
    # live key would make every encrypted broker key and snapshot unreadable, while keeping the
    # key of a failed first deploy would only leave litter.
    return RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE if protect else RemovalPolicy.DESTROY


class DataKey(Construct):
    """KMS key for the platform's own data at rest: Aurora storage, secrets, the alarm topic.

    Rotated yearly by KMS (old material stays usable for decryption).
    """

    def __init__(self, scope: Construct, construct_id: str, *, alias: str, protect: bool) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            alias=alias,
            description="Tekoa data key: Aurora storage, secrets, alarm notifications",
            enable_key_rotation=True,
            pending_window=_PENDING_WINDOW[protect],
            removal_policy=_removal(protect),
        )
        # CloudWatch alarms and AWS Budgets publish to the encrypted alarm topic: SNS asks KMS
        # for a data key on their behalf, so the services themselves need these two actions.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AlarmNotifications",
                principals=[
                    iam.ServicePrincipal("cloudwatch.amazonaws.com"),
                    iam.ServicePrincipal("budgets.amazonaws.com"),
                ],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )


class BrokerKey(Construct):
    """KMS key that wraps the data keys of users' broker-key envelopes, and nothing else.

    Its policy refuses every cryptographic call that does not carry the envelope's encryption
    context (`context_keys`, e.g. user_id and credential_id) — whoever the caller is, so even an
    administrator cannot unwrap a broker key outside the audited code path that names its owner.
    Grants (`grant_envelope_use`) allow exactly GenerateDataKey and Decrypt, with that context.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, alias: str, protect: bool, context_keys: Sequence[str]
    ) -> None:
        super().__init__(scope, construct_id)
        self._context_keys = list(context_keys)
        self.key = kms.Key(
            self,
            "Key",
            alias=alias,
            description="Tekoa broker-key envelopes: wraps one data key per stored broker credential",
            enable_key_rotation=True,
            pending_window=_PENDING_WINDOW[protect],
            removal_policy=_removal(protect),
        )
        for context_key in self._context_keys:
            self.key.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=f"RequireContext{context_key.title().replace('_', '')}",
                    effect=iam.Effect.DENY,
                    principals=[iam.AnyPrincipal()],
                    actions=_CONTEXT_BOUND_ACTIONS,
                    resources=["*"],
                    conditions={"Null": {f"kms:EncryptionContext:{context_key}": "true"}},
                )
            )

    def grant_envelope_open(self, grantee: iam.IGrantable) -> None:
        """Let `grantee` open envelope data keys (Decrypt only) — only under the envelope's context."""
        self._grant(grantee, ["kms:Decrypt"])

    def grant_envelope_use(self, grantee: iam.IGrantable) -> None:
        """Let `grantee` make and open envelope data keys — only under the envelope's context."""
        self._grant(grantee, ["kms:GenerateDataKey", "kms:Decrypt"])

    def _grant(self, grantee: iam.IGrantable, actions: list[str]) -> None:
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=actions,
            resource_arns=[self.key.key_arn],
            conditions={
                "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": self._context_keys},
                "Null": {f"kms:EncryptionContext:{key}": "false" for key in self._context_keys},
            },
        )
