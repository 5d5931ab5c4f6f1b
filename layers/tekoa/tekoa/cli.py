"""Command line: `tekoa up`, `tekoa migrate`."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `tekoa` command."""
    raise SystemExit("not yet")
