"""`tekoa backtest`: run a strategy file over a CSV of candles or over stored candles.

    tekoa backtest --strategy FILE.json --data FILE.csv [--cash 10000] [--fee-pct 0.1] [--json-out FILE]
                   [--chart-out FILE.png [--chart-style light|dark]]
    tekoa backtest --strategy FILE.json --exchange X --symbol S --timeframe T --start D --end D ...

The strategy file holds a strategy definition as the API accepts it
(`{"kind": "rules", "rules": {...}}` or `{"kind": "builtin", "bot_type": ..., "params": ...}`).
The CSV has the columns `timestamp,open,high,low,close,volume`, timestamp in ms. The exchange
form reads the candle store (DATABASE_URL, or the embedded database `tekoa up` keeps under
TEKOA_DATA_DIR). Bad input prints one clear line and exits with status 2.

This module is the backtester's edge: the only part of `tekoa.backtest` that reads files and
the database.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tekoa.backtest.runner import BacktestResult
    from tekoa.domain.timeframes import Timeframe
    from tekoa.market.frame import CandleFrame
    from tekoa.strategies.models import StrategyDefinition

PROGRESS_FROM_BARS = 100_000
"""Runs over at least this many bars show a progress bar."""
PAGE = 50_000


class UsageError(Exception):
    """Input the command cannot use; its message is printed as is."""


def add_parser(commands: Any) -> None:
    """Register `backtest` on the `tekoa` command's subparsers."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "backtest",
        help="backtest a strategy file over a CSV of candles or stored candles",
        description="Backtest a strategy definition (JSON, as the API accepts it) over candles.",
    )
    parser.add_argument("--strategy", required=True, type=Path, help="strategy definition (JSON file)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--data", type=Path, help="CSV: timestamp,open,high,low,close,volume (timestamp in ms)"
    )
    source.add_argument(
        "--exchange", help="read stored candles of this exchange (with --symbol, --start, --end)"
    )
    parser.add_argument("--symbol", help="market symbol, e.g. BTC/USDT (with --exchange)")
    parser.add_argument("--timeframe", help="candle timeframe (default: the strategy's)")
    parser.add_argument("--start", help="first candle (with --exchange): YYYY-MM-DD[THH:MM] UTC or ms")
    parser.add_argument("--end", help="end, exclusive (with --exchange): YYYY-MM-DD[THH:MM] UTC or ms")
    parser.add_argument("--cash", type=float, default=10_000.0, help="starting cash in quote currency")
    parser.add_argument("--fee-pct", type=float, default=0.1, help="fee per fill, percent of notional")
    parser.add_argument(
        "--slippage-pct", type=float, default=0.0, help="slippage of market/stop fills, percent"
    )
    parser.add_argument("--json-out", type=Path, help="write trades, equity and metrics here as JSON")
    parser.add_argument(
        "--chart-out", type=Path, help="draw the equity curve with its drawdown into this PNG"
    )
    parser.add_argument("--chart-style", choices=("light", "dark"), default="light", help="chart colours")
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    """Run the command; 0 on success, 2 on bad input."""
    try:
        strategy = _read_strategy(args.strategy)
        result = _run(args, strategy)
    except UsageError as exc:
        print(f"tekoa backtest: {exc}", file=sys.stderr)
        return 2
    _print_summary(result)
    if args.json_out is not None:
        args.json_out.write_text(json.dumps(result.to_json()))
        print(f"wrote {args.json_out}")
    if args.chart_out is not None:
        _write_chart(result, args.chart_out, args.chart_style, args.strategy)
        print(f"wrote {args.chart_out}")
    return 0


def _write_chart(result: BacktestResult, path: Path, style: str, strategy_file: Path) -> None:
    from tekoa.charts.render import render_equity
    from tekoa.charts.spec import ChartStyle

    title = f"Backtest · {strategy_file.stem} · {result.timeframe}"
    chart = render_equity(result.open_time, result.equity, title=title, style=ChartStyle(style))
    path.write_bytes(chart.png)


def _read_strategy(path: Path) -> StrategyDefinition:
    from pydantic import ValidationError

    from tekoa.strategies.models import parse_strategy

    try:
        text = path.read_text()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path} is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    try:
        return parse_strategy(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise UsageError(f"{path}: invalid strategy at {where}: {first['msg']}{more}") from None


def _timeframe(args: argparse.Namespace, strategy: StrategyDefinition) -> Timeframe:
    from tekoa.domain.timeframes import Timeframe
    from tekoa.strategies.models import strategy_timeframe

    primary = strategy_timeframe(strategy)
    if args.timeframe is None:
        return primary
    try:
        given = Timeframe(args.timeframe)
    except ValueError:
        names = ", ".join(t.value for t in Timeframe)
        raise UsageError(f"unknown timeframe {args.timeframe!r} (one of {names})") from None
    if given is not primary:
        raise UsageError(f"the strategy runs on {primary} candles, not {given}")
    return given


def _run(args: argparse.Namespace, strategy: StrategyDefinition) -> BacktestResult:
    from tekoa.backtest.data import UnusableData, market_data, timeframes_needed
    from tekoa.backtest.runner import run_backtest
    from tekoa.execution.fills import Costs
    from tekoa.market.frame import CandleFrame, FrameError

    timeframe = _timeframe(args, strategy)
    if args.data is not None:
        try:
            frames = {timeframe: CandleFrame.from_csv(args.data, timeframe)}
        except FileNotFoundError:
            raise UsageError(f"no such file: {args.data}") from None
        except FrameError as exc:
            raise UsageError(str(exc)) from None
    else:
        frames = _stored_frames(args, timeframes_needed(strategy))
    try:
        data = market_data(strategy, frames)
        costs = Costs.from_pct(args.fee_pct, slippage_pct=args.slippage_pct)
    except (UnusableData, ValueError) as exc:
        raise UsageError(str(exc)) from None
    if args.cash <= 0:
        raise UsageError("--cash must be positive")
    bars = len(data.frame(timeframe))
    if bars < PROGRESS_FROM_BARS:
        return run_backtest(strategy, data, cash=args.cash, costs=costs)
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task(f"backtest {bars:,} bars", total=bars)
        return run_backtest(
            strategy,
            data,
            cash=args.cash,
            costs=costs,
            progress=lambda done, _total: bar.update(task, completed=done),
        )


def _instant(text: str | None, flag: str) -> int:
    if text is None:
        raise UsageError(f"{flag} is required with --exchange")
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{flag} {text!r} is neither ms nor YYYY-MM-DD[THH:MM]") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _stored_frames(args: argparse.Namespace, timeframes: list[Timeframe]) -> dict[Timeframe, CandleFrame]:
    """Every timeframe the strategy reads, from the candle store, in [start, end)."""
    import psycopg

    from tekoa.db.candles import read_candles
    from tekoa.db.connection import connect, service_transaction
    from tekoa.market.frame import CandleFrame
    from tekoa.settings import SettingsError, get_settings

    if not args.symbol:
        raise UsageError("--symbol is required with --exchange")
    start, end = _instant(args.start, "--start"), _instant(args.end, "--end")
    if start >= end:
        raise UsageError("--start must be before --end")
    try:
        settings = get_settings()
    except SettingsError as exc:
        raise UsageError(str(exc)) from None
    postgres = None
    conninfo = settings.database_url
    if conninfo is None:
        from tekoa.local.postgres import APP_DATABASE, EmbeddedPostgres, ensure_database

        postgres = EmbeddedPostgres(settings.data_dir / "pgdata")
        conninfo = ensure_database(postgres.start(), APP_DATABASE)
    frames: dict[Timeframe, CandleFrame] = {}
    try:
        with connect(conninfo) as conn, service_transaction(conn):
            for timeframe in timeframes:
                candles = []
                after: int | None = None
                while True:
                    page = read_candles(
                        conn, args.exchange, args.symbol, timeframe,
                        start_ms=start, end_ms=end, limit=PAGE, after_open_time=after,
                    )  # fmt: skip
                    candles.extend(page)
                    if len(page) < PAGE:
                        break
                    after = page[-1].open_time
                frames[timeframe] = CandleFrame.from_candles(timeframe, candles)
    except psycopg.Error as exc:
        raise UsageError(f"cannot read stored candles: {str(exc).strip()}") from None
    finally:
        if postgres is not None:
            postgres.stop()
    primary = timeframes[0]
    if not len(frames[primary]):
        raise UsageError(f"no stored {primary} candles of {args.exchange} {args.symbol} in that range")
    return frames


def _print_summary(result: BacktestResult) -> None:
    from rich.console import Console
    from rich.table import Table

    m = result.metrics

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:,.2f} %"

    def num(value: float | None, digits: int = 2) -> str:
        return "-" if value is None else f"{value:,.{digits}f}"

    start = datetime.fromtimestamp(int(result.open_time[0]) / 1000, UTC).strftime("%Y-%m-%d %H:%M")
    end = datetime.fromtimestamp(int(result.open_time[-1]) / 1000, UTC).strftime("%Y-%m-%d %H:%M")
    print(f"backtest over {result.open_time.shape[0]:,} {result.timeframe} bars, {start} .. {end} UTC")
    table = Table()
    table.add_column("metric")
    table.add_column("value", justify="right")
    days = None if m.average_duration_ms is None else m.average_duration_ms / 86_400_000
    rows = [
        ("starting cash", num(result.starting_cash)),
        ("final equity", num(m.final_equity)),
        ("total return", pct(m.total_return_pct)),
        ("CAGR", pct(m.cagr_pct)),
        ("max drawdown", pct(m.max_drawdown_pct)),
        ("Sharpe", num(m.sharpe)),
        ("Sortino", num(m.sortino)),
        ("Calmar", num(m.calmar)),
        ("trades", str(m.trades)),
        ("win rate", pct(m.win_rate_pct)),
        ("profit factor", num(m.profit_factor)),
        ("expectancy", num(m.expectancy)),
        ("exposure", pct(m.exposure_pct)),
        (
            "average duration",
            "-" if days is None else f"{days:,.2f} days ({m.average_duration_bars:,.1f} bars)",
        ),
        ("fees", num(m.fees)),
    ]
    for name, value in rows:
        table.add_row(name, value)
    Console().print(table)
    if result.open_position is not None:
        position = result.open_position
        print(f"open at the end: {position['side']} {position['quantity']} @ {position['average_entry']}")
