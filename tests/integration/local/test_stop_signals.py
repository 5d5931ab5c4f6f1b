"""A part stops on SIGTERM/SIGINT however the signals fall: a burst of them never deadlocks it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

WAITING_PART = """
import sys, threading
from tekoa.local.process import stop_on_signals
stopping = threading.Event()
stop_on_signals(stopping.set)
print("ready", flush=True)
while not stopping.wait(0.0001):  # in and out of the event's lock all the time
    pass
print("stopped", flush=True)
"""


def test_a_burst_of_stop_signals_stops_a_waiting_part() -> None:
    # A handler that set the event itself deadlocked when a signal came while the main thread
    # held the event's lock (seen: the supervisor killed with -9 left the scheduler part
    # running). Many signals, many times, make that window likely to be hit.
    for _ in range(20):
        part = subprocess.Popen([sys.executable, "-c", WAITING_PART], stdout=subprocess.PIPE, text=True)
        assert part.stdout is not None and part.stdout.readline().strip() == "ready"
        for n in range(200):
            part.send_signal(signal.SIGTERM if n % 2 else signal.SIGINT)
            if part.poll() is not None:
                break
            time.sleep(0)
        try:
            out, _ = part.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            part.kill()
            raise AssertionError("the part did not stop: its signal handler deadlocked") from None
        # Signals still arriving while the interpreter exits meet the default handlers again.
        assert out.strip() == "stopped"
        assert part.returncode in (0, -signal.SIGTERM, -signal.SIGINT)
