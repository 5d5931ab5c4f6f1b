"""Chart rendering: candles, volume, indicators, trades and positions, equity curves — PNG.

Drawn with matplotlib's object API on an Agg canvas — `Figure` + `FigureCanvasAgg`, never
pyplot, so there is no global figure registry or rc state to leak between renders. Candles,
wicks and volume bars are one `PolyCollection`/`LineCollection` each, built with numpy from
the frame's columns; that, fixed tick locators, and reused figures are what make a render
several times faster than mplfinance's default path (`bench/charts.py`; docs/DECISIONS.md).

Bars are placed by index (x = row number) so gaps in trading time take no space; the x tick
labels map indexes back to times. Indicators are computed by `tekoa.indicators.compute` over
the whole frame, history before `start` included, and only the bars from `start` on are
drawn, so moving averages start settled at the left edge.

Figures are reused: a finished render's figure goes back to a small pool keyed by its
layout (style, size, panels), and the next render of that layout clears the artists it drew
and draws again — matplotlib keeps the axes, tick objects and font state, which is most of
the cost of a fresh figure. Renders are serialised by a lock: matplotlib is not thread-safe.
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, cast

import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure
from matplotlib.ticker import FixedFormatter, FixedLocator, MaxNLocator
from PIL import Image

from tekoa.charts.spec import PIXEL_SIZES, ChartIndicator, ChartLayout, ChartSize, ChartStyle, PixelSize
from tekoa.indicators.compute import compute
from tekoa.market.frame import F64, I64, CandleFrame

Side = Literal["long", "short"]


# --------------------------------------------------------------------------- themes


@dataclass(frozen=True, slots=True)
class Theme:
    """Colours of one style. Trade markers use colours that no candle, overlay or line uses,
    so they stand out (and a test can find them by colour)."""

    background: str
    grid: str
    text: str
    muted: str
    up: str
    down: str
    buy: str
    sell: str
    stop: str
    target: str
    equity: str
    drawdown: str
    palette: tuple[str, ...]


THEMES: dict[ChartStyle, Theme] = {
    ChartStyle.LIGHT: Theme(
        background="#ffffff",
        grid="#e9ecf1",
        text="#2a2e39",
        muted="#787b86",
        up="#26a69a",
        down="#ef5350",
        buy="#2962ff",
        sell="#d500f9",
        stop="#c62828",
        target="#2e7d32",
        equity="#1e88e5",
        drawdown="#e53935",
        palette=("#ff9800", "#7e57c2", "#795548", "#00838f", "#f9a825", "#546e7a"),
    ),
    ChartStyle.DARK: Theme(
        background="#131722",
        grid="#242833",
        text="#d1d4dc",
        muted="#868993",
        up="#26a69a",
        down="#ef5350",
        buy="#448aff",
        sell="#e040fb",
        stop="#ff5252",
        target="#69f0ae",
        equity="#42a5f5",
        drawdown="#ef5350",
        palette=("#ffb74d", "#b39ddb", "#bcaaa4", "#4dd0e1", "#fff176", "#90a4ae"),
    ),
}

# Oscillators with a fixed range keep it, so 70 on RSI sits at the same height on every chart.
_FIXED_RANGE: dict[str, tuple[float, float]] = {
    "rsi": (0.0, 100.0),
    "stochastic": (0.0, 100.0),
    "mfi": (0.0, 100.0),
    "adx": (0.0, 100.0),
    "williams_r": (-100.0, 0.0),
}

_FONT_PT = 8.5
_PNG_COMPRESSION = 3  # zlib level: on a palette image, 3 is about as small as 6 and faster


# --------------------------------------------------------------------------- inputs and result


@dataclass(frozen=True, slots=True)
class TradeMark:
    """A bot's trade on the chart: its entry, and its exit once it has one (ms, price)."""

    side: Side
    entry_time: int
    entry_price: float
    exit_time: int | None = None
    exit_price: float | None = None


@dataclass(frozen=True, slots=True)
class PositionMark:
    """An open position's levels, drawn as lines from where it opened to the right edge."""

    side: Side
    entry_price: float
    opened_time: int | None = None
    stop: float | None = None
    targets: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class PanelBox:
    """Where one panel landed in the PNG: its pixel box (origin top-left, rows down) and
    the data range it shows, so a point (x, y) can be located in the image."""

    left: float
    top: float
    right: float
    bottom: float
    xlim: tuple[float, float]
    ylim: tuple[float, float]

    def pixel(self, x: float, y: float) -> tuple[int, int]:
        """(column, row) of data point (x, y)."""
        fx = (x - self.xlim[0]) / (self.xlim[1] - self.xlim[0])
        fy = (y - self.ylim[0]) / (self.ylim[1] - self.ylim[0])
        return (
            round(self.left + fx * (self.right - self.left)),
            round(self.bottom - fy * (self.bottom - self.top)),
        )


@dataclass(frozen=True, slots=True)
class RenderedChart:
    """A PNG and the geometry of its panels (`price`, `volume`, `panel1`…; `equity`, `drawdown`)."""

    png: bytes
    width: int
    height: int
    panels: dict[str, PanelBox] = field(default_factory=dict)
    bars: int = 0
    """Candles (or equity points) drawn; bar i sits at x = i."""


# --------------------------------------------------------------------------- figure pool


class _Canvas:
    """A figure with its axes laid out for one (style, size, panel heights), reusable."""

    def __init__(self, theme: Theme, pixels: PixelSize, heights: tuple[float, ...]) -> None:
        self.theme = theme
        self.pixels = pixels
        self.figure = Figure(figsize=(pixels.width / pixels.dpi, pixels.height / pixels.dpi), dpi=pixels.dpi)
        self.canvas = FigureCanvasAgg(self.figure)
        self.figure.patch.set_facecolor(theme.background)
        width_in = pixels.width / pixels.dpi
        height_in = pixels.height / pixels.dpi
        # Margins in inches, so text has the same room at every size: price labels on the right.
        grid = self.figure.add_gridspec(
            len(heights),
            1,
            height_ratios=heights,
            hspace=0.0,
            left=0.12 / width_in,
            right=1 - 0.78 / width_in,
            top=1 - 0.34 / height_in,
            bottom=0.3 / height_in,
        )
        self.axes: list[Axes] = []
        for row in range(len(heights)):
            ax = self.figure.add_subplot(grid[row], sharex=self.axes[0] if self.axes else None)
            ax.set_facecolor(theme.background)
            for spine in ax.spines.values():
                spine.set_color(theme.grid)
            ax.spines["top"].set_visible(row == 0)
            ax.yaxis.tick_right()
            ax.tick_params(colors=theme.muted, labelcolor=theme.muted, labelsize=_FONT_PT, length=0, pad=4)
            ax.tick_params(axis="x", labelbottom=row == len(heights) - 1)
            ax.grid(True, color=theme.grid, linewidth=0.6)
            ax.set_axisbelow(True)
            self.axes.append(ax)

    def clear(self) -> None:
        """Remove everything the last render drew; axes, ticks and fonts stay."""
        for ax in self.axes:
            for artist in (*ax.lines, *ax.collections, *ax.texts, *ax.patches):
                artist.remove()
        for text in list(self.figure.texts):
            text.remove()

    def png(self) -> bytes:
        """Draw, and encode as a 256-colour PNG: a chart is flat colour with a little
        antialiasing, so the palette costs nothing visible, and quantising plus encoding is
        about twice as fast as encoding RGBA and the file half the size."""
        self.canvas.draw()  # type: ignore[no-untyped-call]
        image = Image.frombuffer(
            "RGBA",
            (self.pixels.width, self.pixels.height),
            self.canvas.buffer_rgba(),  # type: ignore[no-untyped-call]
            "raw",
            "RGBA",
            0,
            1,
        )
        buffer = io.BytesIO()
        image.convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE).save(
            buffer, "png", compress_level=_PNG_COMPRESSION
        )
        return buffer.getvalue()

    def box(self, ax: Axes) -> PanelBox:
        x0, y0, x1, y1 = ax.get_position().extents
        w, h = self.pixels.width, self.pixels.height
        xlim = ax.get_xlim()
        ylim = ax.get_ylim()
        return PanelBox(
            left=x0 * w,
            top=(1 - y1) * h,
            right=x1 * w,
            bottom=(1 - y0) * h,
            xlim=(float(xlim[0]), float(xlim[1])),
            ylim=(float(ylim[0]), float(ylim[1])),
        )


_POOL_PER_LAYOUT = 2
_POOL_LAYOUTS = 24
_pool: dict[tuple[Any, ...], list[_Canvas]] = {}
_render_lock = threading.Lock()


@contextmanager
def _canvas(style: ChartStyle, size: ChartSize, heights: tuple[float, ...]) -> Iterator[_Canvas]:
    key = (style, size, heights)
    idle = _pool.get(key)
    canvas = idle.pop() if idle else _Canvas(THEMES[style], PIXEL_SIZES[size], heights)
    canvas.clear()
    try:
        yield canvas
    finally:
        if len(_pool) < _POOL_LAYOUTS or key in _pool:
            kept = _pool.setdefault(key, [])
            if len(kept) < _POOL_PER_LAYOUT:
                kept.append(canvas)


# --------------------------------------------------------------------------- candle charts


def render_candles(
    frame: CandleFrame,
    layout: ChartLayout,
    *,
    title: str,
    start: int | None = None,
    trades: Sequence[TradeMark] = (),
    position: PositionMark | None = None,
) -> RenderedChart:
    """A candle chart of `frame` from `start` (ms; default: every row) with `layout`'s
    volume, overlays and panels, the trades' entry and exit markers and the open position's
    entry, stop and target lines, as a PNG. Rows before `start` only warm up indicators."""
    first = 0 if start is None else int(np.searchsorted(frame.open_time, start, side="left"))
    if first >= len(frame):
        raise ValueError("no candles to draw")
    computed = _indicators(frame, [*layout.overlays, *layout.panels], first)
    view = frame.take(slice(first, None))
    heights = (4.0, *((1.0,) if layout.volume else ()), *(1.4 for _ in layout.panels))
    with _render_lock, _canvas(layout.style, layout.size, heights) as canvas:
        theme = canvas.theme
        price_ax = canvas.axes[0]
        n = len(view)
        x = np.arange(n, dtype=np.float64)
        xlim = (-1.0, n - 1 + _right_pad(canvas, price_ax, n, position is not None))
        price_ax.set_xlim(*xlim)
        up = view.close >= view.open
        colours = np.where(up[:, None], _rgba(theme.up), _rgba(theme.down))
        # Crisp (unsmoothed) rectangles are faster and sharper, but a bar narrower than a few
        # pixels would snap to 0 or 1 px at random: smooth those.
        bar_px = price_ax.get_position().width * canvas.pixels.width / (xlim[1] - xlim[0])
        smooth = bar_px < 4.0
        _candles(price_ax, x, view, colours, smooth, canvas.pixels.dpi)

        prices = [view.low.min(), view.high.max()]
        palette = iter(theme.palette * 2)
        labels: list[tuple[str, str]] = []
        panel_names = ["price"]
        next_ax = 1
        if layout.volume:
            volume_ax = canvas.axes[next_ax]
            next_ax += 1
            panel_names.append("volume")
            _volume(volume_ax, x, view.volume, colours, smooth)
        for overlay in layout.overlays:
            target = price_ax if overlay.placement == "price" else volume_ax
            drawn = _draw_lines(target, x, overlay, computed[_key(overlay)], palette)
            if overlay.placement == "price":
                values = computed[_key(overlay)]
                prices.extend(_finite_range(*(values[name] for name in overlay.presentation.lines)))
            labels.append((overlay.label, drawn))
        for number, panel in enumerate(layout.panels, start=1):
            ax = canvas.axes[next_ax]
            next_ax += 1
            panel_names.append(f"panel{number}")
            _panel(ax, x, panel, computed[_key(panel)], theme)

        prices.extend(_trade_prices(trades, position))
        _price_limits(price_ax, prices)
        if position is not None:
            _position_lines(price_ax, view.open_time, position, theme, xlim)
        _trade_markers(price_ax, view.open_time, trades, theme)
        _legend(price_ax, labels, theme)
        _time_axis(canvas.axes[-1], view.open_time, canvas.pixels)
        _title(canvas, title, _last_price_text(view), theme)
        _fixed_y_ticks(price_ax, 7)
        if layout.volume:
            _fixed_y_ticks(volume_ax, 3, "compact")
        png = canvas.png()
        boxes = {name: canvas.box(ax) for name, ax in zip(panel_names, canvas.axes, strict=True)}
        return RenderedChart(png, canvas.pixels.width, canvas.pixels.height, boxes, bars=n)


def _right_pad(canvas: _Canvas, ax: Axes, bars: int, labelled: bool) -> float:
    """Bars of empty room right of the last candle: ~0.45 in for the position's line names."""
    if not labelled:
        return 1.0 + bars * 0.01
    plot_in = ax.get_position().width * canvas.pixels.width / canvas.pixels.dpi
    room = 0.45
    return room * bars / max(plot_in - room, 1.0)


def _key(indicator: ChartIndicator) -> str:
    return f"{indicator.name}:{sorted(indicator.params.items())}"


def _indicators(
    frame: CandleFrame, indicators: Sequence[ChartIndicator], first: int
) -> dict[str, dict[str, F64]]:
    out: dict[str, dict[str, F64]] = {}
    for indicator in indicators:
        key = _key(indicator)
        if key not in out:
            values = compute(indicator.name, indicator.params_model(), frame)
            out[key] = {name: series[first:] for name, series in values.items()}
    return out


def _rgba(colour: str) -> npt.NDArray[np.float64]:
    text = colour.lstrip("#")
    return np.array([[int(text[i : i + 2], 16) / 255 for i in (0, 2, 4)] + [1.0]])


def _vertices(array: F64) -> Sequence[Any]:
    """An (n, k, 2) vertex array as the sequence matplotlib's stubs ask for; the array itself
    is what its collections read fastest."""
    return cast("Sequence[Any]", array)


def _bar_boxes(x: F64, bottom: F64, top: F64, half_width: float) -> F64:
    """(n, 4, 2) rectangle vertices: one bar per x from bottom to top."""
    verts = np.empty((x.shape[0], 4, 2), dtype=np.float64)
    verts[:, 0, 0] = verts[:, 1, 0] = x - half_width
    verts[:, 2, 0] = verts[:, 3, 0] = x + half_width
    verts[:, 0, 1] = verts[:, 3, 1] = bottom
    verts[:, 1, 1] = verts[:, 2, 1] = top
    return verts


def _candles(
    ax: Axes, x: F64, view: CandleFrame, colours: npt.NDArray[np.float64], smooth: bool, dpi: int
) -> None:
    wicks = np.empty((x.shape[0], 2, 2), dtype=np.float64)
    wicks[:, 0, 0] = wicks[:, 1, 0] = x
    wicks[:, 0, 1] = view.low
    wicks[:, 1, 1] = view.high
    ax.add_collection(LineCollection(_vertices(wicks), colors=colours, linewidths=0.8, antialiaseds=smooth))
    bodies = _bar_boxes(x, np.minimum(view.open, view.close), np.maximum(view.open, view.close), 0.36)
    # An edge in the body's colour, one pixel wide, keeps a doji (open == close) visible as a
    # full-colour line (Agg fades a thinner one).
    ax.add_collection(
        PolyCollection(
            _vertices(bodies),
            facecolors=colours,
            edgecolors=colours,
            linewidths=72 / dpi,
            antialiaseds=smooth,
        )
    )


def _volume(ax: Axes, x: F64, volume: F64, colours: npt.NDArray[np.float64], smooth: bool) -> None:
    faded = colours.copy()
    faded[:, 3] = 0.55
    ax.add_collection(
        PolyCollection(
            _vertices(_bar_boxes(x, np.zeros_like(volume), volume, 0.36)),
            facecolors=faded,
            edgecolors="none",
            antialiaseds=smooth,
        )
    )
    top = float(volume.max()) if volume.size else 0.0
    ax.set_ylim(0.0, top * 1.15 if top > 0 else 1.0)


def _draw_lines(
    ax: Axes, x: F64, indicator: ChartIndicator, values: dict[str, F64], palette: Iterator[str]
) -> str:
    """Draw `indicator`'s lines (and band); answer the colour its legend entry takes."""
    presentation = indicator.presentation
    colour = next(palette)
    if presentation.band is not None:
        upper, lower = (values[name] for name in presentation.band)
        ax.fill_between(x, lower, upper, color=colour, alpha=0.08, linewidth=0)
    for number, name in enumerate(presentation.lines):
        line_colour = colour if number == 0 or presentation.band is not None else next(palette)
        ax.plot(x, values[name], color=line_colour, linewidth=1.1 if number == 0 else 0.9)
    return colour


def _panel(ax: Axes, x: F64, indicator: ChartIndicator, values: dict[str, F64], theme: Theme) -> None:
    presentation = indicator.presentation
    for name in presentation.bars:
        bars = np.nan_to_num(values[name])
        colours = np.where((bars >= 0)[:, None], _rgba(theme.up), _rgba(theme.down))
        colours[:, 3] = 0.6
        ax.add_collection(
            PolyCollection(
                _vertices(_bar_boxes(x, np.zeros_like(bars), bars, 0.36)),
                facecolors=colours,
                edgecolors="none",
            )
        )
    for level in presentation.guides:
        ax.axhline(level, color=theme.muted, linewidth=0.7, linestyle=(0, (4, 3)))
    _draw_lines(ax, x, indicator, values, iter(theme.palette))
    fixed = _FIXED_RANGE.get(indicator.name)
    if fixed is not None:
        ax.set_ylim(*fixed)
        _fixed_y_ticks(ax, 3, ticks=presentation.guides)
    else:
        drawn = [values[name] for name in (*presentation.lines, *presentation.bars)]
        _pad_limits(ax, [*_finite_range(*drawn), *presentation.guides])
        _fixed_y_ticks(ax, 3, "compact")
    ax.text(
        0.005,
        0.96,
        indicator.label,
        transform=ax.transAxes,
        ha="left",
        va="top",
        color=theme.text,
        fontsize=_FONT_PT,
    )


def _finite_range(*series: F64) -> list[float]:
    """Smallest and largest finite value of the series (empty when all are NaN)."""
    values = [s[np.isfinite(s)] for s in series]
    values = [v for v in values if v.size]
    if not values:
        return []
    return [min(float(v.min()) for v in values), max(float(v.max()) for v in values)]


def _pad_limits(ax: Axes, values: Sequence[float], pad: float = 0.06) -> None:
    if not values:
        ax.set_ylim(0.0, 1.0)
        return
    low, high = min(values), max(values)
    span = high - low or abs(high) * 0.01 or 1.0
    ax.set_ylim(low - span * pad, high + span * pad)


def _price_limits(ax: Axes, prices: Sequence[float]) -> None:
    _pad_limits(ax, [float(p) for p in prices], pad=0.05)


def _trade_prices(trades: Sequence[TradeMark], position: PositionMark | None) -> list[float]:
    prices = [t.entry_price for t in trades] + [t.exit_price for t in trades if t.exit_price is not None]
    if position is not None:
        prices.append(position.entry_price)
        prices.extend(p for p in (position.stop, *position.targets) if p is not None)
    return prices


def _bar_of(open_time: I64, ts: int) -> float | None:
    """x of the candle containing `ts`, or None when `ts` is outside the drawn candles."""
    if open_time.size == 0 or ts < open_time[0]:
        return None
    bar = int(np.searchsorted(open_time, ts, side="right")) - 1
    step = int(open_time[1] - open_time[0]) if open_time.size > 1 else 0
    if bar == open_time.size - 1 and step and ts >= open_time[-1] + step:
        return None
    return float(bar)


def _trade_markers(ax: Axes, open_time: I64, trades: Sequence[TradeMark], theme: Theme) -> None:
    """Entries and exits: ▲ where the bot bought, ▼ where it sold, at the fill's bar and
    price; a faint line joins a trade's entry to its exit."""
    points: dict[str, tuple[list[float], list[float]]] = {"buy": ([], []), "sell": ([], [])}
    links: list[list[tuple[float, float]]] = []
    for trade in trades:
        entry_bar = _bar_of(open_time, trade.entry_time)
        exit_bar = None if trade.exit_time is None else _bar_of(open_time, trade.exit_time)
        entry_kind, exit_kind = ("buy", "sell") if trade.side == "long" else ("sell", "buy")
        if entry_bar is not None:
            points[entry_kind][0].append(entry_bar)
            points[entry_kind][1].append(trade.entry_price)
        if exit_bar is not None and trade.exit_price is not None:
            points[exit_kind][0].append(exit_bar)
            points[exit_kind][1].append(trade.exit_price)
            if entry_bar is not None:
                links.append([(entry_bar, trade.entry_price), (exit_bar, trade.exit_price)])
    if links:
        ax.add_collection(LineCollection(links, colors=theme.muted, linewidths=0.8, linestyles=(0, (2, 2))))
    size = 7.5
    for kind, marker in (("buy", "^"), ("sell", "v")):
        xs, ys = points[kind]
        if xs:
            ax.plot(
                xs,
                ys,
                linestyle="none",
                marker=marker,
                markersize=size,
                markerfacecolor=theme.buy if kind == "buy" else theme.sell,
                markeredgecolor=theme.background,
                markeredgewidth=0.8,
                zorder=5,
            )


def _position_lines(
    ax: Axes, open_time: I64, position: PositionMark, theme: Theme, xlim: tuple[float, float]
) -> None:
    """Entry, stop and targets as dashed lines from the opening bar, each named at the right
    end and tagged with its price on the price axis."""
    start = 0.0
    if position.opened_time is not None:
        start = _bar_of(open_time, position.opened_time) or 0.0
    levels = [("entry", position.entry_price, theme.text)]
    if position.stop is not None:
        levels.append(("stop", position.stop, theme.stop))
    levels.extend((f"T{i}", price, theme.target) for i, price in enumerate(position.targets, start=1))
    on_axis = ax.get_yaxis_transform()
    for label, price, colour in levels:
        ax.hlines(price, start, xlim[1], colors=colour, linewidths=1.0, linestyles=(0, (5, 3)), zorder=4)
        ax.text(
            xlim[1],
            price,
            f"{label} ",
            ha="right",
            va="bottom",
            color=colour,
            fontsize=_FONT_PT * 0.9,
            zorder=4,
        )
        ax.text(
            1.005,
            price,
            _price_text(price),
            transform=on_axis,
            ha="left",
            va="center",
            zorder=6,
            color=theme.background,
            fontsize=_FONT_PT * 0.9,
            clip_on=False,
            bbox={"boxstyle": "square,pad=0.2", "facecolor": colour, "linewidth": 0},
        )


def _legend(ax: Axes, labels: Sequence[tuple[str, str]], theme: Theme) -> None:
    """Overlay names top left, one per line, each in its line's colour (cheaper than a Legend)."""
    for number, (text, colour) in enumerate(labels):
        ax.annotate(
            text,
            xy=(0, 1),
            xycoords="axes fraction",
            xytext=(6, -6 - number * (_FONT_PT + 4)),
            textcoords="offset points",
            ha="left",
            va="top",
            color=colour,
            fontsize=_FONT_PT,
            bbox={
                "boxstyle": "square,pad=0.15",
                "facecolor": theme.background,
                "alpha": 0.75,
                "linewidth": 0,
            },
        )


def _title(canvas: _Canvas, title: str, right: str, theme: Theme) -> None:
    box = canvas.axes[0].get_position()
    y = 1 - 0.12 / (canvas.pixels.height / canvas.pixels.dpi)
    canvas.figure.text(box.x0, y, title, ha="left", va="top", color=theme.text, fontsize=_FONT_PT + 2)
    canvas.figure.text(box.x1, y, right, ha="right", va="top", color=theme.muted, fontsize=_FONT_PT)


def _last_price_text(view: CandleFrame) -> str:
    last = view.close[-1]
    change = (last / view.open[0] - 1) * 100 if view.open[0] else 0.0
    return f"{_price_text(float(last))}  {change:+.2f}%"


# --------------------------------------------------------------------------- axes


def _decimals(step: float) -> int:
    return max(0, min(8, -math.floor(math.log10(step)) if step > 0 else 0))


def _price_text(price: float, decimals: int | None = None) -> str:
    if decimals is None:
        decimals = 2 if abs(price) >= 1 else _decimals(abs(price) / 1000 if price else 1.0)
    return f"{price:,.{decimals}f}"


def _compact(value: float, decimals: int) -> str:
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= scale:
            return f"{value / scale:.{max(0, decimals)}f}{suffix}".replace(".0" + suffix, suffix)
    return f"{value:.{decimals}f}"


YFormat = Literal["price", "compact", "percent"]


def _fixed_y_ticks(ax: Axes, bins: int, fmt: YFormat = "price", ticks: Sequence[float] | None = None) -> None:
    """Ticks at round values strictly inside the panel (so neighbours' labels never collide),
    labelled with as many decimals as the step needs; computed once per render, a fixed
    locator and formatter do no work at draw time."""
    low, high = ax.get_ylim()
    if ticks is None:
        ticks = [float(t) for t in MaxNLocator(nbins=bins).tick_values(low, high) if low < t < high]
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else abs(high - low) or 1.0
    # As many decimals as the ticks need (a 0.025 step needs three), no more.
    decimals = next(
        (d for d in range(9) if all(abs(round(t, d) - t) <= step * 1e-6 for t in ticks)), _decimals(step)
    )
    if fmt == "compact":
        labels = [_compact(t, max(decimals, 1) if abs(t) >= 1000 else decimals) for t in ticks]
    elif fmt == "percent":
        labels = [f"{t:.{decimals}f}%" for t in ticks]
    else:
        labels = [f"{t:,.{decimals}f}" for t in ticks]
    ax.yaxis.set_major_locator(FixedLocator(list(ticks)))
    ax.yaxis.set_major_formatter(FixedFormatter(labels))


_MINUTE = 60_000
_DAY = 86_400_000
_INTRADAY_STEPS = tuple(m * _MINUTE for m in (1, 5, 15, 30, 60, 120, 240, 360, 720))
_DAY_STEPS = (1, 2, 3)
_MONTH_STEPS = (1, 3, 6, 12, 24, 60)


def _time_slots(open_time: I64) -> Iterator[tuple[I64, str]]:
    """Candidate tick grids, finest first: for each, the slot every bar falls in (a tick goes
    where the slot changes) and the strftime format of its labels."""
    days = open_time // _DAY
    for step in _INTRADAY_STEPS:
        yield open_time // step, "%H:%M"
    for count in _DAY_STEPS:
        yield days // count, "%b %d"
    yield (days + 3) // 7, "%b %d"  # weeks from Monday (1970-01-01 was a Thursday)
    months = open_time.astype("datetime64[ms]").astype("datetime64[M]").astype(np.int64)
    for count in _MONTH_STEPS:
        yield months // count, "%b %Y" if count < 12 else "%Y"


def _time_axis(ax: Axes, open_time: I64, pixels: PixelSize) -> None:
    """Ticks where the time crosses a round boundary (hour, day, Monday, month, year), the
    finest grid that leaves about 1.1 in per label; intraday grids name a new day by its date."""
    most = max(2, int(pixels.width / pixels.dpi * 0.9))
    bars: I64 = np.zeros(1, dtype=np.int64)  # no boundary crossed: one tick, on the first bar
    fmt = "%Y"
    for slots, grid_format in _time_slots(open_time):
        ticks = np.flatnonzero(np.diff(slots)) + 1
        if ticks.size <= most:
            bars = ticks if ticks.size else bars
            fmt = grid_format
            break
    days = open_time // _DAY
    labels = []
    for bar in bars:
        moment = datetime.fromtimestamp(int(open_time[bar]) / 1000, tz=UTC)
        new_day = fmt == "%H:%M" and bar > 0 and days[bar] != days[bar - 1]
        labels.append(moment.strftime("%b %d" if new_day else fmt))
    ax.xaxis.set_major_locator(FixedLocator(bars.astype(np.float64).tolist()))
    ax.xaxis.set_major_formatter(FixedFormatter(labels))


# --------------------------------------------------------------------------- equity curves


def render_equity(
    open_time: I64,
    equity: F64,
    *,
    title: str,
    style: ChartStyle = ChartStyle.LIGHT,
    size: ChartSize = ChartSize.WEB,
) -> RenderedChart:
    """A backtest's equity curve over its drawdown (percent below the running peak), PNG."""
    if equity.size == 0:
        raise ValueError("no equity to draw")
    with _render_lock, _canvas(style, size, (3.0, 1.3)) as canvas:
        theme = canvas.theme
        equity_ax, drawdown_ax = canvas.axes
        n = equity.shape[0]
        peak = np.maximum.accumulate(equity)
        drawdown = np.where(peak > 0, (equity / peak - 1.0) * 100.0, 0.0)
        equity_ax.set_xlim(-0.5, n - 0.5)
        _pad_limits(equity_ax, [float(equity.min()), float(equity.max())])
        floor = equity_ax.get_ylim()[0]
        # A long backtest has far more points than pixels: draw each pixel column's range.
        columns = int(equity_ax.get_position().width * canvas.pixels.width)
        x, equity_line = _envelope(equity, columns)
        _, drawdown_line = _envelope(drawdown, columns)
        equity_ax.fill_between(x, floor, equity_line, color=theme.equity, alpha=0.12, linewidth=0)
        equity_ax.plot(x, equity_line, color=theme.equity, linewidth=1.3)
        drawdown_ax.fill_between(x, drawdown_line, 0.0, color=theme.drawdown, alpha=0.35, linewidth=0)
        drawdown_ax.plot(x, drawdown_line, color=theme.drawdown, linewidth=0.9)
        worst = int(np.argmin(drawdown))
        drawdown_ax.set_ylim(min(float(drawdown[worst]) * 1.15, -1.0), 0.0)
        drawdown_ax.text(
            0.005,
            0.08,
            f"drawdown · max {drawdown[worst]:.2f}%",
            transform=drawdown_ax.transAxes,
            ha="left",
            va="bottom",
            color=theme.text,
            fontsize=_FONT_PT,
        )
        total = (equity[-1] / equity[0] - 1) * 100 if equity[0] else 0.0
        _title(canvas, title, f"{_price_text(float(equity[-1]))}  {total:+.2f}%", theme)
        _time_axis(drawdown_ax, open_time, canvas.pixels)
        _fixed_y_ticks(equity_ax, 6)
        _fixed_y_ticks(drawdown_ax, 3, "percent")
        png = canvas.png()
        boxes = {"equity": canvas.box(equity_ax), "drawdown": canvas.box(drawdown_ax)}
        return RenderedChart(png, canvas.pixels.width, canvas.pixels.height, boxes, bars=n)


def _envelope(values: F64, columns: int) -> tuple[F64, F64]:
    """(x, y) to draw `values` with: themselves when they fit in a few points per pixel column,
    else each run's lowest and highest value (so every extreme, the worst drawdown first of
    all, is still drawn), at the run's middle bar."""
    n = values.shape[0]
    if n <= 4 * columns:
        return np.arange(n, dtype=np.float64), values
    per = -(-n // (2 * columns))
    padded = np.concatenate((values, np.full(-n % per, values[-1])))
    runs = padded.reshape(-1, per)
    middle = np.arange(runs.shape[0], dtype=np.float64) * per + (per - 1) / 2
    return np.repeat(middle, 2), np.column_stack((runs.min(axis=1), runs.max(axis=1))).ravel()


def warm_up() -> Callable[[], None]:
    """Load matplotlib's fonts and build a figure once (a container's first chart then renders
    at warm speed); answers a function that renders a tiny chart, for callers to time."""
    from tekoa.domain.timeframes import Timeframe

    times = np.arange(30, dtype=np.int64) * Timeframe.M1.ms
    closes = 100.0 + np.sin(np.arange(30) / 3.0)
    frame = CandleFrame.from_arrays(Timeframe.M1, times, closes, closes + 1, closes - 1, closes, np.ones(30))

    def render() -> None:
        render_candles(frame, ChartLayout(), title="warm-up")

    render()
    return render
