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
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator

from tekoa.indicators.catalogue import INDICATORS, PriceField, SourcedPeriodParams, indicator_spec
from tekoa.strategies.units import StrictModel

MAX_OVERLAYS = 6
MAX_PANELS = 3


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


def content_digest(document: Any) -> str:
    """SHA-256 of `document`'s canonical JSON: what a content-addressed chart is keyed by."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()
