"""The API's cold start: the strategy models, the indicator package and its catalogue load
without numpy or numba (the kernels load only when first used)."""

from __future__ import annotations

import subprocess
import sys


def modules_after_import(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint('\\n'.join(sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(result.stdout.split())


def test_strategy_models_and_catalogue_do_not_import_numpy_or_numba() -> None:
    loaded = modules_after_import(
        "import tekoa.strategies.models, tekoa.strategies.rules, tekoa.indicators, "
        "tekoa.indicators.catalogue, tekoa.patterns"
    )
    assert "tekoa.indicators.catalogue" in loaded
    assert not {"numpy", "numba", "pandas"} & loaded


def test_kernels_load_on_first_use_through_the_package() -> None:
    loaded = modules_after_import("import tekoa.indicators as ind\nind.rsi")
    assert {"numpy", "numba", "tekoa.indicators.kernels"} <= loaded
