"""Synthesising the whole app the way the CDK CLI would, and reading the cloud assembly back."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


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

    def templates(self) -> dict[str, dict[str, Any]]:
        """Concern -> template, for every stack."""
        return {concern: self.template_json(concern) for concern in self.stack_ids}

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


def synthesise(
    outdir: Path, *, extend: Callable[[Any], None] | None = None, **context: Any
) -> SynthesisedPlatform:
    """The whole app as the CDK CLI would build it: cdk.json's context plus `context`, and
    cdk-nag's AWS Solutions pack, which the app itself installs. `extend` may add constructs
    to the built stacks (`infra.app.PlatformStacks`) before synthesis."""
    from infra.app import build, new_app

    app = new_app(outdir=str(outdir), context=context)
    stacks = build(app)
    if extend is not None:
        extend(stacks)
    synth_error: Exception | None = None
    try:
        app.synth()
    except Exception as error:  # cdk-nag failures surface here; the templates are written anyway
        synth_error = error
    return SynthesisedPlatform(outdir=outdir, stack_ids=stacks.artifact_ids(), synth_error=synth_error)
