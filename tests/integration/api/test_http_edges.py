"""HTTP edges: a streamed body over the limit is 413, an unexpected error is a 500 that carries
its request id (header and log line), and /docs loads nothing from another host."""

from __future__ import annotations

import io
import json
import logging
import re
from typing import Any

import httpx
import pytest


def test_a_chunked_body_over_the_limit_is_413_too(api: httpx.Client) -> None:
    def chunks() -> Any:
        for _ in range(40):
            yield b"x" * 8192

    # No Content-Length: the size is only known while the body streams in.
    response = api.post("/v1/auth/login", content=chunks(), headers={"Content-Type": "application/json"})

    assert response.status_code == 413
    assert response.json()["detail"]["code"] == "PAYLOAD_TOO_LARGE"


def test_an_unhandled_error_answers_500_with_its_request_id_in_the_header_and_log(
    api: httpx.Client, capfd: pytest.CaptureFixture[str]
) -> None:
    from tekoa.observability import logger as tekoa_logger

    # A route that exists only in this test: an unexpected exception deep in a request.
    @api.app.get("/test-only/boom")  # type: ignore[attr-defined]
    def boom() -> None:
        raise RuntimeError("unexpected")

    # The platform's log lines, formatted as they are shipped.
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(tekoa_logger.registered_formatter)
    tekoa_logger.addHandler(handler)
    try:
        response = api.get("/test-only/boom", headers={"X-Request-Id": "req-boom-1"})
    finally:
        tekoa_logger.removeHandler(handler)

    assert response.status_code == 500
    assert response.json()["detail"]["code"] == "INTERNAL_ERROR"
    assert response.headers["x-request-id"] == "req-boom-1"
    logged = [json.loads(line) for line in lines.getvalue().splitlines()]
    assert [line["request_id"] for line in logged if line["message"] == "unhandled error"] == ["req-boom-1"]
    # Nothing else reported the error without its id (e.g. the server's own traceback).
    assert "Traceback" not in capfd.readouterr().err


def test_docs_load_every_asset_from_the_api_itself(api: httpx.Client) -> None:
    page = api.get("/docs")
    urls = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", page.text)

    assert page.status_code == 200
    assert urls and all(url.startswith("/") for url in urls), urls
    for url in urls:
        response = api.get(url)
        assert response.status_code == 200, url
        assert response.content, url
