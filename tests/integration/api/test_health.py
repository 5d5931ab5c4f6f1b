"""GET /health over real HTTP, and through the Lambda handler with an HTTP API (v2) event."""

from __future__ import annotations

import importlib
import json
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer, free_port
from tests.integration.api.market_readiness import markets_ready


def test_health_reports_database_aws_and_market_data_ok(api: httpx.Client, settings: Any) -> None:
    markets_ready(settings)

    response = api.get("/health")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True
    assert body["aws"]["ok"] is True
    assert body["market"]["ok"] is True
    assert set(body["market"]["markets"]) == set(settings.market_symbol_list)


def test_health_is_503_while_market_data_is_still_loading(api: httpx.Client, settings: Any) -> None:
    markets_ready(settings, fresh=False)

    response = api.get("/health")

    assert response.status_code == 503
    body = response.json()
    assert body["database"]["ok"] and body["aws"]["ok"]
    assert body["market"]["ok"] is False
    assert {m["reason"] for m in body["market"]["markets"].values()} == {"repairing history"}


def test_health_is_503_and_names_the_failing_dependency(settings: Any) -> None:
    from functions.api.app import create_app
    from functions.api.context import ApiContext
    from tekoa.db.connection import PooledDatabase

    unreachable = settings.model_copy(update={"aws_endpoint_url": f"http://127.0.0.1:{free_port()}"})
    database = PooledDatabase(settings.database_url, max_size=1)
    with LiveServer(create_app(ApiContext.build(unreachable, database))) as server:
        response = httpx.get(f"{server.url}/health", timeout=30)
    database.close()

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["database"]["ok"] is True
    assert body["aws"]["ok"] is False


def test_every_response_carries_the_callers_request_id(api: httpx.Client) -> None:
    response = api.get("/health", headers={"X-Request-Id": "req-123"})

    assert response.headers["x-request-id"] == "req-123"


def test_unknown_routes_answer_the_error_shape(api: httpx.Client) -> None:
    response = api.get("/no-such-route")

    assert response.status_code == 404
    assert response.json() == {"detail": {"code": "NOT_FOUND", "message": "Not Found", "field": None}}


def test_a_wrong_method_answers_the_error_shape(api: httpx.Client) -> None:
    response = api.delete("/health")

    assert response.status_code == 405
    assert response.json()["detail"]["code"] == "METHOD_NOT_ALLOWED"


def test_an_oversized_body_is_refused_before_parsing(api: httpx.Client) -> None:
    response = api.post("/health", content=b"x" * (300 * 1024), headers={"Content-Type": "application/json"})

    assert response.status_code == 413
    assert response.json()["detail"]["code"] == "PAYLOAD_TOO_LARGE"


def _http_api_v2_event(path: str, method: str = "GET") -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"accept": "application/json", "host": "api.example.com", "user-agent": "curl/8"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "api.example.com",
            "domainPrefix": "api",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "curl/8",
            },
            "requestId": "apigw-req-42",
            "routeKey": "$default",
            "stage": "$default",
            "time": "21/Nov/2026:10:00:00 +0000",
            "timeEpoch": 1795255200000,
        },
        "isBase64Encoded": False,
    }


class _LambdaContext:
    function_name = "tekoa-api"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:tekoa-api"
    aws_request_id = "lambda-req-1"


def test_the_lambda_handler_answers_an_http_api_v2_event(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tekoa.settings import get_settings

    markets_ready(settings)
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", settings.aws_endpoint_url)
    monkeypatch.setenv("TEKOA_STAGE", settings.stage)
    get_settings.cache_clear()
    import functions.api.handler as handler_module

    handler_module = importlib.reload(handler_module)
    try:
        result = handler_module.handler(_http_api_v2_event("/health"), _LambdaContext())
    finally:
        get_settings.cache_clear()

    assert result["statusCode"] == 200
    assert json.loads(result["body"])["status"] == "ok"
    assert result["headers"]["x-request-id"] == "apigw-req-42"
