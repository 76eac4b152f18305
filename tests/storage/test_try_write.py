"""``SqlStore.try_write``: a write now if no other writer holds the lock, never a wait."""

from __future__ import annotations

import threading

from strongroom.storage.sql import SqlStore


def test_it_writes_when_no_one_else_does_and_gives_way_when_someone_does(
    store: SqlStore, backend: str
) -> None:
    with store.try_write() as tx:
        if backend == "postgres":
            assert tx is None  # a server database always waits on the network: never inline
            return
        assert tx is not None
        tx.set_meta("try-write", "1")
    with store.read() as tx:
        assert tx.get_meta("try-write") == "1"

    holding, release = threading.Event(), threading.Event()

    def writer() -> None:
        with store.write():
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert holding.wait(10)
        with store.try_write() as tx:
            assert tx is None  # the other writer holds the lock: no waiting for it
    finally:
        release.set()
        thread.join()
    with store.try_write() as tx:
        assert tx is not None  # free again


def test_it_gives_way_to_a_writer_of_another_process(store: SqlStore, backend: str) -> None:
    """Another process's writer is seen through the lock file (flock), as a second store on
    the same database file shows: its lock is a lock of its own."""
    if backend == "postgres":
        return
    other = SqlStore.from_url(store.engine.url.render_as_string(hide_password=False))
    try:
        with other.write(), store.try_write() as tx:
            assert tx is None
        with store.try_write() as tx:
            assert tx is not None
    finally:
        other.close()
