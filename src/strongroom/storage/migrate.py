"""Bring a database to the schema this Strongroom knows, with Alembic."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from strongroom.storage.base import SchemaTooNew


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", "strongroom.storage:migrations")
    return config


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> None:
    """Apply every migration not yet applied; refuse a database migrated by a newer release."""
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
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
