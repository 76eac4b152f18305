"""The database's clock (storage.clock): what nodes agree on for expiry, deletion and leases."""

from __future__ import annotations

import time

import pytest

from strongroom.storage.clock import DatabaseClock
from strongroom.storage.sql import SqlStore


def test_the_database_tells_the_time(store: SqlStore) -> None:
    before = time.time()
    told = store.database_time()
    after = time.time()
    # Same machine: the clocks agree to well within a second (the query's own time aside).
    assert before - 1 < told < after + 1


def test_the_clock_follows_the_database_not_this_machine(store: SqlStore) -> None:
    class AheadStore(SqlStore):
        """A database whose clock runs 100 s ahead of this machine's."""

        def database_time(self) -> float:
            return super().database_time() + 100

    ahead = AheadStore(store.engine)
    clock = DatabaseClock(ahead)
    now = clock()
    if store.engine.dialect.name == "sqlite":
        assert abs(now - time.time()) < 1  # embedded: this machine's clock is the database's
    else:
        assert 99 < now - time.time() < 101
        assert 99 < clock.offset < 101


def test_the_offset_is_measured_again_after_refresh(store: SqlStore) -> None:
    if store.engine.dialect.name == "sqlite":
        pytest.skip("an embedded database has no clock of its own: nothing is measured")
    calls = []

    class Counting(SqlStore):
        def database_time(self) -> float:
            calls.append(1)
            return super().database_time()

    clock = DatabaseClock(Counting(store.engine), refresh=0.2)
    for _ in range(5):
        clock()
    assert len(calls) == 1
    time.sleep(0.25)
    clock()
    assert len(calls) == 2
