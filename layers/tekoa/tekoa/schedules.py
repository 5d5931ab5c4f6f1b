"""Scheduled work of the platform: one table shared by the CDK app and the local scheduler.

Each entry names the Lambda handler EventBridge invokes and how often. In AWS a CDK construct
turns an entry into a schedule rule targeting its function; locally the `scheduler` part of
`tekoa up` fires the same handler with the same event. Adding scheduled work is one line here
(and, in AWS, the construct of the function that runs it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNITS = {"minute": 60, "hour": 3600, "day": 86400}


@dataclass(frozen=True, slots=True)
class Schedule:
    """`handler` (`module.path.function`) runs every `rate` (an EventBridge rate expression)."""

    name: str
    rate: str
    handler: str
    description: str

    @property
    def period(self) -> timedelta:
        """The time between two runs."""
        match = _RATE.match(self.rate)
        if match is None:
            raise ValueError(f"schedule {self.name!r}: {self.rate!r} is not an EventBridge rate(N unit)")
        count, unit = int(match[1]), match[2].rstrip("s")
        if count < 1 or (count == 1) != (match[2] == unit):
            raise ValueError(
                f"schedule {self.name!r}: {self.rate!r} (EventBridge wants 'rate(1 hour)', 'rate(2 hours)')"
            )
        return timedelta(seconds=count * _UNITS[unit])


SCHEDULES: tuple[Schedule, ...] = (
    # Every minute: each running bot is due on its timeframe's newest closed candle (the
    # candle.closed rule usually got there first; then this tick finds nothing due).
    Schedule(
        "evaluate",
        "rate(1 minute)",
        "functions.evaluator.handler.handler",
        "Evaluate running bots on their newest closed candle",
    ),
    # Daily: the rows it deletes only take space (they no longer count for anything), and each
    # run wakes a paused dev database (see `make cost`).
    Schedule(
        "maintenance",
        "rate(1 day)",
        "functions.maintenance.handler.handler",
        "Purge expired idempotency keys and sign-in and sign-up attempts past their window",
    ),
    # Every minute while orders can trade; a deployment without the market stream (nothing
    # trades) runs it as rarely as the gap repair instead (`infra.config.StageConfig`).
    Schedule(
        "reconcile",
        "rate(1 minute)",
        "functions.reconciler.handler.handler",
        "Reconcile ledgers, live orders and balances; send stuck orders; sweep resting paper orders",
    ),
    Schedule(
        "notify-daily-summary",
        "rate(1 day)",
        "functions.notify.handler.handler",
        "Tell the channels that chose it what each user's trading did in the last 24 hours",
    ),
)


def schedule(name: str) -> Schedule:
    """The schedule called `name`."""
    for entry in SCHEDULES:
        if entry.name == name:
            return entry
    raise KeyError(name)
