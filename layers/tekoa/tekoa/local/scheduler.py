"""The `scheduler` part of `tekoa up`: fires handlers as EventBridge schedules invoke Lambdas.

Every entry of `tekoa.schedules.SCHEDULES` runs at each multiple of its period (rate(1 minute):
at every whole minute), in this process, with an EventBridge "Scheduled Event" and a Lambda
context, exactly as AWS calls the function. Each schedule has its own worker thread (its own
"function"): a slow handler delays only its own schedule, and a run still going when the next
is due makes that one be skipped with a warning rather than pile up.
"""

from __future__ import annotations

import importlib
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tekoa.local.process import stop_on_signals
from tekoa.observability import logger
from tekoa.schedules import SCHEDULES, Schedule
from tekoa.settings import Settings, get_settings

LOCAL_ACCOUNT = "000000000000"
_TIMEOUT_MS = 15 * 60 * 1000


@dataclass
class LocalLambdaContext:
    """The Lambda context object a handler gets (the fields Powertools and handlers read)."""

    function_name: str
    invoked_function_arn: str
    aws_request_id: str
    memory_limit_in_mb: int = 1024
    function_version: str = "$LATEST"
    log_group_name: str = "local"
    log_stream_name: str = "local"
    deadline_ms: int = 0

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.deadline_ms - int(time.time() * 1000))


def scheduled_event(schedule: Schedule, settings: Settings, at: datetime) -> dict[str, Any]:
    """The event EventBridge sends for a schedule rule firing at `at`."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": LOCAL_ACCOUNT,
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": settings.aws_region,
        "resources": [
            f"arn:aws:events:{settings.aws_region}:{LOCAL_ACCOUNT}:rule/{rule_name(schedule, settings)}"
        ],
        "detail": {},
    }


def rule_name(schedule: Schedule, settings: Settings) -> str:
    """The schedule rule's name (the CDK app names it the same)."""
    return f"tekoa-{settings.stage}-{schedule.name}"


def invoke(schedule: Schedule, settings: Settings, at: datetime) -> Any:
    """Call the schedule's handler once, as EventBridge → Lambda would."""
    module_name, _, function_name = schedule.handler.rpartition(".")
    handler: Callable[[dict[str, Any], Any], Any] = getattr(
        importlib.import_module(module_name), function_name
    )
    name = rule_name(schedule, settings)
    context = LocalLambdaContext(
        function_name=name,
        invoked_function_arn=f"arn:aws:lambda:{settings.aws_region}:{LOCAL_ACCOUNT}:function:{name}",
        aws_request_id=str(uuid.uuid4()),
        deadline_ms=int(time.time() * 1000) + _TIMEOUT_MS,
    )
    return handler(scheduled_event(schedule, settings, at), context)


def next_run(schedule: Schedule, now: float) -> float:
    """The next multiple of the schedule's period after `now` (seconds since the epoch)."""
    period = schedule.period.total_seconds()
    return (now // period + 1) * period


class Scheduler:
    """Fires `schedules` until `stop()`; `clock` is seconds since the epoch."""

    def __init__(
        self,
        schedules: Sequence[Schedule],
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        fire: Callable[[Schedule, Settings, datetime], Any] = invoke,
    ) -> None:
        self.schedules = schedules
        self.settings = settings
        self.clock = clock
        self.fire = fire
        self._stop = threading.Event()
        self._busy = {schedule.name: threading.Lock() for schedule in schedules}

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        """Block, firing each schedule at its times, until `stop()`."""
        due = {schedule.name: next_run(schedule, self.clock()) for schedule in self.schedules}
        while not self._stop.is_set():
            now = self.clock()
            for schedule in self.schedules:
                if now >= due[schedule.name]:
                    due[schedule.name] = next_run(schedule, now)
                    self._start(schedule, datetime.fromtimestamp(now, UTC))
            self._stop.wait(max(0.0, min(min(due.values()) - self.clock(), 1.0)))

    def _start(self, schedule: Schedule, at: datetime) -> None:
        busy = self._busy[schedule.name]
        if not busy.acquire(blocking=False):
            logger.warning("previous run still going; this one is skipped", extra={"schedule": schedule.name})
            return

        def run() -> None:
            try:
                result = self.fire(schedule, self.settings, at)
                logger.info("scheduled run done", extra={"schedule": schedule.name, "result": result})
            except Exception:
                logger.exception("scheduled run failed", extra={"schedule": schedule.name})
            finally:
                busy.release()

        threading.Thread(target=run, name=f"schedule:{schedule.name}", daemon=True).start()


def main() -> None:
    """Entry point of the `scheduler` part: every schedule of the platform, until SIGTERM."""
    settings = get_settings()
    scheduler = Scheduler(SCHEDULES, settings)
    stop_on_signals(scheduler.stop)
    logger.info("scheduler started", extra={"schedules": [s.name for s in SCHEDULES]})
    scheduler.run()
