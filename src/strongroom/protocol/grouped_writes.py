"""Write calls run one after another on one thread, several to a transaction (group commit).

On embedded SQLite writes are serialised anyway, and most of a write's time is its COMMIT:
the fsync of the WAL that makes it durable. The calls that queue while a group runs go
together into the next group (``SqlStore.write_group``): one transaction, a savepoint per
call, one COMMIT. Each call is answered only after that COMMIT, so an answer still means
durable; if the COMMIT fails, every call of the group fails and none changed anything.
A call alone (no load) is a group of one: what it costs is one SAVEPOINT and RELEASE more.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Any, Final

# Most calls per group: bounds how long the first call of a group waits for the last.
MOST_PER_GROUP: Final = 64

_Result = tuple[Any, BaseException | None]


class GroupedWrites:
    def __init__(
        self,
        group: Callable[[], AbstractContextManager[object]],
        *,
        most: int = MOST_PER_GROUP,
    ) -> None:
        self._group = group
        self._most = most
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="strongroom-write-group")
        self._queued: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []
        self._draining: asyncio.Task[None] | None = None

    def close(self) -> None:
        """Let the group thread go once it is idle (every call has had its answer)."""
        self._thread.shutdown(wait=False)

    async def run(self, call: Callable[[], Any]) -> Any:
        """``call()`` in the next group; its result once the group has committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queued.append((call, future))
        if self._draining is None:
            self._draining = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._queued:
                batch, self._queued = self._queued[: self._most], self._queued[self._most :]
                try:
                    results = await asyncio.get_running_loop().run_in_executor(
                        self._thread, self._run_group, [call for call, _ in batch]
                    )
                except BaseException as exc:
                    # Cancelled (the server stops), or a call raised what is no Exception:
                    # no call of this group or of the queue is answered by anyone else.
                    batch, self._queued = batch + self._queued, []
                    for _, future in batch:
                        if future.done():
                            continue
                        if isinstance(exc, asyncio.CancelledError):
                            future.cancel()
                        else:
                            future.set_exception(exc)
                    raise
                for (_, future), (result, error) in zip(batch, results, strict=True):
                    if future.done():  # its caller went away
                        continue
                    if error is None:
                        future.set_result(result)
                    else:
                        future.set_exception(error)
        finally:
            self._draining = None

    def _run_group(self, calls: list[Callable[[], Any]]) -> list[_Result]:
        results: list[_Result] = []
        try:
            with self._group():
                for call in calls:
                    try:
                        results.append((call(), None))
                    except Exception as exc:  # noqa: BLE001 - answered to its own caller
                        results.append((None, exc))
        except Exception as exc:  # noqa: BLE001 - BEGIN or COMMIT failed, or a call broke the group
            return [(None, exc)] * len(calls)
        return results
