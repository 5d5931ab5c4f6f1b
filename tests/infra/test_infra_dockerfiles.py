"""The image recipes: right base images, entry points, numba cache, and a non-root service."""

from __future__ import annotations

import pytest

from infra.constants import REPO_ROOT

pytestmark = pytest.mark.xdist_group("infra")


def _instructions(relative_path: str) -> list[str]:
    text = (REPO_ROOT / relative_path).read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_ingest_image_is_the_lambda_python_312_base_running_the_ingest_handler() -> None:
    lines = _instructions("functions/ingest/Dockerfile")
    assert lines[0] == "FROM public.ecr.aws/lambda/python:3.12"
    assert lines[-1] == 'CMD ["functions.ingest.handler.handler"]'
    assert any("NUMBA_CACHE_DIR=/tmp" in line for line in lines)


def test_market_stream_image_runs_the_service_as_a_non_root_user() -> None:
    lines = _instructions("fargate/market-stream/Dockerfile")
    assert all(line.startswith("FROM python:3.12-slim") for line in lines if line.startswith("FROM"))
    users = [line for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in {"USER root", "USER 0"}
    assert lines[-1] == 'CMD ["python", "-m", "tekoa.market.stream.service"]'
    assert any("NUMBA_CACHE_DIR=" in line for line in lines)


@pytest.mark.parametrize("dockerfile", ["functions/ingest/Dockerfile", "fargate/market-stream/Dockerfile"])
def test_images_install_dependencies_from_the_lock(dockerfile: str) -> None:
    text = " ".join(_instructions(dockerfile))
    assert "uv export --frozen" in text
    assert "--no-deps ." in text
