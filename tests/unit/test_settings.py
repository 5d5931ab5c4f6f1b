"""Settings are validated at start and fail with a message a person can act on."""

from __future__ import annotations

import os

import pytest

from tekoa.settings import SettingsError, load_settings


def test_defaults_describe_the_embedded_local_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)

    settings = load_settings()

    assert settings.database_url is None
    assert settings.aws_endpoint_url is None
    assert (settings.api_host, settings.api_port, settings.aws_port) == ("127.0.0.1", 8000, 4566)
    assert settings.names.order_queue == "tekoa-local-orders.fifo"


def test_the_local_api_runs_a_worker_per_core_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEKOA_API_WORKERS", raising=False)
    cores = len(os.sched_getaffinity(0))

    assert load_settings().api_worker_count == cores
    assert load_settings(api_workers=3).api_worker_count == 3


def test_conventional_names_and_prefix_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db:5432/tekoa")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566/")
    monkeypatch.setenv("TEKOA_STAGE", "prod")
    monkeypatch.setenv("TEKOA_LOG_LEVEL", "debug")

    settings = load_settings()

    assert settings.database_url == "postgresql://u:p@db:5432/tekoa"
    assert settings.aws_endpoint_url == "http://127.0.0.1:4566"
    assert settings.names.charts_bucket == "tekoa-prod-charts"
    assert settings.log_level == "DEBUG"


def test_every_bad_value_is_named_in_one_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEKOA_API_PORT", "eighty")
    monkeypatch.setenv("TEKOA_STAGE", "Prod Stage!")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "localhost:4566")

    with pytest.raises(SettingsError) as caught:
        load_settings()

    message = str(caught.value)
    assert "TEKOA_API_PORT" in message
    assert "TEKOA_STAGE" in message
    assert "AWS_ENDPOINT_URL" in message
    assert "http://" in message


def test_a_bad_database_url_is_rejected_without_echoing_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://admin:hunter2@db/tekoa")

    with pytest.raises(SettingsError) as caught:
        load_settings()

    assert "DATABASE_URL" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_the_cli_exits_with_the_message_on_bad_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tekoa import cli
    from tekoa.settings import get_settings

    monkeypatch.setenv("TEKOA_API_PORT", "70000")
    get_settings.cache_clear()
    try:
        code = cli.main(["up"])
    finally:
        get_settings.cache_clear()

    assert code == 2
    assert "TEKOA_API_PORT" in capsys.readouterr().err
