"""Background work: purge secrets whose recovery window has ended, and forget temporary
credentials a day after they expired.

Theory of operation
-------------------
Correctness never waits on the worker: a secret past its deletion date already counts as gone
(``operations.context.find_secret``); the worker only reclaims the rows and destroys the
ciphertext. Each purge is its own write transaction, which re-reads the secret under the
write lock and deletes it only if it is still due, so a RestoreSecret that wins the race is
never undone, and a crash loses at most the one purge in flight. A secret whose purge fails
is logged and skipped for the rest of the round, so it cannot hold up the others; the next
round tries it again. The purge's EndSecretVersionDelete record is written in that same
transaction: a purge that fails leaves no record, and a record that cannot be written leaves
the secret for the next round.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from strongroom.audit.service_events import record_service_event
from strongroom.storage.base import SecretRow, Store

logger = logging.getLogger("strongroom.worker")

PURGE_BATCH = 100
# Expired session keys are kept this long so that their use is still answered
# ExpiredToken (as AWS answers) rather than as an unknown key.
EXPIRED_SESSIONS_KEPT = 86_400.0


class Worker:
    def __init__(
        self, store: Store, *, clock: Callable[[], float] = time.time, interval: float = 60.0
    ) -> None:
        self.store = store
        self.clock = clock
        self.interval = interval

    def purge_due(self) -> int:
        """Delete every secret whose deletion date has passed; returns how many.

        A purge that fails is logged and left for the next call; it does not stop the others.
        """
        purged = 0
        failed: set[int] = set()
        while True:
            now = self.clock()
            with self.store.read() as tx:
                # Ask for enough rows that the failed ones cannot fill the whole batch.
                candidates = tx.secrets_due_for_purge(now, PURGE_BATCH + len(failed))
            due = [row for row in candidates if row.pk not in failed][:PURGE_BATCH]
            if not due:
                return purged
            for row in due:
                try:
                    purged += self._purge(row, now)
                except Exception:
                    # One bad row must not stop purging; it is retried on the next round.
                    logger.exception("purging secret %s failed", row.arn)
                    failed.add(row.pk)

    def _purge(self, row: SecretRow, now: float) -> int:
        with self.store.write() as tx:
            tx.lock_secret(row.pk)
            current = tx.secret_by_arn(row.arn)
            if current is None or current.deletion_date is None or current.deletion_date > now:
                return 0  # purged by someone else, or restored since we looked
            record_service_event(tx, "EndSecretVersionDelete", current, event_time=now)
            tx.delete_secret(current.pk)
        logger.info("purged secret %s", row.arn)
        return 1

    def forget_expired_sessions(self) -> int:
        with self.store.write() as tx:
            forgotten = tx.delete_expired_sessions(self.clock() - EXPIRED_SESSIONS_KEPT)
        if forgotten:
            logger.info("forgot %d expired session keys", forgotten)
        return forgotten

    def run_forever(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.purge_due()
                self.forget_expired_sessions()
            except Exception:
                # Log and go on (the store may be briefly unreachable); the next round retries.
                logger.exception("purge failed")
            stop.wait(self.interval)
