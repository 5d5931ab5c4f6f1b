"""The decision core runs anywhere: importing the engine, the backtester, the fill model and
the domain types loads no database, AWS, exchange, LLM or web client (the evaluator and the
paper broker import them in their own processes)."""

from __future__ import annotations

import subprocess
import sys

IO_CLIENTS = {"psycopg", "psycopg_pool", "boto3", "botocore", "ccxt", "anthropic", "fastapi"}


def test_the_engine_and_backtester_import_no_io_client() -> None:
    code = (
        "import sys\n"
        "import tekoa.engine, tekoa.backtest.runner, tekoa.backtest.cli\n"
        "import tekoa.execution, tekoa.execution.fills, tekoa.domain.orders, tekoa.domain.trading\n"
        "print('\\n'.join(sys.modules))"
    )
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()
    )

    assert "tekoa.engine" in loaded
    assert not IO_CLIENTS & loaded
