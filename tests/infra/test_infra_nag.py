"""cdk-nag (AWS Solutions pack) runs inside the app: every finding is either fixed or acknowledged
with a reason, and an unacknowledged one fails synthesis itself."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.xdist_group("infra")


@pytest.mark.parametrize("profile", ["dev", "prod"])
def test_aws_solutions_checks_leave_no_unacknowledged_error(
    profile: str, platform: Any, prod_platform: Any
) -> None:
    synthesised = platform if profile == "dev" else prod_platform
    errors = [line for line in synthesised.validation_violations() if line.startswith("[error]")]
    assert not errors, "unacknowledged cdk-nag findings:\n" + "\n".join(errors)
    assert synthesised.synth_error is None, str(synthesised.synth_error)


def test_the_app_refuses_to_synthesise_an_unacknowledged_finding(extended_platform: Any) -> None:
    """Control for the test above: the app's own plugin is live and fails synthesis.

    `extended_platform` is the real app, as cdk.json configures it, with one careless queue
    (no DLQ, no TLS) added to the Messaging stack."""
    assert extended_platform.synth_error is not None
    assert "AwsSolutions-SQS3" in str(extended_platform.synth_error)
    report = "\n".join(extended_platform.validation_violations())
    assert "AwsSolutions-SQS4" in report
    assert "QueueWithoutDlqOrTls" in report
