"""The `setup` part of `tekoa up` (runs once, and again after a part it needs restarted):
the embedded database created, migrations applied, the AWS resources provisioned."""

from __future__ import annotations

from psycopg.conninfo import conninfo_to_dict

from tekoa.db.migrate import migrate
from tekoa.local.aws import local_jwt_signing_key, provision, use_local_credentials
from tekoa.local.postgres import APP_DATABASE, EmbeddedPostgres, ensure_database
from tekoa.observability import logger
from tekoa.settings import get_settings


def main() -> None:
    """Bring the database and the AWS endpoint to what the other parts expect."""
    settings = get_settings()
    if settings.database_url is None:
        raise RuntimeError("setup needs DATABASE_URL (tekoa up sets it)")
    embedded = EmbeddedPostgres(settings.data_dir / "pgdata")
    if conninfo_to_dict(settings.database_url).get("host") == str(embedded.socket_dir):
        ensure_database(embedded.admin_conninfo, APP_DATABASE)
    applied = migrate(settings.database_url)
    logger.info("migrations", extra={"applied": applied})
    use_local_credentials()
    provision(settings, jwt_signing_key=local_jwt_signing_key(settings.data_dir))
