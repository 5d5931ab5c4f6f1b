"""Caches built into the chart function's image, so a cold start neither scans fonts nor compiles.

matplotlib keeps its font list in `MPLCONFIGDIR` and numba its compiled kernels in
`NUMBA_CACHE_DIR`; both must be writable, and in Lambda only /tmp is. Without a cache,
matplotlib scans every font on the system (about a second) and numba compiles each kernel
again (seconds). So the image builds both once (`python -m tekoa.charts.caches`, with the
two variables pointing into a seed directory), and at cold start `seed_caches()` copies the
seed into the writable places the variables name — before matplotlib or numba is imported.

numba's cached code is only valid on the CPU it was compiled for, unless `NUMBA_CPU_NAME` is
`generic` at build and at run time; the image sets it, trading a little kernel speed (no
host-specific instructions) for a cache that loads on whichever CPU Lambda picks.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

SEED_ENV = "TEKOA_CACHE_SEED"
"""Directory holding `matplotlib/` and `numba/` as built into the image."""

_CACHES = (("matplotlib", "MPLCONFIGDIR"), ("numba", "NUMBA_CACHE_DIR"))


def seed_caches() -> None:
    """Copy the image's pre-built caches to where this process will look for them.

    Does nothing without `TEKOA_CACHE_SEED`, or for a cache whose target already exists (a
    warm container, or a local run). Must run before matplotlib or numba is imported.
    """
    seed = os.environ.get(SEED_ENV)
    if not seed:
        return
    for name, variable in _CACHES:
        source = Path(seed) / name
        target = os.environ.get(variable)
        if target and source.is_dir() and not Path(target).exists():
            shutil.copytree(source, target)


def build() -> None:
    """Fill the caches the environment names: matplotlib's font list, and every indicator
    kernel and the renderer's first chart compiled (what the image build runs)."""
    import numpy as np

    from tekoa.charts.render import warm_up
    from tekoa.domain.timeframes import Timeframe
    from tekoa.indicators.catalogue import INDICATORS
    from tekoa.indicators.compute import compute
    from tekoa.market.frame import CandleFrame

    warm_up()
    n = 64
    close = 100.0 + np.sin(np.arange(n) / 5.0)
    frame = CandleFrame.from_arrays(
        Timeframe.M1, np.arange(n, dtype=np.int64) * 60_000, close, close + 1, close - 1, close, np.ones(n)
    )
    for name, spec in INDICATORS.items():
        fields = spec.params.model_fields
        params = spec.params.model_validate({"period": 5} if "period" in fields else {})
        compute(name, params, frame)


if __name__ == "__main__":
    build()
