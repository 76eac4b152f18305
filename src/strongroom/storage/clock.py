"""The database's clock, for every node to agree on time.

Deletion dates, session expiry and rotation leases are compared across nodes; each node's own
clock may drift, so on a server database they follow the database's clock instead. Asking
the database on every request would cost a round trip, so the offset between the two clocks
is measured (NTP-style: against the midpoint of the query) and re-measured every ``refresh``
seconds. An embedded SQLite database has no clock of its own: it is this machine's.
"""

from __future__ import annotations

import logging
import threading
import time

from strongroom.storage.sql import SqlStore

logger = logging.getLogger("strongroom.storage")

REFRESH = 30.0


class DatabaseClock:
    def __init__(self, store: SqlStore, *, refresh: float = REFRESH) -> None:
        self._store = store
        self._refresh = refresh
        self._offset = 0.0
        self._next = 0.0  # when to measure again
        self._lock = threading.Lock()
        self._local = store.engine.dialect.name == "sqlite"

    @property
    def offset(self) -> float:
        """Seconds the database's clock is ahead of this machine's."""
        return self._offset

    def __call__(self) -> float:
        now = time.time()
        if not self._local and now >= self._next:
            self._measure()
            now = time.time()
        return now + self._offset

    def _measure(self) -> None:
        with self._lock:
            before = time.time()
            if before < self._next:  # another thread just did
                return
            try:
                database = self._store.database_time()
            except Exception:
                # Keep the last offset; a database that cannot answer fails the request anyway.
                logger.warning("could not read the database's clock", exc_info=True)
                self._next = before + 1.0
                return
            after = time.time()
            self._offset = database - (before + after) / 2
            self._next = after + self._refresh
