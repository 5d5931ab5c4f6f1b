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

_PR_SET_PDEATHSIG = 1


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
