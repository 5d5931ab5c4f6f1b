"""What a chart shows, as data: the indicators on it, their presentation, its style and size.

Pure Python (pydantic, no numpy, no matplotlib), so the API validates a chart request and
computes its storage key without loading the numeric stack; the renderer
(`tekoa.charts.render`) reads the same models.

Indicators come from the catalogue (`tekoa.indicators.catalogue`): a name it does not know,
or params its parameter model refuses, fail validation here with the catalogue's message.
How each indicator is drawn (`PRESENTATION`) is chart knowledge, kept next to the catalogue
rather than in it; a test holds the two to the same names.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal
from uuid import UUID

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator

from tekoa.domain.timeframes import Timeframe
from tekoa.indicators.catalogue import INDICATORS, PriceField, SourcedPeriodParams, indicator_spec
from tekoa.strategies.units import StrictModel

MAX_OVERLAYS = 6
MAX_PANELS = 3
DEFAULT_BARS = 200
"""Candles a chart shows when the request gives no start."""
MAX_BARS = 1000
"""Most candles one chart shows: more would not be readable at either size."""
RENDERER_VERSION = 1
"""Part of every chart's digest: raise it when drawings change, so no stale image is served."""


class ChartStyle(StrEnum):
    """Colour scheme."""

    LIGHT = "light"
    DARK = "dark"


class ChartSize(StrEnum):
    """Output format: a landscape image for the web, a portrait one for phones."""

    WEB = "web"
    MOBILE = "mobile"


@dataclass(frozen=True, slots=True)
class PixelSize:
    """Width and height of the PNG in pixels, and the resolution its text is set at."""

    width: int
    height: int
    dpi: int


PIXEL_SIZES: dict[ChartSize, PixelSize] = {
    ChartSize.WEB: PixelSize(1280, 720, 100),
    # A phone shows ~390 CSS px at 2-3x: 720 px across stays sharp with 2x-scaled text.
    ChartSize.MOBILE: PixelSize(720, 1080, 160),
}

Placement = Literal["price", "volume", "panel"]


def _by_source(params: Any) -> Placement:
    assert isinstance(params, SourcedPeriodParams)
    return "volume" if params.source is PriceField.VOLUME else "price"


def _on(placement: Placement) -> Callable[[Any], Placement]:
    return lambda params: placement


@dataclass(frozen=True, slots=True)
class Presentation:
    """How one indicator is drawn.

    `placement` says which scale its values share: the price axis, the volume axis, or a
    panel of its own (oscillators, MACD, ATR, ...). Only price- and volume-scaled indicators
    can be overlays; any indicator can have a panel. `lines` are the outputs drawn as lines,
    `bars` as a histogram about zero, `band` the pair of lines filled between, and `guides`
    the horizontal reference levels of the panel (RSI's 30/70).
    """

    placement: Callable[[Any], Placement]
    lines: tuple[str, ...] = ("value",)
    bars: tuple[str, ...] = ()
    band: tuple[str, str] | None = None
    guides: tuple[float, ...] = ()


PRESENTATION: dict[str, Presentation] = {
    "sma": Presentation(_by_source),
    "ema": Presentation(_by_source),
    "wma": Presentation(_by_source),
    "highest": Presentation(_by_source),
    "lowest": Presentation(_by_source),
    "vwap": Presentation(_on("price")),
    "bollinger": Presentation(_on("price"), lines=("upper", "middle", "lower"), band=("upper", "lower")),
    "volume_sma": Presentation(_on("volume")),
    "rsi": Presentation(_on("panel"), guides=(30.0, 70.0)),
    "macd": Presentation(_on("panel"), lines=("line", "signal"), bars=("hist",), guides=(0.0,)),
    "stochastic": Presentation(_on("panel"), lines=("k", "d"), guides=(20.0, 80.0)),
    "williams_r": Presentation(_on("panel"), guides=(-80.0, -20.0)),
    "mfi": Presentation(_on("panel"), guides=(20.0, 80.0)),
    "cci": Presentation(_on("panel"), guides=(-100.0, 100.0)),
    "roc": Presentation(_on("panel"), guides=(0.0,)),
    "adx": Presentation(_on("panel"), guides=(25.0,)),
    "atr": Presentation(_on("panel")),
    "obv": Presentation(_on("panel")),
}


class ChartIndicator(StrictModel):
    """One indicator on a chart: a catalogue name and params its parameter model accepts.

    Params are stored as the model's canonical JSON (defaults filled in), so two requests
    that mean the same indicator compare, and hash, equal.
    """

    name: str = Field(description="Indicator name from the catalogue, e.g. sma, rsi, macd, bollinger.")
    params: dict[str, Any] = Field(
        default_factory=dict,
        validate_default=True,
        description='The indicator\'s parameters, e.g. {"period": 20}.',
    )

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        if name not in INDICATORS:
            raise ValueError(f"unknown indicator {name!r}; known: {', '.join(INDICATORS)}")
        return name

    @field_validator("params")
    @classmethod
    def _params_fit(cls, params: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        name = info.data.get("name")
        if name is None:  # the name already failed
            return params
        try:
            checked = indicator_spec(name).params.model_validate(params)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise ValueError(f"{name}: {where + ': ' if where else ''}{first['msg']}") from None
        return dict(checked.model_dump(mode="json"))

    def params_model(self) -> Any:
        """The params as the catalogue's model (what `tekoa.indicators.compute` takes)."""
        return indicator_spec(self.name).params.model_validate(self.params)

    @property
    def presentation(self) -> Presentation:
        return PRESENTATION[self.name]

    @property
    def placement(self) -> Placement:
        return self.presentation.placement(self.params_model())

    @property
    def label(self) -> str:
        """Short legend text, e.g. `sma(20)` or `macd(12, 26, 9)`."""
        values = [str(v) for k, v in self.params.items() if not (k == "source" and v == "close")]
        return f"{self.name}({', '.join(values)})" if values else self.name


class ChartLayout(StrictModel):
    """Everything about a candle chart that is not data: indicators, volume, style, size."""

    overlays: list[ChartIndicator] = Field(
        default_factory=list,
        max_length=MAX_OVERLAYS,
        description="Indicators drawn over the candles (moving averages, Bollinger, vwap, ...) "
        "or, for volume-scaled ones (volume_sma), over the volume bars.",
    )
    panels: list[ChartIndicator] = Field(
        default_factory=list,
        max_length=MAX_PANELS,
        description="Indicators drawn in a panel of their own under the candles (rsi, macd, ...).",
    )
    volume: bool = Field(True, description="Draw the volume bars under the candles.")
    style: ChartStyle = ChartStyle.LIGHT
    size: ChartSize = ChartSize.WEB

    @field_validator("overlays")
    @classmethod
    def _overlays_share_a_scale(cls, overlays: list[ChartIndicator]) -> list[ChartIndicator]:
        for index, overlay in enumerate(overlays):
            if overlay.placement == "panel":
                raise ValueError(
                    f"overlay {index}: {overlay.name} has a scale of its own; ask for it in panels"
                )
        return overlays

    @model_validator(mode="after")
    def _volume_overlays_need_volume(self) -> ChartLayout:
        if not self.volume and any(o.placement == "volume" for o in self.overlays):
            raise ValueError("a volume-scaled overlay needs the volume bars (volume: true)")
        return self

    @property
    def pixels(self) -> PixelSize:
        return PIXEL_SIZES[self.size]


class DataStamp(StrictModel):
    """What the data a chart is drawn from looked like when it was asked for: a new candle,
    a backfilled gap or a new fill changes the stamp, and so the chart's digest."""

    candles: int = Field(ge=0, description="Stored candles from the warm-up history to the end.")
    first: int | None = Field(None, description="Open time of the first of them (ms).")
    last: int | None = Field(None, description="Open time of the last of them (ms).")
    fills: int = Field(0, ge=0, description="The bot's fills (bot charts).")
    activity: int = Field(0, ge=0, description="Last change of the bot's positions (ms; bot charts).")


class ChartDocument(StrictModel):
    """One candle chart, resolved: an absolute range of closed candles, the layout with every
    default filled in, the bot whose trades it shows, and the stamp of its data. Its digest
    names the image (`object_key`)."""

    renderer: int = RENDERER_VERSION
    exchange: str
    symbol: str
    timeframe: Timeframe
    start: int = Field(description="Open time of the first candle drawn (ms).")
    end: int = Field(description="Candles that open before this are drawn (ms).")
    layout: ChartLayout
    bot_id: UUID | None = None
    data: DataStamp

    @property
    def bars(self) -> int:
        return (self.end - self.start) // self.timeframe.ms

    @property
    def warmup_bars(self) -> int:
        """History the indicators need before `start` so their lines start settled."""
        indicators = [*self.layout.overlays, *self.layout.panels]
        return max((indicator_spec(i.name).warmup(i.params_model()) for i in indicators), default=0)

    @property
    def history_start(self) -> int:
        """Open time of the first candle read: `start` less the indicators' warm-up."""
        return max(0, self.start - self.warmup_bars * self.timeframe.ms)

    @property
    def title(self) -> str:
        return f"{self.symbol} · {self.timeframe.value} · {self.exchange}"

    def digest(self) -> str:
        return content_digest(self.model_dump(mode="json"))


ChartStatus = Literal["pending", "ready", "failed"]
ChartOrigin = Literal["api", "trade_closed"]


class Chart(StrictModel):
    """A stored chart: what it shows, where its image is, and how rendering went."""

    id: UUID
    user_id: UUID
    bot_id: UUID | None
    digest: str
    object_key: str
    document: ChartDocument
    status: ChartStatus
    error: str | None
    origin: ChartOrigin
    queued_at: datetime
    rendered_at: datetime | None
    created_at: datetime


def object_key(user_id: Any, digest: str) -> str:
    """Where a user's chart image lives: every chart of a user under one prefix."""
    return f"{CHART_PREFIX}{user_id}/{digest}.png"


CHART_PREFIX = "charts/"
"""Key prefix of every chart object (the chart function may write only under it)."""


def content_digest(document: Any) -> str:
    """SHA-256 of `document`'s canonical JSON: what a content-addressed chart is keyed by."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()
