"""The ``store`` fixture: every storage behaviour runs once per backend.

* ``sqlite``: a fresh database file per test, migrated with ``storage.migrate.upgrade``.
* ``postgres``: runs when ``TEST_POSTGRES_URL`` names a server (for example
  ``postgresql://postgres@127.0.0.1:5432/``). Each test session (each xdist worker) creates a
  database of its own there, migrates it once, and drops it at the end; tables are emptied
  between tests through a direct connection, not through a hook in production code. The
  migration tests get empty schemas in that database instead of new databases. Without
  the variable the postgres cases are skipped, except under ``CI=true``, where they fail:
  CI must never go green without having tested PostgreSQL.

A test that hits a known gap of the PostgreSQL backend says so with
``@pytest.mark.postgres_gap("why")``: its postgres case becomes a strict xfail, so it turns red
as soon as the gap is closed and the marker can go.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.postgres import fresh_postgres_database
from tests.sqlite_store import migrated_sqlite_store

from strongroom.storage import migrate, schema
from strongroom.storage.sql import SqlStore

BACKENDS = ("sqlite", "postgres")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "postgres_gap(reason): a known gap of the PostgreSQL backend; its postgres case is a "
        "strict xfail",
    )


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """This session's (this xdist worker's) own PostgreSQL database, dropped at the end."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def postgres_store(postgres_database: str) -> Iterator[SqlStore]:
    """The session database, migrated once; ``store`` empties it before each test."""
    store = SqlStore.from_url(postgres_database)
    try:
        migrate.upgrade(store.engine)
        yield store
    finally:
        store.close()


@contextlib.contextmanager
def fresh_postgres_schema(database_url: str) -> Iterator[str]:
    """A new, empty schema in the session database; a URL whose search_path is just that.

    Much quicker than CREATE DATABASE, and to the migrations it looks like an empty database.
    """
    name = f"empty_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
    try:
        yield (
            sa.engine.make_url(database_url)
            .update_query_dict({"options": f"-csearch_path={name}"})
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{name}" CASCADE')
        admin.dispose()


def _empty_postgres(store: SqlStore) -> None:
    # DELETE, children first: on tables this small it is far quicker than TRUNCATE.
    with store.engine.begin() as conn:
        for table in reversed(schema.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    gap = request.node.get_closest_marker("postgres_gap")
    if name == "postgres" and gap is not None:
        request.applymarker(pytest.mark.xfail(strict=True, reason=gap.args[0]))
    return name


@pytest.fixture
def store(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    """A migrated, empty store of the backend under test."""
    if backend == "sqlite":
        with migrated_sqlite_store(tmp_path / "contract.db") as sqlite_store:
            yield sqlite_store
        return
    postgres: SqlStore = request.getfixturevalue("postgres_store")
    _empty_postgres(postgres)
    yield postgres


@pytest.fixture
def empty_database(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[], str]]:
    """Makes databases with no tables at all (for the migration tests); gives their URLs."""
    with contextlib.ExitStack() as cleanup:

        def make() -> str:
            if backend == "sqlite":
                return f"sqlite:///{tmp_path / f'empty-{uuid.uuid4().hex[:8]}.db'}"
            database: str = request.getfixturevalue("postgres_database")
            return cleanup.enter_context(fresh_postgres_schema(database))

        yield make
