"""Sign-in throttling policy: how many failures, within what window, per account and address."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class ThrottlePolicy:
    """At most `max_per_account` failures per email and `max_per_address` per client address
    within `window`; one more attempt is refused until the oldest counted failure ages out.
    Sign-ups: at most `max_signups_per_address` per client address within `signup_window`."""

    window: timedelta = timedelta(minutes=15)
    max_per_account: int = 5
    max_per_address: int = 20
    signup_window: timedelta = timedelta(hours=1)
    max_signups_per_address: int = 10


def retry_after_s(blocking_failure_at: datetime | None, window: timedelta, now: datetime) -> int | None:
    """Seconds until the failure that keeps a counter at its limit leaves the window.

    `blocking_failure_at` is the limit-th newest failure within the window (None when fewer
    failures were counted): once it ages out, the counter is below its limit again.
    """
    if blocking_failure_at is None:
        return None
    remaining = (blocking_failure_at + window - now).total_seconds()
    return max(1, math.ceil(remaining))
