"""Lambda entry point that brings the database schema up to date and the workloads' logins in line.

CDK runs it on every deploy that changes it (a `triggers.Trigger` in the Data stack), after
the database and before the stacks whose code needs the new schema. `tekoa.db.migrate`
holds the advisory lock and applies each migration once, so a retried or concurrent run is
harmless; a failing migration fails the deploy and leaves the schema as it was. Then every
login the deploy declares (TEKOA_DATABASE_LOGINS) is made to match its secret.

The database may still be starting (a proxy created a moment ago, an Aurora instance resuming
from auto-pause): connections time out after TEKOA_DB_CONNECT_TIMEOUT_S and are retried until
shortly before the Lambda's own timeout.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic_settings import BaseSettings, SettingsConfigDict

from tekoa.aws.secrets import database_conninfo, secret_string
from tekoa.db.connection import retry_while_unreachable
from tekoa.db.logins import LoginSpec, provision_logins
from tekoa.db.migrate import migrate
from tekoa.observability import logger, tracer
from tekoa.settings import get_settings

# Stop retrying this long before the Lambda times out, so the failure is reported, not cut off.
_SAFETY_S = 20.0


class DeployedLogins(BaseSettings):
    """The logins the deploy declares, validated at cold start (a JSON list from the construct)."""

    model_config = SettingsConfigDict(env_prefix="TEKOA_", extra="ignore", frozen=True)

    database_logins: tuple[LoginSpec, ...] = ()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Apply every pending migration, then provision the logins; return what was done."""
    settings = get_settings()
    logins = DeployedLogins().database_logins
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - _SAFETY_S
    timeout_s = settings.db_connect_timeout_s
    applied = retry_while_unreachable(
        lambda: migrate(database_conninfo(settings), connect_timeout_s=timeout_s), deadline=deadline
    )
    logger.info("migrations applied", extra={"applied": applied})
    provisioned = retry_while_unreachable(
        lambda: provision_logins(
            database_conninfo(settings), logins, partial(secret_string, settings), connect_timeout_s=timeout_s
        ),
        deadline=deadline,
    )
    return {"applied": applied, "logins": provisioned}
