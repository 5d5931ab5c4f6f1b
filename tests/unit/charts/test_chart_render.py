"""Rendered charts, checked as images: size, content, and where things landed (pixel sampling)."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from tekoa.charts.render import (
    THEMES,
    PanelBox,
    PositionMark,
    RenderedChart,
    TradeMark,
    render_candles,
    render_equity,
)
from tekoa.charts.spec import PIXEL_SIZES, PRESENTATION, ChartLayout, ChartSize, ChartStyle
from tekoa.domain.timeframes import Timeframe
from tekoa.indicators.catalogue import INDICATORS
from tekoa.market.frame import CandleFrame
from tests.unit.indicators.series import random_walk

Pixels = npt.NDArray[np.uint8]

EXAMPLE_PARAMS: dict[str, dict[str, Any]] = {
    "sma": {"period": 10},  # not 20: bollinger's middle line would hide it
    "ema": {"period": 20},
    "wma": {"period": 20},
    "rsi": {"period": 14},
    "macd": {},
    "bollinger": {},
    "atr": {"period": 14},
    "stochastic": {},
    "adx": {"period": 14},
    "obv": {},
    "vwap": {"period": 20},
    "roc": {"period": 10},
    "cci": {"period": 20},
    "williams_r": {"period": 14},
    "mfi": {"period": 14},
    "volume_sma": {"period": 20},
    "highest": {"period": 20},
    "lowest": {"period": 20},
}


@cache
def hourly(n: int = 300) -> CandleFrame:
    """A seeded walk of hourly candles (times aligned to the hour)."""
    walk = random_walk(n, seed=11, price=60_000.0, flat_runs=False)
    times = (
        1_700_000_000_000 // Timeframe.H1.ms * Timeframe.H1.ms
        + np.arange(n, dtype=np.int64) * Timeframe.H1.ms
    )
    return CandleFrame.from_arrays(
        Timeframe.H1, times, walk.open, walk.high, walk.low, walk.close, walk.volume
    )


def pixels(chart: RenderedChart) -> Pixels:
    image = Image.open(io.BytesIO(chart.png))
    assert image.format == "PNG"
    return np.asarray(image.convert("RGB"))


def rgb(colour: str) -> npt.NDArray[np.int16]:
    text = colour.lstrip("#")
    return np.array([int(text[i : i + 2], 16) for i in (0, 2, 4)], dtype=np.int16)


def blend(colour: str, background: str, alpha: float) -> str:
    mixed = alpha * rgb(colour) + (1 - alpha) * rgb(background)
    return "#" + "".join(f"{round(v):02x}" for v in mixed)


def matches(image: Pixels, colour: str, tolerance: int = 24) -> npt.NDArray[np.bool_]:
    """Pixels within `tolerance` of `colour` on every channel (PNGs are palette-quantised)."""
    return np.all(np.abs(image.astype(np.int16) - rgb(colour)) <= tolerance, axis=-1)


def in_box(mask: npt.NDArray[np.bool_], box: PanelBox) -> int:
    return int(mask[round(box.top) : round(box.bottom), round(box.left) : round(box.right)].sum())


def assert_a_real_chart(chart: RenderedChart, style: ChartStyle, size: ChartSize) -> Pixels:
    expected = PIXEL_SIZES[size]
    image = pixels(chart)
    assert (chart.width, chart.height) == (expected.width, expected.height)
    assert image.shape == (expected.height, expected.width, 3)
    background = matches(image, THEMES[style].background, tolerance=2)
    assert background[0, 0] and background[-1, -1]
    assert 0.03 < 1 - background.mean() < 0.9, "blank (or all ink)"
    assert len(Image.open(io.BytesIO(chart.png)).getcolors(maxcolors=4096) or ()) > 20
    return image


@pytest.mark.parametrize("style", list(ChartStyle))
@pytest.mark.parametrize("size", list(ChartSize))
def test_every_style_and_size_renders_candles_and_volume_at_its_pixel_size(
    style: ChartStyle, size: ChartSize
) -> None:
    chart = render_candles(hourly(), ChartLayout(style=style, size=size), title="BTC/USDT · 1h")
    image = assert_a_real_chart(chart, style, size)
    theme = THEMES[style]
    assert set(chart.panels) == {"price", "volume"}
    price, volume = chart.panels["price"], chart.panels["volume"]
    for colour in (theme.up, theme.down):
        assert in_box(matches(image, colour), price) > 200
        # Volume bars take the candle's colour, faded; candles never spill into their panel.
        assert in_box(matches(image, blend(colour, theme.background, 0.55), tolerance=12), volume) > 200
        assert in_box(matches(image, colour, tolerance=6), volume) == 0


def test_volume_can_be_left_out() -> None:
    chart = render_candles(hourly(), ChartLayout(volume=False), title="no volume")
    assert set(chart.panels) == {"price"}
    assert_a_real_chart(chart, ChartStyle.LIGHT, ChartSize.WEB)


def test_examples_cover_the_catalogue() -> None:
    assert set(EXAMPLE_PARAMS) == set(INDICATORS)


PANEL_GROUPS = [list(INDICATORS)[i : i + 3] for i in range(0, len(INDICATORS), 3)]


@pytest.mark.parametrize("names", PANEL_GROUPS, ids=lambda names: "+".join(names))
def test_every_indicator_draws_in_a_panel_of_its_own(names: list[str]) -> None:
    layout = ChartLayout.model_validate(
        {"panels": [{"name": n, "params": EXAMPLE_PARAMS[n]} for n in names], "style": "dark"}
    )
    chart = render_candles(hourly(), layout, title="panels", start=int(hourly().open_time[60]))
    image = assert_a_real_chart(chart, ChartStyle.DARK, ChartSize.WEB)
    line = matches(image, THEMES[ChartStyle.DARK].palette[0])
    for number, name in enumerate(names, start=1):
        box = chart.panels[f"panel{number}"]
        assert in_box(line, box) > 300, f"{name}: no line drawn in its panel"
        assert in_box(line, chart.panels["price"]) == 0


OVERLAYS = [
    name
    for name in INDICATORS
    if PRESENTATION[name].placement(INDICATORS[name].params.model_validate(EXAMPLE_PARAMS[name])) != "panel"
]


@pytest.mark.parametrize("names", [OVERLAYS[:4], OVERLAYS[4:]], ids=lambda names: "+".join(names))
def test_every_price_or_volume_scaled_indicator_overlays_its_scale(names: list[str]) -> None:
    layout = ChartLayout.model_validate(
        {"overlays": [{"name": n, "params": EXAMPLE_PARAMS[n]} for n in names]}
    )
    frame = hourly()
    chart = render_candles(frame, layout, title="overlays", start=int(frame.open_time[100]))
    image = assert_a_real_chart(chart, ChartStyle.LIGHT, ChartSize.WEB)
    for overlay, colour in zip(layout.overlays, THEMES[ChartStyle.LIGHT].palette, strict=False):
        box = chart.panels["price" if overlay.placement == "price" else "volume"]
        assert in_box(matches(image, colour), box) > 600, f"{overlay.name}: no line on its scale"


def test_indicators_warm_up_on_history_before_start_so_lines_begin_at_the_left_edge() -> None:
    frame = hourly()
    layout = ChartLayout.model_validate(
        {"overlays": [{"name": "sma", "params": {"period": 50}}], "volume": False}
    )
    colour = THEMES[ChartStyle.LIGHT].palette[0]

    def left_edge_ink(start: int | None) -> int:
        chart = render_candles(frame, layout, title="warm", start=start)
        box = chart.panels["price"]
        strip = PanelBox(
            box.left, box.top + 80, box.left + 25, box.bottom, box.xlim, box.ylim
        )  # below the legend
        return in_box(matches(pixels(chart), colour), strip)

    assert left_edge_ink(int(frame.open_time[100])) > 10
    assert left_edge_ink(None) == 0  # from the first bar, sma(50) has no value for 49 bars


def trade_marks(frame: CandleFrame) -> list[TradeMark]:
    t, c = frame.open_time, frame.close
    return [
        TradeMark("long", int(t[40]) + 1_000, float(c[40]), int(t[70]) + 59_000, float(c[70])),
        TradeMark("short", int(t[120]), float(c[120]), int(t[150]), float(c[150])),
        TradeMark("long", int(t[260]), float(c[260])),  # still open: an entry only
    ]


def marker_points(frame: CandleFrame, trades: Sequence[TradeMark]) -> dict[str, list[tuple[float, float]]]:
    """Where ▲ (buy) and ▼ (sell) markers must be: (bar, price)."""

    def bar(ts: int) -> float:
        return float(np.searchsorted(frame.open_time, ts, side="right") - 1)

    points: dict[str, list[tuple[float, float]]] = {"buy": [], "sell": []}
    for trade in trades:
        entry, exit_ = ("buy", "sell") if trade.side == "long" else ("sell", "buy")
        points[entry].append((bar(trade.entry_time), trade.entry_price))
        if trade.exit_time is not None and trade.exit_price is not None:
            points[exit_].append((bar(trade.exit_time), trade.exit_price))
    return points


@pytest.mark.parametrize("style", list(ChartStyle))
@pytest.mark.parametrize("size", list(ChartSize))
def test_trade_markers_sit_where_the_trades_are(style: ChartStyle, size: ChartSize) -> None:
    frame = hourly()
    trades = trade_marks(frame)
    chart = render_candles(frame, ChartLayout(style=style, size=size), title="trades", trades=trades)
    image = assert_a_real_chart(chart, style, size)
    box = chart.panels["price"]
    theme = THEMES[style]
    for kind, colour in (("buy", theme.buy), ("sell", theme.sell)):
        mask = matches(image, colour)
        expected = [box.pixel(x, y) for x, y in marker_points(frame, trades)[kind]]
        assert len(expected) == 3 if kind == "buy" else 2
        for column, row in expected:
            assert mask[row - 1 : row + 2, column - 1 : column + 2].any(), (
                f"no {kind} marker at {column},{row}"
            )
        # ... and nowhere else: blank out a marker-sized disc around each, nothing of that colour is left.
        rows, columns = np.indices(mask.shape)
        for column, row in expected:
            mask &= (rows - row) ** 2 + (columns - column) ** 2 > 12**2
        assert not mask.any(), f"{kind}-coloured pixels away from the trades"


def test_a_trade_outside_the_drawn_range_leaves_no_marker() -> None:
    frame = hourly()
    late = TradeMark("long", int(frame.open_time[-1]) + 2 * Timeframe.H1.ms, float(frame.close[-1]))
    early = TradeMark("short", int(frame.open_time[0]) - 1, float(frame.close[0]))
    chart = render_candles(
        frame, ChartLayout(), title="outside", start=int(frame.open_time[10]), trades=[late, early]
    )
    image = pixels(chart)
    theme = THEMES[ChartStyle.LIGHT]
    assert not matches(image, theme.buy).any()
    assert not matches(image, theme.sell).any()


def test_an_open_position_draws_entry_stop_and_targets_from_where_it_opened() -> None:
    frame = hourly()
    entry = float(frame.close[250])
    position = PositionMark(
        "long",
        entry,
        opened_time=int(frame.open_time[250]),
        stop=entry * 0.97,
        targets=(entry * 1.03, entry * 1.05),
    )
    chart = render_candles(frame, ChartLayout(volume=False), title="position", position=position)
    image = pixels(chart)
    box = chart.panels["price"]
    theme = THEMES[ChartStyle.LIGHT]
    # Sample each level's row right of the last candle (the chart keeps room there) and before
    # the position opened: the line runs from its opening bar to the right edge only.
    for price, colour in ((position.stop, theme.stop), *((t, theme.target) for t in position.targets)):
        assert price is not None
        column, row = box.pixel(len(frame), price)
        assert matches(image, colour)[row - 1 : row + 2, column : column + 15].any(), f"no line at {price}"
        column, row = box.pixel(100, price)
        assert not matches(image, colour)[row - 1 : row + 2, column : column + 15].any(), (
            f"line before {price}"
        )
    # The levels are tagged on the price axis, right of the plot.
    _, row = box.pixel(0, position.stop or 0)
    assert matches(image, theme.stop)[row, round(box.right) + 4 : round(box.right) + 40].mean() > 0.5


def test_a_reused_figure_draws_exactly_what_a_fresh_one_draws() -> None:
    frame = hourly()
    busy = ChartLayout.model_validate(
        {"overlays": [{"name": "bollinger"}], "panels": [{"name": "rsi", "params": {"period": 14}}]}
    )
    plain = ChartLayout.model_validate({"panels": [{"name": "cci", "params": {"period": 20}}]})
    first = render_candles(frame, plain, title="plain", start=int(frame.open_time[50]))
    render_candles(frame, busy, title="busy", trades=trade_marks(frame), start=int(frame.open_time[20]))
    render_candles(frame.take(slice(0, 120)), busy, title="busy", start=int(frame.open_time[20]))
    again = render_candles(frame, plain, title="plain", start=int(frame.open_time[50]))
    assert again.png == first.png


def test_equity_curve_with_drawdown() -> None:
    frame = hourly()
    equity = 10_000 * frame.close / frame.close[0]
    for style in ChartStyle:
        for size in ChartSize:
            chart = render_equity(frame.open_time, equity, title="Backtest", style=style, size=size)
            image = assert_a_real_chart(chart, style, size)
            theme = THEMES[style]
            assert set(chart.panels) == {"equity", "drawdown"}
            peak = np.maximum.accumulate(equity)
            drawdown = (equity / peak - 1) * 100
            worst = int(np.argmin(drawdown))
            column, row = chart.panels["drawdown"].pixel(worst, float(drawdown[worst]))
            assert matches(image, theme.drawdown)[row - 2 : row + 3, column - 1 : column + 2].any()
            column, row = chart.panels["equity"].pixel(worst, float(equity[worst]))
            assert matches(image, theme.equity)[row - 2 : row + 3, column - 1 : column + 2].any()


def test_a_long_equity_curve_is_drawn_by_its_extremes() -> None:
    rng = np.random.default_rng(5)
    n = 300_000
    equity = 10_000 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
    equity[123_457] = equity[123_456] * 0.5  # one bar's crash: the worst drawdown, one point wide
    times = np.arange(n, dtype=np.int64) * Timeframe.M1.ms
    chart = render_equity(times, equity, title="1m over 7 months")
    image = pixels(chart)
    theme = THEMES[ChartStyle.LIGHT]
    worst = float((equity / np.maximum.accumulate(equity) - 1).min() * 100)
    assert worst < -50
    column, row = chart.panels["drawdown"].pixel(123_457, worst)
    assert matches(image, theme.drawdown)[row - 3 : row + 4, column - 2 : column + 3].any()


@pytest.mark.parametrize("n", [1, 2, 5])
def test_a_few_flat_candles_without_volume_still_make_a_chart(n: int) -> None:
    flat = np.full(n, 100.0)
    times = np.arange(n, dtype=np.int64) * Timeframe.M1.ms
    frame = CandleFrame.from_arrays(Timeframe.M1, times, flat, flat, flat, flat, np.zeros(n))
    layout = ChartLayout.model_validate(
        {"overlays": [{"name": "sma", "params": {"period": 3}}], "panels": [{"name": "macd"}]}
    )
    chart = render_candles(frame, layout, title="flat")
    image = pixels(chart)
    box = chart.panels["price"]
    _, row = box.pixel(0, 100.0)
    assert box.ylim[0] < 100.0 < box.ylim[1]
    assert matches(image, THEMES[ChartStyle.LIGHT].up)[row - 1 : row + 2].any()  # a doji is a line


def test_nothing_to_draw_is_an_error_not_a_blank_image() -> None:
    frame = hourly()
    with pytest.raises(ValueError, match="no candles"):
        render_candles(frame, ChartLayout(), title="empty", start=int(frame.open_time[-1]) + 1)
    with pytest.raises(ValueError, match="no equity"):
        render_equity(np.empty(0, dtype=np.int64), np.empty(0), title="empty")


def test_rendering_never_loads_pyplot() -> None:
    code = (
        "import sys\nfrom tests.unit.charts.test_chart_render import hourly\n"
        "from tekoa.charts.render import render_candles\nfrom tekoa.charts.spec import ChartLayout\n"
        "render_candles(hourly(), ChartLayout(), title='x')\nprint(' '.join(sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "matplotlib.backends.backend_agg" in loaded.split()
    assert "matplotlib.pyplot" not in loaded.split()
