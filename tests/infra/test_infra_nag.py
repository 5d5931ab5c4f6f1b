"""cdk-nag (AWS Solutions pack) runs inside the app: every finding is either fixed or acknowledged
with a reason, and an unacknowledged one fails synthesis itself."""

from __future__ import annotations

from pathlib import Path
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


def test_the_app_refuses_to_synthesise_an_unacknowledged_finding(tmp_path: Path) -> None:
    """Control for the test above: the app's own plugin is live and fails synthesis."""
    from aws_cdk import aws_sqs as sqs

    from infra.app import build, new_app

    # Given the real app (as cdk.json configures it) with one careless queue in a real stack
    app = new_app(outdir=str(tmp_path), context={"bundle": "false"})
    stacks = build(app)
    sqs.Queue(stacks.messaging, "QueueWithoutDlqOrTls")

    # When it is synthesised, Then synthesis fails and names the findings
    with pytest.raises(Exception, match="AwsSolutions-SQS3"):
        app.synth()
    report = (tmp_path / "validation-report.json").read_text()
    assert "AwsSolutions-SQS4" in report
    assert "QueueWithoutDlqOrTls" in report
