"""Acknowledging cdk-nag findings: each one next to the resource it concerns, with its reason."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct


def acknowledge(scope: IConstruct, reason: str, *finding_ids: str) -> None:
    """Accept the named findings on `scope` and its children, recording why.

    cdk-nag 3 matches findings one by one, so a wildcard finding is named in full, e.g.
    `AwsSolutions-IAM5[Action::kms:GenerateDataKey*]`.
    """
    Validations.of(scope).acknowledge(*(Acknowledgment(id=finding, reason=reason) for finding in finding_ids))
