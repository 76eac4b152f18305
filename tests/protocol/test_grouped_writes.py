"""``GroupedWrites``: write calls that queue meanwhile share one transaction and one COMMIT,
and each caller gets its own answer only once that COMMIT is done."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from tests.sqlite_store import migrated_sqlite_store

from strongroom.protocol.grouped_writes import GroupedWrites
from strongroom.storage.sql import SqlStore, WriteGroup, WriteGroupBroken


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    with migrated_sqlite_store(tmp_path / "grouped.db") as store:
        yield store


class Groups:
    """The store's write groups, counted as they commit."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.committed = 0

    @contextmanager
    def __call__(self) -> Iterator[WriteGroup]:
        with self.store.write_group() as group:
            yield group
        self.committed += 1


def _set(store: SqlStore, key: str, *, first: threading.Event | None = None) -> Any:
    def call() -> str:
        if first is not None:
            first.wait(10)  # holds the group open while the others queue
        with store.write() as tx:
            tx.set_meta(key, key)
        return f"wrote {key}"

    return call


def _fail(store: SqlStore, key: str) -> Any:
    def call() -> str:
        with store.write() as tx:
            tx.set_meta(key, key)
            raise LookupError(f"{key} failed")

    return call


def _meta(store: SqlStore, key: str) -> str | None:
    with store.read() as tx:
        return tx.get_meta(key)


def test_calls_queued_while_a_group_runs_are_committed_together(store: SqlStore) -> None:
    groups = Groups(store)
    writes = GroupedWrites(groups)
    release = threading.Event()

    async def main() -> list[Any]:
        first = asyncio.ensure_future(writes.run(_set(store, "a", first=release)))
        await asyncio.sleep(0.05)  # "a" runs, alone in the first group, and waits
        rest = [
            asyncio.ensure_future(writes.run(call))
            for call in (_set(store, "b"), _fail(store, "c"), _set(store, "d"))
        ]
        await asyncio.sleep(0.05)
        assert not any(f.done() for f in rest)
        release.set()
        return await asyncio.gather(first, *rest, return_exceptions=True)

    a, b, c, d = asyncio.run(main())
    assert (a, b, d) == ("wrote a", "wrote b", "wrote d")
    assert isinstance(c, LookupError)  # its caller alone hears of its failure
    assert groups.committed == 2  # "a" alone, then b, c and d in one transaction
    assert [_meta(store, k) for k in "abcd"] == ["a", "b", None, "d"]


def test_no_caller_is_answered_before_its_group_commits(store: SqlStore) -> None:
    seen_by_others: list[str | None] = []

    @contextmanager
    def group() -> Iterator[WriteGroup]:
        with store.write_group() as opened:
            yield opened
            # The calls are done but the COMMIT is not: another connection sees nothing yet.
            reader = threading.Thread(target=lambda: seen_by_others.append(_meta(store, "x")))
            reader.start()
            reader.join(10)

    writes = GroupedWrites(group)

    async def main() -> str:
        result: str = await writes.run(_set(store, "x"))
        assert _meta(store, "x") == "x"  # answered: committed
        return result

    assert asyncio.run(main()) == "wrote x"
    assert seen_by_others == [None]


def test_when_a_group_cannot_commit_every_call_of_it_fails_and_nothing_is_kept(
    store: SqlStore,
) -> None:
    writes = GroupedWrites(store.write_group)

    def ends_the_transaction() -> None:
        with store.write() as tx:
            tx.db.raw("ROLLBACK")  # as SQLite does itself on a full disk or an I/O error
            raise OSError("disk full")

    release = threading.Event()

    async def main() -> list[Any]:
        first = asyncio.ensure_future(writes.run(_set(store, "first", first=release)))
        await asyncio.sleep(0.05)
        group = [
            asyncio.ensure_future(writes.run(call))
            for call in (_set(store, "before"), ends_the_transaction, _set(store, "after"))
        ]
        await asyncio.sleep(0.05)
        release.set()
        return await asyncio.gather(first, *group, return_exceptions=True)

    first, before, broken, after = asyncio.run(main())
    assert first == "wrote first"  # its own group committed
    assert all(isinstance(r, WriteGroupBroken) for r in (before, broken, after))
    assert [_meta(store, k) for k in ("first", "before", "after")] == ["first", None, None]


class _NotAnException(BaseException):
    """What a call may raise beyond Exception (as SystemExit and KeyboardInterrupt are)."""


def test_a_call_raising_beyond_exception_fails_its_group_and_the_queue_never_hangs(
    store: SqlStore,
) -> None:
    writes = GroupedWrites(store.write_group)
    release = threading.Event()

    def escapes() -> None:
        release.wait(10)
        with store.write() as tx:
            tx.set_meta("escaped", "1")
        raise _NotAnException

    async def main() -> list[Any]:
        first = asyncio.ensure_future(writes.run(escapes))
        await asyncio.sleep(0.05)
        queued = asyncio.ensure_future(writes.run(_set(store, "queued")))
        await asyncio.sleep(0.05)
        release.set()
        done = await asyncio.wait_for(
            asyncio.gather(first, queued, return_exceptions=True), timeout=10
        )
        # And the next call is served by a new group.
        return [*done, await writes.run(_set(store, "later"))]

    first, queued, later = asyncio.run(main())
    assert isinstance(first, _NotAnException)
    assert isinstance(queued, _NotAnException)  # answered, not left waiting
    assert later == "wrote later"
    assert [_meta(store, k) for k in ("escaped", "queued", "later")] == [None, None, "later"]
