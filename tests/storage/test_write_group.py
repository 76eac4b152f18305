"""``SqlStore.write_group``: several calls' writes in one transaction, committed once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.sqlite_store import migrated_sqlite_store

from strongroom.storage.sql import SqlStore, WriteGroupBroken


def _meta(store: SqlStore, key: str) -> str | None:
    with store.read() as tx:
        return tx.get_meta(key)


def _meta_elsewhere(store: SqlStore, key: str) -> str | None:
    """What a reader on another thread (another connection) sees."""
    seen: list[str | None] = []
    thread = threading.Thread(target=lambda: seen.append(_meta(store, key)))
    thread.start()
    thread.join(10)
    return seen[0]


def _failing_call(store: SqlStore, *, end_transaction: bool = False, **meta: str) -> None:
    with store.write() as tx:
        for key, value in meta.items():
            tx.set_meta(key, value)
        if end_transaction:
            tx.db.raw("ROLLBACK")
        raise RuntimeError("the call fails")


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_postgres_has_no_write_groups(store: SqlStore) -> None:
    # Its writers take row locks rather than one lock for the database, and it flushes
    # concurrent commits together itself.
    with pytest.raises(NotImplementedError), store.write_group():
        pass


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqlStore]:
    with migrated_sqlite_store(tmp_path / "group.db") as store:
        yield store


def test_calls_see_the_writes_before_them_and_nothing_is_visible_before_the_commit(
    sqlite_store: SqlStore,
) -> None:
    store = sqlite_store
    with store.write_group():
        with store.write() as tx:
            tx.set_meta("first", "1")
        with store.read() as tx:  # the next call reads inside the group
            assert tx.get_meta("first") == "1"
        with store.write() as tx:
            tx.set_meta("second", tx.get_meta("first") + "2")  # type: ignore[operator]
        assert _meta_elsewhere(store, "first") is None  # not committed yet
    assert _meta_elsewhere(store, "first") == "1"
    assert _meta_elsewhere(store, "second") == "12"


def test_a_failing_call_undoes_only_its_own_writes(sqlite_store: SqlStore) -> None:
    store = sqlite_store
    with store.write_group():
        with store.write() as tx:
            tx.set_meta("kept-before", "1")
        with pytest.raises(RuntimeError):
            _failing_call(store, undone="1", **{"kept-before": "changed"})
        with store.read() as tx:
            assert tx.get_meta("undone") is None
        with store.write() as tx:
            tx.set_meta("kept-after", "1")
    assert _meta(store, "kept-before") == "1"
    assert _meta(store, "undone") is None
    assert _meta(store, "kept-after") == "1"


def test_a_call_that_ends_the_transaction_breaks_the_group_and_nothing_is_kept(
    sqlite_store: SqlStore,
) -> None:
    # As SQLite does itself on a full disk or an I/O error: the savepoint is gone with the
    # transaction, so the calls before it cannot be kept apart from the failed one.
    store = sqlite_store

    def group() -> None:
        with store.write_group():
            with store.write() as tx:
                tx.set_meta("earlier-call", "1")
            with pytest.raises(RuntimeError):
                _failing_call(store, end_transaction=True)
            with pytest.raises(WriteGroupBroken):
                _failing_call(store)  # later calls of a broken group fail at once

    with pytest.raises(WriteGroupBroken):
        group()
    assert _meta(store, "earlier-call") is None
    with store.write() as tx:  # the store is usable again
        tx.set_meta("afterwards", "1")
    assert _meta(store, "afterwards") == "1"


def test_other_writers_wait_for_the_group(sqlite_store: SqlStore) -> None:
    store = sqlite_store
    done = threading.Event()

    def other_writer() -> None:
        with store.write() as tx:
            tx.set_meta("other", tx.get_meta("group") or "none")
        done.set()

    with store.write_group():
        with store.write() as tx:
            tx.set_meta("group", "1")
        thread = threading.Thread(target=other_writer)
        thread.start()
        assert not done.wait(0.3)  # held off by the group's write lock
    thread.join(10)
    assert _meta(store, "other") == "1"  # it ran after the group's commit, and saw it
