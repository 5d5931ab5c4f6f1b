"""Lambda entry point that brings the database schema up to date.

CDK runs it on every deploy that changes it (a `triggers.Trigger` in the Data stack), after
the database and before the stacks whose code needs the new schema. `tekoa.db.migrate`
holds the advisory lock and applies each migration once, so a retried or concurrent run is
harmless; a failing migration fails the deploy and leaves the schema as it was.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from tekoa.aws.secrets import database_conninfo
from tekoa.db.migrate import migrate
from tekoa.observability import logger
from tekoa.settings import get_settings


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Apply every pending migration; return their names."""
    applied = migrate(database_conninfo(get_settings()))
    logger.info("migrations applied", extra={"applied": applied})
    return {"applied": applied}
