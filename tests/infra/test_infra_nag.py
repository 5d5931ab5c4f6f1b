"""cdk-nag (AWS Solutions pack): every finding is either fixed or acknowledged with a reason."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.xdist_group("infra")


def test_aws_solutions_checks_leave_no_unacknowledged_error(platform: Any) -> None:
    violations = platform.validation_violations()
    errors = [line for line in violations if line.startswith("[error]")]
    assert not errors, "unacknowledged cdk-nag findings:\n" + "\n".join(errors)
    assert platform.synth_error is None, str(platform.synth_error)


def test_aws_solutions_checks_do_reject_a_non_compliant_resource(tmp_path: Any) -> None:
    """Control for the test above: the plugin is live and fails synthesis on a real finding."""
    from aws_cdk import App, Stack, Validations
    from aws_cdk import aws_sqs as sqs
    from cdk_nag import AwsSolutionsChecks

    app = App(outdir=str(tmp_path))
    sqs.Queue(Stack(app, "Careless"), "QueueWithoutDlqOrTls")
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))

    with pytest.raises(Exception, match="AwsSolutions-SQS3"):
        app.synth()
    assert "AwsSolutions-SQS4" in (tmp_path / "validation-report.json").read_text()
