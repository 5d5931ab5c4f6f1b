"""`tekoa backtest` as a user runs it: a subprocess over the GOOG fixture."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import DATA_DIR
from tests.unit.backtest.test_parity_backtesting_py import SMA_CROSS

GOOG = DATA_DIR / "goog_1d_backtesting.csv"


def _tekoa(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tekoa.cli", "backtest", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_backtest_of_the_goog_fixture_prints_the_summary_and_writes_the_json_and_chart(
    tmp_path: Path,
) -> None:
    strategy_file = tmp_path / "sma.json"
    strategy_file.write_text(json.dumps(SMA_CROSS))
    out = tmp_path / "result.json"
    chart = tmp_path / "equity.png"

    done = _tekoa(
        "--strategy", strategy_file, "--data", GOOG, "--cash", "10000", "--fee-pct", "0.1",
        "--json-out", out, "--chart-out", chart, "--chart-style", "dark",
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    for line in ("total return", "max drawdown", "Sharpe", "win rate", "profit factor", "trades", "fees"):
        assert line in done.stdout
    assert "2,148 1d bars" in done.stdout
    report = json.loads(out.read_text())
    assert report["bars"] == 2148 and report["metrics"]["trades"] == 46 == len(report["trades"])
    assert report["metrics"]["fees"] > 0
    first = report["trades"][0]
    assert (first["entry_bar"], first["exit_bar"], first["entry_price"], first["exit_price"]) == (
        75,
        85,
        "179.13",
        "182",
    )
    assert len(report["equity"]["equity"]) == 2148
    assert report["strategy"]["kind"] == "rules"
    # The equity curve over its drawdown, in the dark style (checked pixel by pixel in tests/unit/charts).
    with Image.open(chart) as image:
        assert (image.format, image.size) == ("PNG", (1280, 720))
        assert image.convert("RGB").getpixel((0, 0)) == (19, 23, 34)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not JSON"),
        ('{"kind": "rules", "rules": {"timeframe": "1d"}}', "invalid strategy at rules.rules.entry"),
        ('{"kind": "builtin", "bot_type": "grid", "params": {}}', "invalid strategy at builtin.grid.params"),
    ],
)
def test_a_bad_strategy_file_is_one_clear_line_and_status_2(
    tmp_path: Path, content: str, message: str
) -> None:
    strategy_file = tmp_path / "bad.json"
    strategy_file.write_text(content)

    done = _tekoa("--strategy", strategy_file, "--data", GOOG)

    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_bad_candles_and_a_wrong_timeframe_are_status_2(tmp_path: Path) -> None:
    strategy_file = tmp_path / "sma.json"
    strategy_file.write_text(json.dumps(SMA_CROSS))
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("timestamp,open,high,low,close,volume\n1092873600000,1,2,0.5,x,1\n")

    results = [
        _tekoa("--strategy", strategy_file, "--data", bad_csv),
        _tekoa("--strategy", strategy_file, "--data", tmp_path / "missing.csv"),
        _tekoa("--strategy", strategy_file, "--data", GOOG, "--timeframe", "1h"),
    ]

    assert [r.returncode for r in results] == [2, 2, 2]
    assert "bad.csv:2" in results[0].stderr
    assert "no such file" in results[1].stderr
    assert "runs on 1d candles, not 1h" in results[2].stderr
    assert all("Traceback" not in r.stderr for r in results)
