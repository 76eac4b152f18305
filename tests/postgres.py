"""A PostgreSQL server for tests: ``TEST_POSTGRES_URL`` names it (CI sets it).

Without it the PostgreSQL cases skip with the reason, except under ``CI=true``, where they
fail: CI must never go green without having tested PostgreSQL.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from psycopg import sql

POSTGRES_ENV = "TEST_POSTGRES_URL"


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def _skip_or_fail(reason: str) -> None:
    if _in_ci():
        pytest.fail(f"CI=true, so the postgres backend must be tested, but {reason}")
    pytest.skip(reason)


def _server_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        _skip_or_fail(
            f"{POSTGRES_ENV} is not set (e.g. postgresql://postgres@127.0.0.1:5432/), "
            "so the postgres backend is not tested"
        )
    return str(url)


@contextlib.contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty database on the ``TEST_POSTGRES_URL`` server; its SQLAlchemy URL."""
    server = _server_url()
    name = f"strongroom_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(server, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        _skip_or_fail(f"{POSTGRES_ENV}={server} is unreachable: {exc}")
    with admin:
        _create_database(admin, name)
        try:
            yield (
                sa.engine.make_url(server)
                .set(drivername="postgresql+psycopg", database=name)
                .render_as_string(hide_password=False)
            )
        finally:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _create_database(admin: psycopg.Connection[Any], name: str) -> None:
    # Most real servers compare text with a linguistic collation (en_US: case-insensitive at
    # first, punctuation nearly ignored), not the C collation a bare test server often has;
    # ask for one, so that SQL which only works under C (prefix ranges, ordering) fails here.
    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    try:
        admin.execute(
            create + sql.SQL(" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'")
        )
    except psycopg.errors.ProgrammingError:  # before PostgreSQL 15, or built without ICU
        admin.execute(create)
