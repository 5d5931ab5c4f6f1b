"""Chart benchmarks: a warm render next to plain mplfinance, and the chart function's cold start.

Run: `python bench/charts.py`. Every figure comes from this run on this machine.

Warm render: 500 hourly candles with volume, SMA(20) and SMA(50) over the price and an
RSI(14) panel, as a 1280x720 PNG in memory — Tekoa's renderer (`tekoa.charts.render`) next
to mplfinance's default path (`mpf.plot(..., type="candle", volume=True, mav=(20, 50),
addplot=[RSI panel], savefig=...)`) on the same data. Both are called twice first, then
timed `REPEATS` times; the table shows the median and the best. Targets: Tekoa ≤ 200 ms,
and ≥ 3x faster than mplfinance.

Cold start: a fresh interpreter that imports the chart function's handler (its init phase:
seeding the caches, loading matplotlib and numba, one warm-up render) and then renders the
same chart (its first invocation) — with the caches the image carries (built once here,
as the image build does), and without them for comparison. Target ≤ 2 s with the caches.
"""

from __future__ import annotations

import hashlib
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from tekoa.charts.render import render_candles
from tekoa.charts.spec import ChartLayout
from tekoa.domain.timeframes import Timeframe
from tekoa.indicators.catalogue import PeriodParams
from tekoa.indicators.compute import compute
from tekoa.market.frame import CandleFrame

CANDLES = 500
REPEATS = 15
COLD_RUNS = 3
ROOT = Path(__file__).resolve().parent.parent

LAYOUT = ChartLayout.model_validate(
    {
        "overlays": [{"name": "sma", "params": {"period": 20}}, {"name": "sma", "params": {"period": 50}}],
        "panels": [{"name": "rsi", "params": {"period": 14}}],
    }
)


def candles(n: int = CANDLES, seed: int = 7) -> CandleFrame:
    """`n` hourly candles of a seeded random walk."""
    rng = np.random.default_rng(seed)
    close = 60_000 * np.exp(np.cumsum(rng.normal(0, 0.004, n)))
    open_ = np.concatenate(([60_000.0], close[:-1]))
    high = np.maximum(open_, close) * (1 + rng.exponential(0.0015, n))
    low = np.minimum(open_, close) * (1 - rng.exponential(0.0015, n))
    volume = rng.lognormal(3, 0.6, n)
    times = (
        1_700_000_000_000 // Timeframe.H1.ms * Timeframe.H1.ms
        + np.arange(n, dtype=np.int64) * Timeframe.H1.ms
    )
    return CandleFrame.from_arrays(Timeframe.H1, times, open_, high, low, close, volume)


def timed(function: Callable[[], bytes], repeats: int = REPEATS) -> tuple[list[float], int]:
    """Seconds per call after two untimed calls, and the size of what the last call made."""
    function()
    function()
    times = []
    size = 0
    for _ in range(repeats):
        started = time.perf_counter()
        size = len(function())
        times.append(time.perf_counter() - started)
    return times, size


def tekoa_render(frame: CandleFrame) -> Callable[[], bytes]:
    def render() -> bytes:
        return render_candles(frame, LAYOUT, title="BTC/USDT · 1h").png

    return render


def mplfinance_render(frame: CandleFrame) -> Callable[[], bytes]:
    import matplotlib

    matplotlib.use("Agg")
    import mplfinance as mpf

    index = pd.to_datetime(frame.open_time, unit="ms")
    data = pd.DataFrame(
        {
            "Open": frame.open,
            "High": frame.high,
            "Low": frame.low,
            "Close": frame.close,
            "Volume": frame.volume,
        },
        index=index,
    )
    rsi = compute("rsi", PeriodParams(period=14), frame)["value"]

    def render() -> bytes:
        buffer = io.BytesIO()
        mpf.plot(
            data,
            type="candle",
            volume=True,
            mav=(20, 50),
            addplot=[mpf.make_addplot(rsi, panel=2, ylabel="RSI")],
            figsize=(12.8, 7.2),
            savefig={"fname": buffer, "format": "png", "dpi": 100},
            closefig=True,
        )
        return buffer.getvalue()

    return render


def bench_warm() -> None:
    frame = candles()
    print(f"Warm render: {CANDLES} candles + volume + SMA(20) + SMA(50) + RSI(14) panel -> PNG (1280x720)")
    print(f"{'renderer':<34} {'median':>10} {'best':>10} {'PNG':>10}")
    rows = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, function in (
            ("tekoa.charts", tekoa_render(frame)),
            ("mplfinance default", mplfinance_render(frame)),
        ):
            times, size = timed(function)
            rows[name] = statistics.median(times)
            print(f"{name:<34} {rows[name] * 1e3:>8.1f}ms {min(times) * 1e3:>8.1f}ms {size / 1024:>8.0f}KB")
    tekoa, mpf = rows["tekoa.charts"], rows["mplfinance default"]
    print(
        f"tekoa.charts is {mpf / tekoa:.1f}x faster than mplfinance (target >= 3x); "
        f"median {tekoa * 1e3:.0f} ms (target <= 200 ms)"
    )


COLD_SCRIPT = """
import sys
import time
LAYOUT_JSON = sys.argv[1]
started = time.perf_counter()
import functions.charts.handler
initialised = time.perf_counter()
import numpy as np
from tekoa.charts.render import render_candles
from tekoa.charts.spec import ChartLayout
from tekoa.domain.timeframes import Timeframe
from tekoa.market.frame import CandleFrame
n = 500
close = 60_000 * np.exp(np.cumsum(np.random.default_rng(7).normal(0, 0.004, n)))
frame = CandleFrame.from_arrays(
    Timeframe.H1, np.arange(n, dtype=np.int64) * Timeframe.H1.ms, close, close * 1.002, close * 0.998, close,
    np.ones(n),
)
layout = ChartLayout.model_validate_json(LAYOUT_JSON)
render_candles(frame, layout, title="cold")
print(f"{initialised - started:.3f} {time.perf_counter() - initialised:.3f} {time.time():.6f}")
"""


def function_environment() -> Path:
    """A virtualenv holding what the chart function's image holds: the locked requirements of
    the base, `compute` and `charts` extras, byte-compiled, and this checkout's package.

    The development environment is no stand-in: it has scipy (which numba imports for BLAS on
    first use when present) and, with PYTHONDONTWRITEBYTECODE, no bytecode. Dependencies are
    kept per uv.lock under the temp dir; the package is reinstalled on every run."""
    uv = ROOT / ".venv" / "bin" / "uv"
    lock = hashlib.sha256((ROOT / "uv.lock").read_bytes()).hexdigest()[:12]
    venv = Path(tempfile.gettempdir()) / f"tekoa-charts-function-{lock}"
    python = venv / "bin" / "python"
    quiet = {"check": True, "capture_output": True, "cwd": ROOT}
    if not python.exists():
        requirements = venv.with_suffix(".txt")
        subprocess.run(
            [uv, "export", "--frozen", "--no-dev", "--no-emit-project", "--extra", "compute",
             "--extra", "charts", "--format", "requirements.txt", "--output-file", requirements],
            **quiet,
        )  # fmt: skip
        subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, venv], **quiet)
        subprocess.run(
            [uv, "pip", "install", "--python", python, "--compile-bytecode", "-r", requirements], **quiet
        )
    subprocess.run(
        [uv, "pip", "install", "--python", python, "--compile-bytecode", "--no-deps", "--reinstall", ROOT],
        **quiet,
    )
    return python


def cold_start(python: Path, seed: Path | None) -> tuple[float, float, float]:
    """(spawn to first chart drawn, handler import (init), first render) of one fresh process,
    in s; the process's exit is not counted (Lambda keeps it)."""
    with tempfile.TemporaryDirectory(prefix="tekoa-cold-") as scratch:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "MPLCONFIGDIR": f"{scratch}/matplotlib",
            "NUMBA_CACHE_DIR": f"{scratch}/numba",
            "NUMBA_CPU_NAME": "generic",
            "POWERTOOLS_TRACE_DISABLED": "1",
        }
        if seed is not None:
            env["TEKOA_CACHE_SEED"] = str(seed)
        started = time.time()
        done = subprocess.run(
            [python, "-c", COLD_SCRIPT, LAYOUT.model_dump_json()],
            env=env,
            cwd=scratch,
            capture_output=True,
            text=True,
            check=True,
        )
    init, first, finished = (float(x) for x in done.stdout.split()[-3:])
    return finished - started, init, first


def bench_cold() -> None:
    print(
        "\nCold start of the chart function's process (fresh interpreter -> handler imported -> first chart)"
    )
    started = time.perf_counter()
    python = function_environment()
    print(f"the function's environment (image requirements, compiled): {time.perf_counter() - started:.1f} s")
    with tempfile.TemporaryDirectory(prefix="tekoa-seed-") as seed_dir:
        seed = Path(seed_dir)
        env = {
            "PATH": os.environ.get("PATH", ""),
            "MPLCONFIGDIR": str(seed / "matplotlib"),
            "NUMBA_CACHE_DIR": str(seed / "numba"),
            "NUMBA_CPU_NAME": "generic",
        }
        started = time.perf_counter()
        subprocess.run([python, "-m", "tekoa.charts.caches"], env=env, cwd=seed, check=True)
        print(f"building the image's caches (once, at image build): {time.perf_counter() - started:.1f} s")
        print(f"{'caches':<40} {'total':>8} {'init':>8} {'first chart':>12}")
        for label, source in (
            ("pre-built (as in the image)", seed),
            ("none (fonts scanned, kernels compiled)", None),
        ):
            runs = [cold_start(python, source) for _ in range(COLD_RUNS if source else 1)]
            wall, init, first = (statistics.median(column) for column in zip(*runs, strict=True))
            print(f"{label:<40} {wall:>7.2f}s {init:>7.2f}s {first:>11.2f}s")
    print("total = process spawned to first chart drawn; target <= 2 s with the pre-built caches (median)")


def main() -> None:
    bench_warm()
    bench_cold()


if __name__ == "__main__":
    main()
