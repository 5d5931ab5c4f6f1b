"""Command line: `tekoa up` starts the local platform, `tekoa migrate` applies migrations,
`tekoa backtest` runs a strategy over history."""

from __future__ import annotations

import argparse
import sys

from tekoa.backtest.cli import add_parser as add_backtest_parser
from tekoa.settings import SettingsError, get_settings


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `tekoa` command."""
    parser = argparse.ArgumentParser(prog="tekoa", description="Tekoa trading-bot platform")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start the whole platform locally (embedded defaults)")
    commands.add_parser("migrate", help="apply pending database migrations (DATABASE_URL)")
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


if __name__ == "__main__":
    sys.exit(main())
