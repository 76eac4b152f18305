"""GetSecretValue's one read, on a server database: the lookups of the calls in flight in a
process go to PostgreSQL together, one statement for all of them.

Why
---
On PostgreSQL a statement costs far more than the indexed lookup it makes: the round trip
(a send and a receive on each side, and the wake-ups), the driver's work around it, and the
server's own per-statement work. Under load a process has many GetSecretValue calls in
flight, each wanting the same kind of lookup; one statement for all of those that wait
(``statements.STAGED_BY_NAMES`` / ``STAGED_BY_ARNS``) costs little more than one of them.

How
---
The calls run on the event loop in greenlets (``SqlStore.awaiting_reads``). A lookup joins
the list of those waiting and awaits its rows; a task of the loop sends what waits as one
statement as soon as no statement of its own is in flight, and what comes meanwhile goes
with the next one, so the batches grow with the load and a lone call waits for nothing.
The statements go through a connection of their own, never one a call holds: a call
awaiting its lookup while holding the pool's last connection cannot hold the batch up.

Consistency
-----------
A lookup only joins a statement sent after it was asked for, and each statement reads the
latest commit (autocommit), so a call sees every write acknowledged before it began, as a
statement of its own would have shown it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.util import await_only, greenlet_spawn

# A lookup: its kind ("name": account id, region, name, stage; "arn": ARN, stage) and its
# values in the order of the statement's arrays.
Lookup = tuple[str, tuple[str, ...]]
# Runs one statement for lookups of one kind (in a greenlet); the rows, each with ``i``.
RunLookups = Callable[[str, Sequence[tuple[str, ...]]], list[Any]]


class StagedLookups:
    """The lookups waiting on one event loop (one per thread that runs a loop)."""

    def __init__(self, run: RunLookups) -> None:
        self._run = run
        self._waiting: dict[str, list[tuple[tuple[str, ...], asyncio.Future[list[Any]]]]] = {}
        self._sending: asyncio.Task[None] | None = None  # the task sending, while it does
        self.statements = 0  # for tests and benchmarks: how many statements so far

    def rows(self, kind: str, values: tuple[str, ...]) -> list[Any]:
        """The rows answering one lookup; called in a greenlet the loop runs."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = loop.create_future()
        self._waiting.setdefault(kind, []).append((values, future))
        if self._sending is None:
            self._sending = loop.create_task(self._send())
        rows: list[Any] = await_only(future)
        return rows

    async def _send(self) -> None:
        try:
            while self._waiting:
                kind, waiting = self._waiting.popitem()
                self.statements += 1
                try:
                    rows = await greenlet_spawn(self._run, kind, [v for v, _ in waiting])
                except Exception as exc:  # noqa: BLE001 - each call fails with it, as alone
                    for _, future in waiting:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                except BaseException:
                    _cancel(waiting)
                    raise
                answers: dict[int, list[Any]] = {}
                for row in rows:
                    answers.setdefault(row.i, []).append(row)
                for number, (_, future) in enumerate(waiting, start=1):
                    if not future.done():  # its call may have been cancelled meanwhile
                        future.set_result(answers.get(number, []))
        finally:
            self._sending = None
            for waiting in self._waiting.values():  # only when cancelled (the loop stops)
                _cancel(waiting)
            self._waiting.clear()


def _cancel(waiting: list[tuple[tuple[str, ...], asyncio.Future[list[Any]]]]) -> None:
    for _, future in waiting:
        future.cancel()
