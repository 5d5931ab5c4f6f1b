"""StrategyDefinition: the builtin/rules union a bot runs, its JSON shape and its JSON Schema."""

import json
from typing import Any

import pytest
from pydantic import ValidationError

from tekoa.domain.timeframes import Timeframe
from tekoa.errors import ValidationFailed
from tekoa.strategies.models import (
    STRATEGY_ADAPTER,
    GridStrategy,
    RulesStrategy,
    ensure_tradable_on,
    parse_strategy,
    strategy_json_schema,
    strategy_timeframe,
)
from tekoa.strategies.rules import AllOf
from tests.unit.strategies.examples import DCA, DIP, GRID, MOMENTUM, SCALPER, realistic_rules

BUILTINS = {"scalper": SCALPER, "grid": GRID, "dca": DCA, "dip": DIP, "momentum": MOMENTUM}


def examples() -> list[dict[str, Any]]:
    builtin = [{"kind": "builtin", "bot_type": name, "params": params} for name, params in BUILTINS.items()]
    return [*builtin, {"kind": "rules", "rules": realistic_rules()}]


def locs(excinfo: pytest.ExceptionInfo[ValidationError]) -> list[tuple[int | str, ...]]:
    return [error["loc"] for error in excinfo.value.errors()]


@pytest.mark.parametrize("data", examples(), ids=lambda data: data.get("bot_type", data["kind"]))
def test_every_kind_parses_and_round_trips_through_json(data: dict[str, Any]) -> None:
    strategy = parse_strategy(data)
    dumped = STRATEGY_ADAPTER.dump_python(strategy, mode="json")
    assert parse_strategy(dumped) == strategy
    assert parse_strategy(json.loads(STRATEGY_ADAPTER.dump_json(strategy))) == strategy


def test_builtin_params_are_validated_for_their_bot_type() -> None:
    bad = {"kind": "builtin", "bot_type": "grid", "params": {**GRID, "upper_price": "1"}}
    with pytest.raises(ValidationError) as excinfo:
        parse_strategy(bad)
    assert locs(excinfo) == [("builtin", "grid", "params", "upper_price")]


def test_params_of_another_bot_type_are_rejected() -> None:
    with pytest.raises(ValidationError) as excinfo:
        parse_strategy({"kind": "builtin", "bot_type": "dca", "params": GRID})
    assert ("builtin", "dca", "params", "lower_price") in locs(excinfo)


@pytest.mark.parametrize(
    ("data", "loc"),
    [
        ({"kind": "builtin", "bot_type": "martingale", "params": {}}, ("builtin",)),
        ({"kind": "magic"}, ()),
        ({"kind": "rules", "rules": realistic_rules(), "name": "x"}, ("rules", "name")),
    ],
)
def test_unknown_kinds_types_and_fields_are_rejected(data: dict[str, Any], loc: tuple[str, ...]) -> None:
    with pytest.raises(ValidationError) as excinfo:
        parse_strategy(data)
    assert locs(excinfo) == [loc]


def test_rules_strategy_keeps_the_condition_tree() -> None:
    strategy = parse_strategy({"kind": "rules", "rules": realistic_rules()})
    assert isinstance(strategy, RulesStrategy)
    assert isinstance(strategy.rules.entry, AllOf)
    assert strategy_timeframe(strategy) is Timeframe.H1


def test_builtin_timeframe_comes_from_params() -> None:
    strategy = parse_strategy({"kind": "builtin", "bot_type": "grid", "params": GRID})
    assert isinstance(strategy, GridStrategy)
    assert strategy_timeframe(strategy) is Timeframe.M1


def test_short_rules_need_a_derivatives_symbol() -> None:
    short = parse_strategy({"kind": "rules", "rules": {**realistic_rules(), "side": "short"}})
    ensure_tradable_on(short, "BTC/USDT:USDT")
    with pytest.raises(ValidationFailed) as excinfo:
        ensure_tradable_on(short, "BTC/USDT")
    assert excinfo.value.field == "strategy.rules.side"


def test_long_and_builtin_strategies_run_on_spot() -> None:
    for data in examples():
        ensure_tradable_on(parse_strategy(data), "BTC/USDT")


# ------------------------------------------------------------------ JSON Schema / OpenAPI


def _discriminators(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if isinstance(node.get("discriminator"), dict):
            found.append(node["discriminator"])
        for value in node.values():
            found.extend(_discriminators(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_discriminators(value))
    return found


def test_json_schema_builds_and_represents_recursive_condition_trees() -> None:
    schema = strategy_json_schema()
    defs = schema["$defs"]
    all_items = defs["AllOf"]["properties"]["conditions"]["items"]
    assert {"$ref": "#/$defs/AllOf"} in all_items["oneOf"]
    assert all_items["discriminator"]["propertyName"] == "type"
    assert defs["NotOf"]["properties"]["condition"]["discriminator"]["mapping"]["not"] == "#/$defs/NotOf"
    json.dumps(schema)


def test_every_discriminator_mapping_is_openapi_valid() -> None:
    # OpenAPI allows only reference strings as mapping targets; nested unions must not leak in.
    schema = strategy_json_schema()
    discriminators = _discriminators(schema)
    assert {d["propertyName"] for d in discriminators} >= {"bot_type", "type", "name"}
    for discriminator in discriminators:
        assert all(isinstance(target, str) for target in discriminator["mapping"].values())


def test_json_schema_builds_in_serialization_mode() -> None:
    assert "$defs" in STRATEGY_ADAPTER.json_schema(mode="serialization")


def test_fastapi_builds_openapi_and_validates_strategy_bodies() -> None:
    pytest.importorskip("fastapi")
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from tekoa.strategies.models import StrategyDefinition

    app = FastAPI()

    @app.post("/strategies")
    def create(strategy: StrategyDefinition) -> StrategyDefinition:
        return strategy

    client = TestClient(app)
    openapi = client.get("/openapi.json")
    assert openapi.status_code == 200
    assert any(name.startswith("AllOf") for name in openapi.json()["components"]["schemas"])
    rules = {"kind": "rules", "rules": realistic_rules()}
    response = client.post("/strategies", json=rules)
    assert response.status_code == 200
    assert parse_strategy(response.json()) == parse_strategy(rules)
    bad = client.post(
        "/strategies", json={"kind": "builtin", "bot_type": "grid", "params": {**GRID, "levels": 1}}
    )
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "builtin", "grid", "params", "levels"]
