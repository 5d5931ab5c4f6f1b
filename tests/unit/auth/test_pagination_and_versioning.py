"""Pagination cursors, Page building and version checks (no server needed)."""

from __future__ import annotations

import pytest

from functions.api.cursors import CursorSigner
from functions.api.pagination import Page, PageRequest
from functions.api.versioning import check_version, etag
from tekoa.errors import PreconditionFailed, PreconditionRequired, ValidationFailed

SIGNER = CursorSigner(lambda: b"unit-test-cursor-key")


def test_a_cursor_round_trips_its_payload() -> None:
    payload = {"created_at": "2026-01-01T00:00:00+00:00", "id": "abc"}

    assert SIGNER.decode(SIGNER.encode(payload)) == payload


def test_a_cursor_signed_with_another_key_is_refused() -> None:
    cursor = CursorSigner(lambda: b"another deployment").encode({"id": 1})

    with pytest.raises(ValidationFailed) as raised:
        SIGNER.decode(cursor)
    assert raised.value.field == "cursor"


def test_the_signing_key_is_fetched_once_on_first_use() -> None:
    fetched: list[int] = []
    signer = CursorSigner(lambda: fetched.append(1) or b"k")  # type: ignore[func-returns-value]

    assert fetched == []
    signer.decode(signer.encode({"n": 1}))
    assert fetched == [1]


def test_a_page_has_a_cursor_only_when_more_rows_exist() -> None:
    page = PageRequest(limit=2, cursor=None, signer=SIGNER)
    full = Page[int].build([1, 2, 3], page, lambda n: {"n": n})
    last = Page[int].build([1, 2], page, lambda n: {"n": n})

    assert full.items == [1, 2]
    assert full.next_cursor is not None
    assert SIGNER.decode(full.next_cursor) == {"n": 2}
    assert last.next_cursor is None


def test_a_cursor_missing_the_expected_keys_is_refused() -> None:
    with pytest.raises(ValidationFailed):
        PageRequest(limit=10, cursor={"n": 1}, signer=SIGNER).after("created_at", "id")


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
