"""Background work: purge secrets whose recovery window has ended.

Correctness never waits on the worker: a secret past its deletion date already counts as gone
(``operations.context.find_secret``); the worker only reclaims the rows and destroys the
ciphertext. Each purge is its own transaction, so a crash loses at most the one in flight.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from strongroom.storage.base import Store

logger = logging.getLogger("strongroom.worker")

PURGE_BATCH = 100


class Worker:
    def __init__(
        self, store: Store, *, clock: Callable[[], float] = time.time, interval: float = 60.0
    ) -> None:
        self.store = store
        self.clock = clock
        self.interval = interval

    def purge_due(self) -> int:
        """Delete every secret whose deletion date has passed; returns how many."""
        purged = 0
        while True:
            with self.store.write() as tx:
                due = tx.secrets_due_for_purge(self.clock(), PURGE_BATCH)
                for row in due:
                    tx.delete_secret(row.pk)
                    logger.info("purged secret %s", row.arn)
            purged += len(due)
            if len(due) < PURGE_BATCH:
                return purged

    def run_forever(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.purge_due()
            except Exception:
                # Log and go on: the next round retries; one bad row must not stop purging.
                logger.exception("purge failed")
            stop.wait(self.interval)
