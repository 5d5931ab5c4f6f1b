"""The schema makes a clean Python client: openapi-python-client generates one without a single
warning, and that client creates and reads a strategy on the live API."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from functions.api.openapi import render_schema
from tests.integration.api.auth_support import access_token
from tests.integration.api.auth_support import settings as settings  # the fixture, cheap argon2
from tests.unit.strategies.examples import GRID

pytestmark = pytest.mark.xdist_group("generated-client")


@pytest.fixture(scope="module")
def client_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("client")
    (work / "openapi.json").write_text(render_schema())
    (work / "config.yaml").write_text("post_hooks: []\n")  # no formatter run: it is not the schema's business
    generator = shutil.which("openapi-python-client", path=str(Path(sys.executable).parent))
    assert generator is not None
    result = subprocess.run(
        [generator, "generate", "--path", "openapi.json", "--meta", "none", "--output-path", "tekoa_client",
         "--config", "config.yaml"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "warning" not in output.lower(), output
    return work


def test_every_operation_and_the_strategy_models_are_generated(client_package: Path) -> None:
    schema = json.loads((client_package / "openapi.json").read_text())
    operations = [op["operationId"] for path in schema["paths"].values() for op in path.values()]
    modules = {path.stem for path in (client_package / "tekoa_client" / "api").rglob("*.py")}
    models = {path.stem for path in (client_package / "tekoa_client" / "models").glob("*.py")}

    assert {_snake(operation) for operation in operations} <= modules
    assert {"grid_strategy", "grid_params", "rule_set", "risk_settings", "bot", "error_response"} <= models


def test_the_generated_client_creates_and_reads_a_strategy(
    client_package: Path, api: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(client_package))
    from tekoa_client import AuthenticatedClient  # type: ignore[import-not-found]
    from tekoa_client.api.strategies import create_strategy_v1_strategies_post as create  # type: ignore[import-not-found]
    from tekoa_client.api.strategies import list_strategies_v1_strategies_get as listing  # type: ignore[import-not-found]
    from tekoa_client.models import StrategyCreate  # type: ignore[import-not-found]

    client = AuthenticatedClient(base_url=str(api.base_url), token=access_token(api))
    body = StrategyCreate.from_dict(
        {"name": "generated", "definition": {"kind": "builtin", "bot_type": "grid", "params": GRID}}
    )

    created: Any = create.sync(client=client, body=body)
    page: Any = listing.sync(client=client)

    assert created.name == "generated"
    assert created.definition.params.levels == GRID["levels"]
    assert [item.id for item in page.items] == [created.id]


def _snake(operation_id: str) -> str:
    return re.sub("_+", "_", operation_id.lower())
