"""An embedded store for tests: a fresh SQLite file, migrated, closed afterwards."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from strongroom.storage import migrate
from strongroom.storage.sql import SqlStore


@contextlib.contextmanager
def migrated_sqlite_store(path: Path) -> Iterator[SqlStore]:
    store = SqlStore.from_url(f"sqlite:///{path}")
    try:
        migrate.upgrade(store.engine)
        yield store
    finally:
        store.close()
