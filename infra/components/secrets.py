"""Secrets the application generates for itself."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.nag import acknowledge

JWT_KEY_LENGTH = 64


class JwtSigningSecret(Construct):
    """Random HMAC key with which the API signs and verifies users' access tokens."""

    def __init__(
        self, scope: Construct, construct_id: str, *, secret_name: str, key: kms.IKey, protect: bool
    ) -> None:
        super().__init__(scope, construct_id)
        self.secret = secretsmanager.Secret(
            self,
            "Secret",
            secret_name=secret_name,
            description="HMAC key for Tekoa API access tokens",
            encryption_key=key,
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=JWT_KEY_LENGTH, exclude_punctuation=True
            ),
            # Retained once created (a new key would sign every user out), but a failed first
            # deploy rolls it back, so the retry can create it again under the same name.
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE if protect else RemovalPolicy.DESTROY,
        )
        acknowledge(
            self.secret,
            "A scheduled rotation would invalidate every session at once; the signing key is "
            "rotated deliberately, as an operational change.",
            "AwsSolutions-SMG4",
        )


def grant_secret_read(secret: secretsmanager.ISecret, key: kms.IKey, grantee: iam.IGrantable) -> None:
    """Let `grantee` read `secret`, decrypting only through Secrets Manager.

    Not `secret.grant_read`: with a customer-managed key, that also writes the grantee's role
    into the key policy, which makes the stateful stack depend on every consumer stack (a
    dependency cycle). Identity policies alone suffice because the key trusts the account.
    """
    iam.Grant.add_to_principal(
        grantee=grantee,
        actions=["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
        resource_arns=[secret.secret_arn],
    )
    iam.Grant.add_to_principal(
        grantee=grantee,
        actions=["kms:Decrypt"],
        resource_arns=[key.key_arn],
        conditions={
            "StringEquals": {"kms:ViaService": f"secretsmanager.{Stack.of(key).region}.amazonaws.com"}
        },
    )
