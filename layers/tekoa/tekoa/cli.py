"""Command line: `tekoa up` starts the local platform, `tekoa migrate` applies migrations,
`tekoa backtest` runs a strategy over history, `tekoa halt` / `tekoa resume` stop and restart
trading for every user (operators)."""

from __future__ import annotations

import argparse
import sys

from tekoa.backtest.cli import add_parser as add_backtest_parser
from tekoa.settings import Settings, SettingsError, get_settings


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `tekoa` command."""
    parser = argparse.ArgumentParser(prog="tekoa", description="Tekoa trading-bot platform")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start the whole platform locally (embedded defaults)")
    commands.add_parser("migrate", help="apply pending database migrations (DATABASE_URL)")
    halt = commands.add_parser(
        "halt", help="halt trading for every user (operators; DATABASE_URL or tekoa up's)"
    )
    halt.add_argument("--reason", required=True, help="why (users see it on GET /v1/risk)")
    commands.add_parser("resume", help="let every user trade again after `tekoa halt`")
    add_backtest_parser(commands)
    args = parser.parse_args(argv)
    if args.command == "backtest":
        return int(args.handler(args))

    try:
        settings = get_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2

    if args.command == "up":
        from tekoa.local.platform import StartupError, up

        try:
            up(settings)
        except StartupError as exc:
            print(f"tekoa up: {exc}", file=sys.stderr)
            return 1
        return 0

    if args.command in ("halt", "resume"):
        return _platform_switch(settings, args)

    from tekoa.db.migrate import migrate

    if settings.database_url is None:
        print(
            "tekoa migrate: set DATABASE_URL (tekoa up migrates its embedded database itself)",
            file=sys.stderr,
        )
        return 2
    applied = migrate(settings.database_url)
    print("applied: " + ", ".join(applied) if applied else "database is up to date")
    return 0


def _platform_switch(settings: Settings, args: argparse.Namespace) -> int:
    from tekoa.db.connection import PooledDatabase
    from tekoa.domain.execution import TradingState
    from tekoa.local.platform import local_database_url
    from tekoa.services.risk import set_platform_state

    url = settings.database_url or local_database_url(settings)
    database = PooledDatabase(url, max_size=1)
    try:
        if args.command == "halt":
            set_platform_state(database, TradingState.HALTED, reason=f"platform halted: {args.reason}")
            print(f"trading halted for every user: {args.reason}")
        else:
            set_platform_state(database, TradingState.ACTIVE, reason=None)
            print("trading resumed")
    finally:
        database.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
