"""/v1/activity over HTTP: newest first, filters, cursor pages, clearing."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from tests.integration.api.auth_support import settings as settings
from tests.integration.api.trading_support import create_bot, new_user


def _messages(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [entry["message"] for entry in response.json()["items"]]


def test_entries_are_newest_first_and_filter_by_bot_and_level(api: httpx.Client) -> None:
    alice = new_user(api)
    first = create_bot(api, alice, name="one")
    second = create_bot(api, alice, name="two")
    api.post(f"/v1/bots/{first['id']}/start", headers=alice.headers)

    everything = api.get("/v1/activity", headers=alice.headers)
    first_only = api.get("/v1/activity", params={"bot_id": first["id"]}, headers=alice.headers)
    successes = api.get("/v1/activity", params={"level": "success"}, headers=alice.headers)

    assert _messages(everything)[0] == "Bot one started"
    assert len(_messages(everything)) == 3
    assert all(e["bot_id"] == first["id"] for e in first_only.json()["items"])
    assert len(_messages(first_only)) == 2
    assert _messages(successes) == ["Bot one started"]
    assert second["id"] not in {e["bot_id"] for e in first_only.json()["items"]}


def test_the_time_window_filters_entries(api: httpx.Client) -> None:
    alice = new_user(api)
    create_bot(api, alice)
    now = int(datetime.now(UTC).timestamp() * 1000)
    hour = 3_600_000

    inside = api.get("/v1/activity", params={"since": now - hour, "until": now + hour}, headers=alice.headers)
    future = api.get("/v1/activity", params={"since": now + hour}, headers=alice.headers)
    backwards = api.get("/v1/activity", params={"since": now + hour, "until": now}, headers=alice.headers)
    # Instants are UTC milliseconds, in and out: a date string is refused, naming the parameter.
    iso = api.get("/v1/activity", params={"since": "2026-01-01T00:00:00Z"}, headers=alice.headers)
    negative = api.get("/v1/activity", params={"until": "-1"}, headers=alice.headers)

    assert len(_messages(inside)) == 1
    assert isinstance(inside.json()["items"][0]["created_at"], int)
    assert now - hour <= inside.json()["items"][0]["created_at"] <= now + hour
    assert _messages(future) == []
    assert backwards.status_code == 422
    assert (iso.status_code, iso.json()["detail"]["field"]) == (422, "since")
    assert (negative.status_code, negative.json()["detail"]["field"]) == (422, "until")


def test_pages_follow_the_cursor_without_gaps_or_repeats(api: httpx.Client) -> None:
    alice = new_user(api)
    for index in range(5):
        create_bot(api, alice, name=f"b{index}")

    seen: list[str] = []
    cursor = None
    for _ in range(5):
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.get("/v1/activity", params=params, headers=alice.headers).json()
        seen += [entry["message"] for entry in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == [f"Bot b{i} created (paper, simulated BTC/USDT 1m)" for i in reversed(range(5))]


def test_clearing_one_bot_keeps_the_rest_and_clearing_all_empties_the_feed(api: httpx.Client) -> None:
    alice, bob = new_user(api), new_user(api)
    keep = create_bot(api, alice, name="keep")
    drop = create_bot(api, alice, name="drop")
    create_bot(api, bob)

    cleared_one = api.delete("/v1/activity", params={"bot_id": drop["id"]}, headers=alice.headers)
    after_one = api.get("/v1/activity", headers=alice.headers)
    cleared_all = api.delete("/v1/activity", headers=alice.headers)

    assert cleared_one.status_code == 204
    assert [e["bot_id"] for e in after_one.json()["items"]] == [keep["id"]]
    assert cleared_all.status_code == 204
    assert _messages(api.get("/v1/activity", headers=alice.headers)) == []
    assert len(_messages(api.get("/v1/activity", headers=bob.headers))) == 1


def test_entries_outlive_their_deleted_bot(api: httpx.Client) -> None:
    alice = new_user(api)
    bot = create_bot(api, alice, name="gone")

    assert api.delete(f"/v1/bots/{bot['id']}", headers=alice.headers).status_code == 204

    entries = api.get("/v1/activity", headers=alice.headers).json()["items"]
    assert [(e["message"], e["bot_id"]) for e in entries] == [
        ("Bot gone deleted", None),
        ("Bot gone created (paper, simulated BTC/USDT 1m)", None),
    ]
