"""The committed openapi.json is the schema the code builds."""

from __future__ import annotations

from pathlib import Path

from functions.api.openapi import render_schema

COMMITTED = Path(__file__).resolve().parents[2] / "openapi.json"


def test_the_committed_openapi_schema_is_current() -> None:
    assert COMMITTED.exists(), "openapi.json is missing: run `make openapi`"
    assert COMMITTED.read_text() == render_schema(), "openapi.json is stale: run `make openapi`"
