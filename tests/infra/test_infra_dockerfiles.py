"""The image recipes: right base images, entry points, numba cache, and a non-root service."""

from __future__ import annotations

import pytest

from infra.constants import REPO_ROOT
from infra.workloads import WORKLOADS, Workload

pytestmark = pytest.mark.xdist_group("infra")


def _instructions(relative_path: str) -> list[str]:
    text = (REPO_ROOT / relative_path).read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_ingest_image_is_the_lambda_python_312_base_running_the_ingest_handler() -> None:
    lines = _instructions("functions/ingest/Dockerfile")
    assert lines[0] == "FROM public.ecr.aws/lambda/python:3.12"
    assert lines[-1] == 'CMD ["functions.ingest.handler.handler"]'
    assert any("NUMBA_CACHE_DIR=/tmp" in line for line in lines)


def test_charts_image_carries_the_font_and_kernel_caches_it_seeds_at_cold_start() -> None:
    lines = _instructions("functions/charts/Dockerfile")
    text = " ".join(lines)
    assert lines[0] == "FROM public.ecr.aws/lambda/python:3.12"
    assert lines[-1] == 'CMD ["functions.charts.handler.handler"]'
    # Built after the package is installed, into the seed the handler copies to /tmp.
    build = next(i for i, line in enumerate(lines) if "python -m tekoa.charts.caches" in line)
    assert build > next(i for i, line in enumerate(lines) if "--no-deps ." in line)
    assert "MPLCONFIGDIR=/opt/tekoa-cache/matplotlib NUMBA_CACHE_DIR=/opt/tekoa-cache/numba" in lines[build]
    for variable in (
        "TEKOA_CACHE_SEED=/opt/tekoa-cache",
        "MPLCONFIGDIR=/tmp/matplotlib",
        "NUMBA_CACHE_DIR=/tmp/numba",
        "NUMBA_CPU_NAME=generic",
    ):
        assert variable in text


def test_market_stream_image_runs_the_service_as_a_non_root_user() -> None:
    lines = _instructions("fargate/market-stream/Dockerfile")
    assert all(line.startswith("FROM python:3.12-slim") for line in lines if line.startswith("FROM"))
    users = [line for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in {"USER root", "USER 0"}
    assert lines[-1] == 'CMD ["python", "-m", "tekoa.market.stream.service"]'
    assert any("NUMBA_CACHE_DIR=" in line for line in lines)


IMAGES = [w for w in WORKLOADS.values() if w.package == "image"]


@pytest.mark.parametrize("workload", IMAGES, ids=lambda w: w.name)
def test_images_install_the_registry_extras_from_the_lock(workload: Workload) -> None:
    text = " ".join(_instructions(str(workload.dockerfile)))
    assert "ARG EXTRAS" in text
    assert 'test -n "$EXTRAS"' in text  # a build without the argument fails
    assert "uv export --frozen" in text
    assert "$(printf -- '--extra %s ' $EXTRAS)" in text
    assert "--no-deps ." in text


@pytest.mark.parametrize("workload", IMAGES, ids=lambda w: w.name)
def test_images_copy_every_source_the_import_test_lays_out(workload: Workload) -> None:
    copied = [
        line.split()[1]
        for line in _instructions(str(workload.dockerfile))
        if line.startswith("COPY ") and "--from" not in line
    ]
    for source in workload.sources:
        assert any(source.startswith(path.rstrip("/")) for path in copied), source
