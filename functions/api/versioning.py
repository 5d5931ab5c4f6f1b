"""Lost-update prevention for versioned resources: ETags, If-Match, or the body's `version`.

    @router.patch("/v1/things/{id}")
    def update(..., if_match: IfMatch = None) -> Thing:
        thing = service.update(..., lambda current: check_version(if_match, body.version, current))
        response.headers["ETag"] = etag(thing.version)

Single-resource responses carry `ETag: etag(version)`. `check_version` is called with the
stored version inside the updating transaction (the row locked), so a concurrent writer is
caught too.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Header

from tekoa.errors import PreconditionFailed, PreconditionRequired

IfMatch = Annotated[
    str | None,
    Header(alias="If-Match", max_length=512, description="The ETag of the version being updated."),
]


def etag(version: int) -> str:
    """The strong ETag of a resource version (`"<version>"`)."""
    return f'"{version}"'


def _etag_versions(if_match: str) -> set[int] | None:
    """Versions an If-Match value names; None for `*` (any version)."""
    versions: set[int] = set()
    for raw in if_match.split(","):
        tag = raw.strip()
        if tag == "*":
            return None
        tag = tag.removeprefix("W/")
        if len(tag) >= 2 and tag[0] == tag[-1] == '"' and tag[1:-1].isdigit():
            versions.add(int(tag[1:-1]))
    return versions


def check_version(if_match: str | None, body_version: int | None, current: int) -> None:
    """Refuse an update made against a stale version.

    412 PRECONDITION_FAILED when `If-Match` or the body's version is not `current`;
    428 PRECONDITION_REQUIRED when neither was sent.
    """
    if if_match is None and body_version is None:
        raise PreconditionRequired("send If-Match with the resource's ETag, or its version in the body")
    if if_match is not None:
        versions = _etag_versions(if_match)
        if versions is not None and current not in versions:
            raise PreconditionFailed(
                "the resource changed since you read it (ETag mismatch)", field="If-Match"
            )
    if body_version is not None and body_version != current:
        raise PreconditionFailed("the resource changed since you read it (version mismatch)", field="version")
