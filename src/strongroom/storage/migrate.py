"""Bring a database to the schema this Strongroom knows, with Alembic.

Alembic is imported only when a migration check runs: worker processes of a multi-process
server skip the check (their parent made it), and so never pay its memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from strongroom.storage.base import SchemaTooNew

if TYPE_CHECKING:
    from alembic.config import Config


# An arbitrary constant: the advisory lock every Strongroom node takes to migrate.
_MIGRATION_LOCK = 0x5354524F4E47  # "STRONG"


def _config() -> Config:
    from alembic.config import Config  # noqa: PLC0415 - see the module docstring

    config = Config()
    config.set_main_option("script_location", "strongroom.storage:migrations")
    return config


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext  # noqa: PLC0415

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> None:
    """Apply every migration not yet applied; refuse a database migrated by a newer release."""
    from alembic import command  # noqa: PLC0415
    from alembic.script import ScriptDirectory  # noqa: PLC0415

    config = _config()
    script = ScriptDirectory.from_config(config)
    revision = current_revision(engine)
    known = {rev.revision for rev in script.walk_revisions()}
    if revision is not None and revision not in known:
        raise SchemaTooNew(
            f"the database is at schema revision {revision}, which this Strongroom does not "
            "know: it was migrated by a newer release"
        )
    if revision == script.get_current_head():
        return
    from alembic.runtime.migration import MigrationContext  # noqa: PLC0415

    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Nodes starting together on an older schema: one migrates, the others wait here
            # and then find the work done (SQLite's writers are serialised already).
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
            if MigrationContext.configure(conn).get_current_revision() == script.get_current_head():
                return
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
