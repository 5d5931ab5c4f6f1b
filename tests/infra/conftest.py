"""The CDK app, built and synthesised ONCE per test session: jsii makes every build cost seconds.

All infra tests join one xdist group, so under `pytest -n 2 --dist loadgroup` a single worker
builds the app. Templates are read back from the synthesised cloud assembly as plain JSON, and
the assertions wrap them in `aws_cdk.assertions.Template`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# jsii prints a banner for Node 20 (end of life) at start-up; it says nothing about the app.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

# jsii starts on this import, hence after the line above.
from infra.config import StageConfig

STAGE = "dev"


@dataclass(frozen=True)
class SynthesisedPlatform:
    """The synthesised app: its output directory, and the error synthesis raised, if any."""

    outdir: Path
    stack_ids: dict[str, str]  # concern -> artifact id
    synth_error: Exception | None

    def template_json(self, concern: str) -> dict[str, Any]:
        template: dict[str, Any] = json.loads(
            (self.outdir / f"{self.stack_ids[concern]}.template.json").read_text()
        )
        return template

    def manifest(self) -> dict[str, Any]:
        manifest: dict[str, Any] = json.loads((self.outdir / "manifest.json").read_text())
        return manifest

    def assets(self, concern: str) -> dict[str, Any]:
        assets: dict[str, Any] = json.loads(
            (self.outdir / f"{self.stack_ids[concern]}.assets.json").read_text()
        )
        return assets

    def validation_violations(self) -> list[str]:
        report = self.outdir / "validation-report.json"
        if not report.exists():
            return []
        lines = []
        for plugin in json.loads(report.read_text())["pluginReports"]:
            for violation in plugin["violations"]:
                for construct in violation["violatingConstructs"]:
                    lines.append(
                        f"[{violation['severity']}] {violation['ruleName']} at {construct['constructPath']}"
                    )
        return lines


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> SynthesisedPlatform:
    """The whole app for stage `dev`, with the AWS Solutions cdk-nag pack as a validation plugin."""
    from aws_cdk import App, Validations
    from cdk_nag import AwsSolutionsChecks

    from infra.app import build

    outdir = tmp_path_factory.mktemp("cdk.out")
    app = App(outdir=str(outdir))
    stacks = build(app, StageConfig(stage=STAGE))
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    synth_error: Exception | None = None
    try:
        app.synth()
    except Exception as error:  # cdk-nag failures surface here; the templates are written anyway
        synth_error = error
    stack_ids = {
        "network": stacks.network.artifact_id,
        "data": stacks.data.artifact_id,
        "messaging": stacks.messaging.artifact_id,
        "api": stacks.api.artifact_id,
        "workers": stacks.workers.artifact_id,
    }
    return SynthesisedPlatform(outdir=outdir, stack_ids=stack_ids, synth_error=synth_error)


def _template(platform: SynthesisedPlatform, concern: str) -> Any:
    from aws_cdk.assertions import Template

    return Template.from_json(platform.template_json(concern))


@pytest.fixture(scope="session")
def network_template(platform: SynthesisedPlatform) -> Any:
    return _template(platform, "network")


@pytest.fixture(scope="session")
def data_template(platform: SynthesisedPlatform) -> Any:
    return _template(platform, "data")


@pytest.fixture(scope="session")
def messaging_template(platform: SynthesisedPlatform) -> Any:
    return _template(platform, "messaging")


@pytest.fixture(scope="session")
def api_template(platform: SynthesisedPlatform) -> Any:
    return _template(platform, "api")


@pytest.fixture(scope="session")
def workers_template(platform: SynthesisedPlatform) -> Any:
    return _template(platform, "workers")
