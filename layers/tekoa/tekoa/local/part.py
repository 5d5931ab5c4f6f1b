"""Runs one part of `tekoa up` in this process: `python -m tekoa.local.part module:function`.

The process dies with the supervisor that started it (even if that one is killed with
SIGKILL), then calls the function; the supervisor tags and collects what it prints.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys

from tekoa.local.process import die_with_parent


def main(argv: list[str]) -> None:
    """Call the entry point `argv[0]` (`module:function`) of this part."""
    (entry,) = argv
    supervisor = os.environ.get("TEKOA_SUPERVISOR_PID")
    die_with_parent(signal.SIGTERM, expected_parent=int(supervisor) if supervisor else None)
    module_name, _, function_name = entry.partition(":")
    function = getattr(importlib.import_module(module_name), function_name)
    function()


if __name__ == "__main__":
    main(sys.argv[1:])
