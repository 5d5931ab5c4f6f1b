"""What a chart may show is validated at the door, against the indicator catalogue."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from tekoa.charts.spec import PRESENTATION, ChartIndicator, ChartLayout, ChartSize, content_digest
from tekoa.indicators.catalogue import INDICATORS


def test_every_catalogue_indicator_has_a_presentation() -> None:
    assert set(PRESENTATION) == set(INDICATORS)
    for name, presentation in PRESENTATION.items():
        drawn = {*presentation.lines, *presentation.bars, *(presentation.band or ())}
        assert drawn <= set(INDICATORS[name].outputs), name


def test_params_are_checked_by_the_catalogue_model_and_stored_canonically() -> None:
    given = ChartIndicator(name="bollinger", params={"period": 20})
    assert given.params == {"period": 20, "std": "2"}
    assert given == ChartIndicator(name="bollinger", params={"std": 2, "period": 20})
    assert given.label == "bollinger(20, 2)"
    assert ChartIndicator(name="sma", params={"period": 9}).label == "sma(9)"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": "supertrend"}, "unknown indicator 'supertrend'"),
        ({"name": "sma"}, "sma: period: Field required"),
        ({"name": "rsi", "params": {"period": 0}}, "rsi: period: Input should be greater than or equal to 1"),
        ({"name": "rsi", "params": {"period": 14, "colour": "red"}}, "rsi: colour: Extra inputs"),
        ({"name": "macd", "params": {"fast": 26, "slow": 12}}, "slow period (12) must be longer"),
        ({"name": "macd", "params": {"fast": 30}}, "slow period (26) must be longer"),
    ],
)
def test_an_unknown_indicator_or_bad_params_fail_with_the_reason(
    body: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ChartIndicator.model_validate(body)


def test_an_oscillator_cannot_be_an_overlay_but_a_volume_average_overlays_the_volume() -> None:
    with pytest.raises(ValidationError, match="rsi has a scale of its own; ask for it in panels"):
        ChartLayout.model_validate({"overlays": [{"name": "rsi", "params": {"period": 14}}]})
    layout = ChartLayout.model_validate(
        {
            "overlays": [
                {"name": "volume_sma", "params": {"period": 20}},
                {"name": "sma", "params": {"period": 5, "source": "volume"}},
            ]
        }
    )
    assert [o.placement for o in layout.overlays] == ["volume", "volume"]
    with pytest.raises(ValidationError, match="needs the volume bars"):
        ChartLayout.model_validate(
            {"volume": False, "overlays": [{"name": "volume_sma", "params": {"period": 20}}]}
        )


def test_limits_on_how_much_one_chart_shows() -> None:
    with pytest.raises(ValidationError, match="at most 3 items"):
        ChartLayout.model_validate({"panels": [{"name": "obv"}] * 4})
    with pytest.raises(ValidationError, match="Input should be 'web' or 'mobile'"):
        ChartLayout.model_validate({"size": "poster"})
    assert ChartLayout(size=ChartSize.MOBILE).pixels.height > ChartLayout().pixels.height


def test_the_digest_is_the_same_for_the_same_meaning() -> None:
    a = ChartLayout.model_validate({"overlays": [{"name": "bollinger", "params": {"period": 20}}]})
    b = ChartLayout.model_validate({"overlays": [{"name": "bollinger", "params": {"std": 2, "period": 20}}]})
    assert content_digest(a.model_dump(mode="json")) == content_digest(b.model_dump(mode="json"))
    c = ChartLayout.model_validate({"overlays": [{"name": "bollinger", "params": {"period": 21}}]})
    assert content_digest(a.model_dump(mode="json")) != content_digest(c.model_dump(mode="json"))


def test_the_chart_models_load_without_the_numeric_stack() -> None:
    code = "import sys, tekoa.charts.spec\nprint(' '.join(sys.modules))"
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()
    )
    assert "tekoa.charts.spec" in loaded
    assert not {"numpy", "matplotlib", "numba"} & loaded
