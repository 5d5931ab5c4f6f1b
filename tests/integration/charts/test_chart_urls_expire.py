"""Presigned chart URLs behave locally as in S3: they work until their TTL, then stop, and no
part of them can be changed (a longer expiry, another object) without breaking the signature."""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from tekoa.aws.charts import S3ChartObjects

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


@pytest.fixture
def objects(aws_settings: Any) -> S3ChartObjects:
    return S3ChartObjects(aws_settings)


def _key() -> str:
    return f"charts/{uuid.uuid4()}/{uuid.uuid4().hex}.png"


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query)) | changes
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_a_presigned_url_serves_the_png_until_its_ttl_and_then_stops(aws_settings: Any) -> None:
    objects = S3ChartObjects(aws_settings.model_copy(update={"chart_url_ttl_s": 2}))
    key = _key()
    objects.put(key, PNG)
    url = objects.url(key)

    fresh = httpx.get(url)
    assert fresh.status_code == 200
    assert fresh.content == PNG
    assert fresh.headers["content-type"] == "image/png"

    time.sleep(3.1)  # X-Amz-Date has one-second resolution
    expired = httpx.get(url)
    assert expired.status_code == 403
    assert "<Code>AccessDenied</Code><Message>Request has expired</Message>" in expired.text


def test_the_url_lives_as_long_as_the_setting_says(objects: S3ChartObjects, aws_settings: Any) -> None:
    url = objects.url(_key())
    assert dict(parse_qsl(urlsplit(url).query))["X-Amz-Expires"] == str(aws_settings.chart_url_ttl_s)
    assert aws_settings.chart_url_ttl_s <= 900


def test_a_longer_expiry_typed_into_the_url_breaks_its_signature(objects: S3ChartObjects) -> None:
    key = _key()
    objects.put(key, PNG)
    url = objects.url(key)

    stretched = httpx.get(_with_query(url, **{"X-Amz-Expires": "604800"}))

    assert stretched.status_code == 403
    assert "SignatureDoesNotMatch" in stretched.text
    assert httpx.get(url).status_code == 200


def test_a_signature_for_one_chart_does_not_open_another(objects: S3ChartObjects) -> None:
    mine, theirs = _key(), _key()
    objects.put(mine, PNG)
    objects.put(theirs, PNG + b"theirs")
    url = objects.url(mine)

    borrowed = httpx.get(url.replace(mine, theirs))

    assert borrowed.status_code == 403
    assert "SignatureDoesNotMatch" in borrowed.text


def test_an_unknown_access_key_and_an_over_long_expiry_are_refused(objects: S3ChartObjects) -> None:
    key = _key()
    objects.put(key, PNG)
    url = objects.url(key)
    credential = dict(parse_qsl(urlsplit(url).query))["X-Amz-Credential"]

    stranger = httpx.get(
        _with_query(url, **{"X-Amz-Credential": "AKIDSTRANGER/" + credential.split("/", 1)[1]})
    )
    forever = httpx.get(_with_query(url, **{"X-Amz-Expires": "604801"}))

    assert stranger.status_code == 403 and "InvalidAccessKeyId" in stranger.text
    assert forever.status_code == 400 and "AuthorizationQueryParametersError" in forever.text


def test_legacy_sigv2_urls_are_refused(objects: S3ChartObjects) -> None:
    key = _key()
    objects.put(key, PNG)
    url = objects.url(key)
    legacy = urlunsplit(urlsplit(url)._replace(query="AWSAccessKeyId=testing&Signature=x&Expires=9999999999"))

    assert httpx.get(legacy).status_code == 400


def test_existence_is_checked_without_a_url(objects: S3ChartObjects) -> None:
    key = _key()
    assert not objects.exists(key)
    objects.put(key, PNG)
    assert objects.exists(key)
