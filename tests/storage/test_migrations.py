"""Alembic migrations build exactly the schema that ``storage.schema`` describes.

The queries are built from ``schema.metadata`` while databases are built by the migrations,
so the two must agree: a column added to one and not the other would work in the tests that
create tables from the metadata and then break on a real, migrated installation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from strongroom.storage import migrate, schema
from strongroom.storage.base import SchemaTooNew

ALEMBIC_TABLE = "alembic_version"


def engine_for(url: str) -> sa.Engine:
    return sa.create_engine(url, poolclass=sa.pool.NullPool)


def _type(column: Any, dialect: sa.Dialect) -> str:
    # Compare what the database really stores (reflected types compiled by its dialect).
    return str(column["type"].compile(dialect=dialect))


def _default(column: Any) -> str | None:
    default = column.get("default")
    if default is None:
        return None
    # SQLite reflects '0' with its quotes; PostgreSQL adds casts such as 'Active'::character.
    return str(default).split("::")[0].strip("'")


def describe(engine: sa.Engine) -> dict[str, Any]:
    """Tables, columns, keys and indexes, as the database itself reports them."""
    with engine.connect() as conn:  # one connection for every reflection query
        return _describe(sa.inspect(conn), engine.dialect)


def _describe(inspector: sa.Inspector, dialect: sa.Dialect) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        if table == ALEMBIC_TABLE:
            continue
        found[table] = {
            "columns": {
                column["name"]: (
                    _type(column, dialect),
                    column["nullable"],
                    _default(column),
                )
                for column in inspector.get_columns(table)
            },
            "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
            "foreign_keys": sorted(
                (
                    tuple(fk["constrained_columns"]),
                    fk["referred_table"],
                    tuple(fk["referred_columns"]),
                    (fk.get("options") or {}).get("ondelete"),
                )
                for fk in inspector.get_foreign_keys(table)
            ),
            "unique": sorted(
                tuple(uc["column_names"]) for uc in inspector.get_unique_constraints(table)
            ),
            "indexes": sorted(
                (index["name"], tuple(index["column_names"]), bool(index["unique"]))
                for index in inspector.get_indexes(table)
                # PostgreSQL also lists the index behind each unique constraint.
                if not index.get("duplicates_constraint")
            ),
        }
    return found


def test_it_builds_the_tables_schema_py_describes(empty_database: Callable[[], str]):
    migrated, reference = engine_for(empty_database()), engine_for(empty_database())
    migrate.upgrade(migrated)
    schema.metadata.create_all(reference)

    got, expected = describe(migrated), describe(reference)

    assert sorted(got) == sorted(t.name for t in schema.metadata.sorted_tables)
    for table in expected:
        assert got[table] == expected[table], table


def test_it_names_the_same_indexes_as_schema_py(empty_database: Callable[[], str]):
    migrated = engine_for(empty_database())
    migrate.upgrade(migrated)
    got = describe(migrated)

    for table in schema.metadata.sorted_tables:
        wanted = {(index.name, tuple(c.name for c in index.columns)) for index in table.indexes}
        have = {(name, columns) for name, columns, _ in got[table.name]["indexes"]}
        assert wanted <= have, table.name


def test_it_leaves_the_database_at_the_head_revision(empty_database: Callable[[], str]):
    engine = engine_for(empty_database())
    assert migrate.current_revision(engine) is None

    migrate.upgrade(engine)

    head = ScriptDirectory.from_config(migrate._config()).get_current_head()
    assert head is not None
    assert migrate.current_revision(engine) == head


def test_upgrading_twice_changes_nothing_and_keeps_the_data(empty_database: Callable[[], str]):
    engine = engine_for(empty_database())
    migrate.upgrade(engine)
    before = describe(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(schema.meta).values(key="canary", value="still here"))

    migrate.upgrade(engine)

    assert describe(engine) == before
    with engine.connect() as conn:
        value = conn.scalar(sa.select(schema.meta.c.value).where(schema.meta.c.key == "canary"))
    assert value == "still here"


def test_it_refuses_a_database_migrated_by_a_newer_release(empty_database: Callable[[], str]):
    engine = engine_for(empty_database())
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'f00dfacef00d'"))

    with pytest.raises(SchemaTooNew, match="f00dfacef00d"):
        migrate.upgrade(engine)

    # Refusing must not have touched the schema or the stamp.
    assert migrate.current_revision(engine) == "f00dfacef00d"


def test_it_refuses_a_newer_database_before_creating_anything(empty_database: Callable[[], str]):
    # A database that only carries a newer stamp (say, a newer release's first migration
    # failed halfway) must not get our tables created next to whatever that release made.
    engine = engine_for(empty_database())
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
        conn.execute(sa.text("INSERT INTO alembic_version VALUES ('f00dfacef00d')"))

    with pytest.raises(SchemaTooNew):
        migrate.upgrade(engine)

    assert sa.inspect(engine).get_table_names() == [ALEMBIC_TABLE]
