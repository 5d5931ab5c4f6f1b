"""Pagination cursors, Page building and version checks (no server needed)."""

from __future__ import annotations

import pytest

from functions.api.conventions import (
    Page,
    PageRequest,
    check_version,
    decode_cursor,
    encode_cursor,
    etag,
    install_cursor_key,
)
from tekoa.errors import PreconditionFailed, PreconditionRequired, ValidationFailed


@pytest.fixture(autouse=True)
def _key() -> None:
    install_cursor_key(b"unit-test-cursor-key")


def test_a_cursor_round_trips_its_payload() -> None:
    payload = {"created_at": "2026-01-01T00:00:00+00:00", "id": "abc"}

    assert decode_cursor(encode_cursor(payload)) == payload


def test_a_cursor_signed_with_another_key_is_refused() -> None:
    cursor = encode_cursor({"id": 1})
    install_cursor_key(b"another deployment")

    with pytest.raises(ValidationFailed) as raised:
        decode_cursor(cursor)
    assert raised.value.field == "cursor"


def test_a_page_has_a_cursor_only_when_more_rows_exist() -> None:
    full = Page[int].build([1, 2, 3], 2, lambda n: {"n": n})
    last = Page[int].build([1, 2], 2, lambda n: {"n": n})

    assert full.items == [1, 2]
    assert full.next_cursor is not None
    assert decode_cursor(full.next_cursor) == {"n": 2}
    assert last.next_cursor is None


def test_a_cursor_missing_the_expected_keys_is_refused() -> None:
    with pytest.raises(ValidationFailed):
        PageRequest(limit=10, cursor={"n": 1}).after("created_at", "id")


@pytest.mark.parametrize(
    ("if_match", "body_version"),
    [(etag(3), None), (None, 3), ('W/"3"', None), ('"1", "3"', None), ("*", None), (etag(3), 3)],
)
def test_the_current_version_passes(if_match: str | None, body_version: int | None) -> None:
    check_version(if_match, body_version, current=3)


@pytest.mark.parametrize(
    ("if_match", "body_version"), [(etag(2), None), (None, 2), ("garbage", None), (etag(3), 2), (etag(2), 3)]
)
def test_a_stale_version_is_412(if_match: str | None, body_version: int | None) -> None:
    with pytest.raises(PreconditionFailed):
        check_version(if_match, body_version, current=3)


def test_no_version_at_all_is_428() -> None:
    with pytest.raises(PreconditionRequired):
        check_version(None, None, current=3)
