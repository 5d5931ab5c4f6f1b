"""Child processes of the local platform die with the process that started them.

A part of `tekoa up` killed with SIGKILL cannot stop its children; if they lived on they would
hold the ports and the database, and the next start would find them in the way. Linux delivers
a signal to a process whose parent dies (`PR_SET_PDEATHSIG`); elsewhere a thread notices the
parent change and exits.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

_PR_SET_PDEATHSIG = 1
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def die_with_parent(sig: signal.Signals = signal.SIGTERM, expected_parent: int | None = None) -> None:
    """Have `sig` delivered to this process when its parent exits.

    Call it in the child (Linux keeps the setting across `exec` but drops it on a change of
    user id, so call it again after `setuid`). If the parent is already gone (it is not
    `expected_parent`, when given), `sig` is delivered at once.
    """
    parent = os.getppid() if expected_parent is None else expected_parent
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    else:
        threading.Thread(target=_watch_parent, args=(parent, sig), name="parent-watch", daemon=True).start()
    if os.getppid() != parent:  # the parent died before the setting took hold
        os.kill(os.getpid(), sig)


def _watch_parent(parent: int, sig: signal.Signals) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os.kill(os.getpid(), sig)


def stop_on_signals(stop: Callable[[], None]) -> dict[signal.Signals, Any]:
    """Call `stop` (in a thread of its own) when SIGTERM or SIGINT arrives; install from the main thread.

    A handler that sets a `threading.Event` itself can deadlock: Python runs it in the main
    thread between two bytecodes, possibly while that thread holds the event's lock (inside
    `Event.wait`, or inside the handler's own `set` when a second signal follows, as the
    supervisor's death and a stop together deliver). A part then never stops. The handler only
    writes a byte to a pipe, which takes no lock; a thread waiting on the pipe calls `stop`.
    Returns the handlers it replaced.
    """
    read_fd, write_fd = os.pipe()

    def relay() -> None:
        os.read(read_fd, 1)
        stop()

    def handler(signum: int, frame: FrameType | None) -> None:
        os.write(write_fd, b"\0")

    threading.Thread(target=relay, name="stop-signal", daemon=True).start()
    return {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
