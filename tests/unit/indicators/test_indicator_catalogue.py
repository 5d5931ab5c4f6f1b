"""The catalogue is the one declaration the rule language and the dispatcher share."""

from __future__ import annotations

from typing import get_args

import numpy as np
import pytest

from tekoa.indicators import kernels
from tekoa.indicators.catalogue import INDICATORS, PeriodParams, SourcedPeriodParams
from tekoa.indicators.compute import compute
from tekoa.strategies.rules import INDICATOR_NAMES, IndicatorRef
from tests.unit.indicators.series import random_walk

REFS = get_args(get_args(IndicatorRef)[0])


def test_catalogue_names_are_the_rule_language_names_in_order() -> None:
    assert tuple(INDICATORS) == INDICATOR_NAMES


@pytest.mark.parametrize("ref", REFS, ids=lambda ref: ref.__name__)
def test_each_reference_uses_the_catalogue_params_and_outputs(ref: type) -> None:
    name = get_args(ref.model_fields["name"].annotation)[0]  # type: ignore[attr-defined]
    spec = INDICATORS[name]
    assert ref.model_fields["params"].annotation is spec.params  # type: ignore[attr-defined]
    outputs = get_args(ref.model_fields["output"].annotation)  # type: ignore[attr-defined]
    assert outputs == spec.outputs


def test_compute_rejects_unknown_names_and_params_of_another_indicator() -> None:
    frame = random_walk(50, seed=2)
    with pytest.raises(KeyError, match="unknown indicator 'nope'"):
        compute("nope", PeriodParams(period=3), frame)
    with pytest.raises(TypeError, match="macd takes MacdParams, not PeriodParams"):
        compute("macd", PeriodParams(period=3), frame)


def test_compute_returns_arrays_aligned_with_the_frame_and_reads_columns_in_place() -> None:
    frame = random_walk(120, seed=3)
    outputs = compute("highest", SourcedPeriodParams(period=1, source="high"), frame)
    np.testing.assert_array_equal(outputs["value"], frame.high)
    for name, spec in INDICATORS.items():
        params = (
            spec.params() if name in ("obv", "macd", "bollinger", "stochastic") else spec.params(period=5)
        )
        result = compute(name, params, frame)
        assert set(result) == set(spec.outputs)
        assert all(series.shape == (len(frame),) and series.dtype == np.float64 for series in result.values())


def test_kernels_refuse_periods_below_one() -> None:
    close = np.linspace(1.0, 2.0, 10)
    with pytest.raises(ValueError, match="period must be at least 1"):
        kernels.rsi(close, 0)
    with pytest.raises(ValueError, match=r"slow \(5\) must be longer than fast"):
        kernels.macd(close, 5, 5, 3)


def test_bollinger_percent_b_is_half_where_the_bands_collapse() -> None:
    frame = random_walk(60, seed=4, flat_runs=False)
    flat = frame.take(slice(0, 60))
    for column in (flat.open, flat.high, flat.low, flat.close):
        column[:] = 5.0  # sixty identical candles
    outputs = compute("bollinger", INDICATORS["bollinger"].params(period=20), flat)
    assert outputs["width"][-1] == 0.0
    assert outputs["percent_b"][-1] == 0.5
