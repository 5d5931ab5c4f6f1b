"""/v1/strategies over HTTP: create, validate, list, version, lock against lost updates, delete."""

from __future__ import annotations

import httpx

from tests.integration.api.auth_support import settings as settings
from tests.integration.api.trading_support import (
    create_bot,
    create_strategy,
    grid_definition,
    new_user,
    read_only,
    scalper_definition,
)


def test_a_created_strategy_is_version_1_with_an_etag_and_can_be_read_back(api: httpx.Client) -> None:
    alice = new_user(api)

    response = api.post(
        "/v1/strategies",
        json={"name": "  EMA scalper ", "description": "fast", "definition": scalper_definition()},
        headers=alice.headers,
    )

    assert response.status_code == 201, response.text
    created = response.json()
    assert created["name"] == "EMA scalper"
    assert (created["version"], created["kind"], created["bot_type"], created["enabled"]) == (
        1,
        "builtin",
        "scalper",
        True,
    )
    assert response.headers["ETag"] == '"1"'
    fetched = api.get(f"/v1/strategies/{created['id']}", headers=alice.headers)
    assert fetched.status_code == 200
    assert fetched.json() == created
    assert fetched.headers["ETag"] == '"1"'
    assert created["definition"]["params"]["take_profit_pct"] == "0.6"


def test_an_invalid_definition_is_422_naming_the_field_path(api: httpx.Client) -> None:
    alice = new_user(api)
    bad = {"kind": "builtin", "bot_type": "grid", "params": {**grid_definition()["params"], "levels": 0}}

    response = api.post("/v1/strategies", json={"name": "g", "definition": bad}, headers=alice.headers)

    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail["code"] == "VALIDATION_ERROR"
    assert detail["field"] == "definition.builtin.grid.params.levels"


def test_a_nul_character_is_a_validation_error_not_a_server_error(api: httpx.Client) -> None:
    alice = new_user(api)

    response = api.post(
        "/v1/strategies", json={"name": "a\x00b", "definition": scalper_definition()}, headers=alice.headers
    )

    assert response.status_code == 422
    assert response.json()["detail"]["field"] == "name"


def test_names_are_unique_per_user_case_insensitively(api: httpx.Client) -> None:
    alice, bob = new_user(api), new_user(api)
    create_strategy(api, alice, name="Trend")

    again = api.post(
        "/v1/strategies", json={"name": "trend", "definition": scalper_definition()}, headers=alice.headers
    )
    other_user = api.post(
        "/v1/strategies", json={"name": "Trend", "definition": scalper_definition()}, headers=bob.headers
    )

    assert again.status_code == 409
    assert again.json()["detail"] == {
        "code": "NAME_TAKEN",
        "message": "a strategy named 'trend' already exists",
        "field": "name",
    }
    assert other_user.status_code == 201


def test_an_idempotent_create_replays_the_first_response_and_refuses_another_body(api: httpx.Client) -> None:
    alice = new_user(api)
    headers = {**alice.headers, "Idempotency-Key": "create-strategy-1"}
    body = {"name": "once", "definition": scalper_definition()}

    first = api.post("/v1/strategies", json=body, headers=headers)
    replay = api.post("/v1/strategies", json=body, headers=headers)
    different = api.post("/v1/strategies", json={**body, "name": "twice"}, headers=headers)

    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json()
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert different.status_code == 422
    listed = api.get("/v1/strategies", headers=alice.headers).json()["items"]
    assert [s["name"] for s in listed] == ["once"]


def test_an_update_with_the_current_etag_makes_a_new_version_kept_in_history(api: httpx.Client) -> None:
    alice = new_user(api)
    strategy = create_strategy(api, alice, name="v")

    response = api.patch(
        f"/v1/strategies/{strategy['id']}",
        json={"description": "second", "definition": scalper_definition(take_profit_pct="0.8")},
        headers={**alice.headers, "If-Match": '"1"'},
    )

    assert response.status_code == 200, response.text
    assert response.json()["version"] == 2
    assert response.headers["ETag"] == '"2"'
    versions = api.get(f"/v1/strategies/{strategy['id']}/versions", headers=alice.headers).json()["items"]
    assert [(v["version"], v["description"]) for v in versions] == [(2, "second"), (1, "")]
    assert versions[1]["definition"]["params"]["take_profit_pct"] == "0.6"


def test_a_stale_if_match_is_412_and_a_missing_one_is_428(api: httpx.Client) -> None:
    alice = new_user(api)
    strategy = create_strategy(api, alice)
    url = f"/v1/strategies/{strategy['id']}"
    assert (
        api.patch(url, json={"description": "x"}, headers={**alice.headers, "If-Match": '"1"'}).status_code
        == 200
    )

    stale = api.patch(url, json={"description": "lost"}, headers={**alice.headers, "If-Match": '"1"'})
    stale_body_version = api.patch(url, json={"description": "lost", "version": 1}, headers=alice.headers)
    missing = api.patch(url, json={"description": "lost"}, headers=alice.headers)

    assert stale.status_code == 412
    assert stale.json()["detail"]["code"] == "PRECONDITION_FAILED"
    assert stale_body_version.status_code == 412
    assert missing.status_code == 428
    current = api.get(url, headers=alice.headers).json()
    assert (current["version"], current["description"]) == (2, "x")


def test_the_body_version_works_instead_of_if_match(api: httpx.Client) -> None:
    alice = new_user(api)
    strategy = create_strategy(api, alice)

    response = api.patch(
        f"/v1/strategies/{strategy['id']}", json={"name": "renamed", "version": 1}, headers=alice.headers
    )

    assert response.status_code == 200
    assert response.json()["name"] == "renamed"


def test_lists_page_with_a_cursor_and_filter_by_enabled_and_kind(api: httpx.Client) -> None:
    alice = new_user(api)
    names = [create_strategy(api, alice, name=f"s{i}")["name"] for i in range(5)]
    grid = create_strategy(api, alice, name="grid", definition=grid_definition())
    api.post(f"/v1/strategies/{grid['id']}/disable", headers=alice.headers)

    first = api.get(
        "/v1/strategies", params={"limit": 2, "kind": "builtin", "enabled": True}, headers=alice.headers
    )
    second = api.get(
        "/v1/strategies",
        params={"limit": 10, "kind": "builtin", "enabled": True, "cursor": first.json()["next_cursor"]},
        headers=alice.headers,
    )
    disabled = api.get("/v1/strategies", params={"enabled": False}, headers=alice.headers)

    assert [s["name"] for s in first.json()["items"]] == ["s4", "s3"]
    assert [s["name"] for s in second.json()["items"]] == ["s2", "s1", "s0"]
    assert second.json()["next_cursor"] is None
    assert [s["name"] for s in disabled.json()["items"]] == ["grid"]
    assert names == ["s0", "s1", "s2", "s3", "s4"]
    garbage = api.get("/v1/strategies", params={"cursor": "not-a-cursor"}, headers=alice.headers)
    assert garbage.status_code == 422
    assert garbage.json()["detail"]["field"] == "cursor"


def test_enable_and_disable_are_versions_and_repeating_changes_nothing(api: httpx.Client) -> None:
    alice = new_user(api)
    strategy = create_strategy(api, alice)
    url = f"/v1/strategies/{strategy['id']}"

    disabled = api.post(f"{url}/disable", headers=alice.headers)
    again = api.post(f"{url}/disable", headers=alice.headers)
    enabled = api.post(f"{url}/enable", headers=alice.headers)

    assert (disabled.json()["enabled"], disabled.json()["version"]) == (False, 2)
    assert again.json()["version"] == 2
    assert (enabled.json()["enabled"], enabled.json()["version"]) == (True, 3)


def test_a_strategy_used_by_a_running_bot_cannot_be_deleted_or_disabled(api: httpx.Client) -> None:
    alice = new_user(api)
    strategy = create_strategy(api, alice)
    bot = create_bot(api, alice, strategy["id"])
    assert api.post(f"/v1/bots/{bot['id']}/start", headers=alice.headers).status_code == 200

    deleted = api.delete(f"/v1/strategies/{strategy['id']}", headers=alice.headers)
    disabled = api.post(f"/v1/strategies/{strategy['id']}/disable", headers=alice.headers)

    assert deleted.status_code == 409
    assert deleted.json()["detail"]["code"] == "RESOURCE_IN_USE"
    assert disabled.status_code == 409
    assert api.get(f"/v1/strategies/{strategy['id']}", headers=alice.headers).json()["enabled"] is True


def test_an_unused_strategy_is_deleted_with_its_history(api: httpx.Client) -> None:
    alice = new_user(api)
    strategy = create_strategy(api, alice)

    response = api.delete(f"/v1/strategies/{strategy['id']}", headers=alice.headers)

    assert response.status_code == 204
    assert api.get(f"/v1/strategies/{strategy['id']}", headers=alice.headers).status_code == 404
    assert api.get(f"/v1/strategies/{strategy['id']}/versions", headers=alice.headers).status_code == 404


def test_changing_the_timeframe_of_a_strategy_in_use_is_refused(api: httpx.Client) -> None:
    alice = new_user(api)
    strategy = create_strategy(api, alice)
    create_bot(api, alice, strategy["id"])

    response = api.patch(
        f"/v1/strategies/{strategy['id']}",
        json={"definition": scalper_definition(timeframe="5m"), "version": 1},
        headers=alice.headers,
    )

    assert response.status_code == 409
    assert response.json()["detail"]["field"] == "definition"


def test_a_read_only_token_may_list_but_not_create(api: httpx.Client) -> None:
    alice = new_user(api)
    create_strategy(api, alice)
    reader = read_only(api, alice)

    listed = api.get("/v1/strategies", headers=reader)
    created = api.post(
        "/v1/strategies", json={"name": "x", "definition": scalper_definition()}, headers=reader
    )

    assert listed.status_code == 200
    assert len(listed.json()["items"]) == 1
    assert created.status_code == 403


def test_without_a_token_every_strategy_route_is_401(api: httpx.Client) -> None:
    assert api.get("/v1/strategies").status_code == 401
    assert api.post("/v1/strategies", json={}).status_code in (401, 422)


def test_null_fields_in_an_update_keep_their_values(api: httpx.Client) -> None:
    alice = new_user(api)
    strategy = create_strategy(api, alice, description="kept")

    response = api.patch(
        f"/v1/strategies/{strategy['id']}",
        json={"definition": None, "description": None, "name": "new name", "version": 1},
        headers=alice.headers,
    )

    assert response.status_code == 200, response.text
    assert (response.json()["description"], response.json()["definition"]) == ("kept", strategy["definition"])
