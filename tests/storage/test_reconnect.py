"""PostgreSQL dropped every connection (a restart, a failover, an idle timeout): the store
fails the calls that held one, at most one per pooled connection, and then works again on
new connections, without a restart of Strongroom."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.util import greenlet_spawn
from tests.storage.test_contract import ACCOUNT, REGION, T0, new_secret

from strongroom.storage.sql import SqlStore


def _terminate_connections(database_url: str, application: str) -> int:
    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = %s",
            (application,),
        ).fetchall()
    return len(rows)


def _failures_until_it_works(attempt: Callable[[], Any], tries: int = 5) -> int:
    for failures in range(tries):
        try:
            attempt()
        except psycopg.OperationalError:
            continue
        return failures
    raise AssertionError(f"still failing after {tries} tries")


def test_connections_the_database_dropped_are_replaced(
    postgres_store: SqlStore, postgres_database: str
) -> None:
    # A store of its own (the session's is migrated), its connections named so that only
    # they are dropped: its pools hold what this test made.
    application = f"reconnect-{uuid.uuid4().hex[:8]}"
    store = SqlStore.from_url(
        str(
            sa.engine.make_url(postgres_database).update_query_dict(
                {"application_name": application}
            )
        )
    )
    name = f"reconnect-{uuid.uuid4().hex[:8]}"
    try:
        with store.write() as tx:
            row = new_secret(tx, name)
            version = tx.insert_version(row.pk, "v".ljust(32, "x"), T0, b"sealed", "k")
            tx.set_labels(row.pk, {version.pk: ["AWSCURRENT"]})

        def read() -> None:  # the threads' autocommit pool
            with store.read() as tx:
                assert tx.secret_by_name(ACCOUNT, REGION, name) is not None

        def write() -> None:  # the transactions' pool
            with store.write() as tx:
                tx.update_secret(row.pk, description="still here")

        def awaited(lookup: Callable[[Any], Any]) -> Callable[[], None]:
            def on_the_loop() -> None:
                with store.read() as tx:
                    assert lookup(tx) is not None

            return lambda: asyncio.run(greenlet_spawn(on_the_loop))

        paths = {
            "read": read,
            "write": write,
            # DescribeSecret's kind of read on the loop, and GetSecretValue's batched lookup
            "awaited read": awaited(lambda tx: tx.secret_by_name(ACCOUNT, REGION, name)),
            "batched lookup": awaited(
                lambda tx: tx.staged_by_name(ACCOUNT, REGION, name, "AWSCURRENT")
            ),
        }
        for attempt in paths.values():
            attempt()  # each pool now holds one connection

        assert _terminate_connections(postgres_database, application) >= len(paths)
        failures = {path: _failures_until_it_works(attempt) for path, attempt in paths.items()}
        # The one connection each pool held fails one call at most; then a new one serves.
        assert all(count <= 1 for count in failures.values()), failures
        assert {path: _failures_until_it_works(a) for path, a in paths.items()} == dict.fromkeys(
            paths, 0
        )
    finally:
        store.close()
