"""Recording calls durably: the link between the front end and the audit tables.

Theory of operation (fail closed)
---------------------------------
- A call that writes records itself in its own transaction: the operation runs on a
  ``CallStore``, which holds every write transaction of the call open until the front end
  has the result, then inserts the call's record and commits both at once. If the record
  cannot be written, the write is rolled back with it; the call fails and changes nothing.
- Every other call (reads, failures, calls refused before they ran) waits before the front
  end replies until its record is durable, batched with the records of the calls beside it:
  committed by ``GroupCommitter`` on a server database, or written to the process's own
  journal (``journal.Journal``) on embedded SQLite. If the batch fails, the call is
  answered with an internal error instead, so a value never leaves the server unless its
  read was recorded.
- Records land in ``audit_events`` of the installation's database (so every node of a
  multi-node installation writes to the same trail; a journal is moved in within about a
  second); ``sealing`` later seals them into signed CloudTrail log files.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, Final, Protocol

from strongroom.audit.records import CallFacts, cloudtrail_text, identity_access_key
from strongroom.domain.ids import UuidShapedIds
from strongroom.domain.principal import Principal
from strongroom.storage.base import AuditEventRow, Store, Transaction, TransientConflict

logger = logging.getLogger("strongroom.audit")

SOURCES: Final = {
    "secretsmanager": "secretsmanager.amazonaws.com",
    "iam": "iam.amazonaws.com",
    "sts": "sts.amazonaws.com",
    "cloudtrail": "cloudtrail.amazonaws.com",
}
# Members that name what a call acts on, most specific first: what `audit lookup
# --resource-name` and LookupEvents' ResourceName find a call by.
_RESOURCE_MEMBERS: Final = ("SecretId", "Name", "UserName", "RoleName", "PolicyArn", "RoleArn")
_SECRET_ARN = re.compile(r"^arn:[^:]+:secretsmanager:[^:]*:\d*:secret:(.+?)(-[A-Za-z0-9]{6})?$")
_CREDENTIAL = re.compile(rb"Credential=([^/,\s]+)/[^/,\s]*/([^/,\s]*)/")
_BATCH_ATTEMPTS: Final = 3
_event_ids = UuidShapedIds()
_BUSY: Final = object()
_INLINE_TRIES: Final = 10
_INLINE_RETRY: Final = (
    0.0002  # seconds  # the write lock was taken: the writer thread waits for it instead
)
GATHER_SECONDS: Final = 0.002  # the longest a record waits for others to share its write


def resource_name(value: str) -> str:
    """A secret's name from its ARN (full or partial); other names as they are."""
    match = _SECRET_ARN.match(value)
    return match[1] if match else value


def user_name(principal: Principal | None) -> str | None:
    """Who LookupEvents' Username finds a call by: the user, the role session, or root."""
    if principal is None:
        return None
    if principal.is_root:
        return "root"
    return principal.session_name if principal.role_arn else principal.user_name


def credential_scope(authorization: bytes | None) -> tuple[str | None, str | None]:
    """(access key id, region) a request claims in its Authorization header, unverified.

    For the record of a call whose authentication failed: the caller is still known by the
    key it presented."""
    match = _CREDENTIAL.search(authorization or b"")
    if match is None:
        return None, None
    return match[1].decode("latin-1"), match[2].decode("latin-1") or None


@dataclass(slots=True)
class CallAudit:
    """What the front end learns about one call as it goes, for its record."""

    service: str  # "secretsmanager", "iam", "sts", "cloudtrail"
    request_id: str
    event_time: float
    source_ip: str | None
    user_agent: str | None
    # The raw header: read only if authentication fails (a caller that passed is known
    # by its principal), so the hot path does not parse what SigV4 has just parsed.
    authorization: bytes | None
    account_id: str
    region: str | None = None  # the verified credential scope's, once authenticated
    event_name: str = "-"
    principal: Principal | None = None
    request: Mapping[str, Any] | None = None
    read_only: bool = False
    # The response as the record should see it: IAM and STS results carry dates as epoch
    # seconds, which only their model tells from other numbers (``QueryOperation``).
    response_view: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None

    def row(
        self,
        *,
        response: Mapping[str, Any] | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
    ) -> AuditEventRow:
        """The call's record, ready to insert."""
        access_key_id, region = None, self.region
        if response is not None and self.response_view is not None:
            response = self.response_view(response)
        if self.principal is None:  # refused: the caller is known by what it claimed
            access_key_id, claimed = credential_scope(self.authorization)
            region = region or claimed
        facts = CallFacts(
            event_source=SOURCES[self.service],
            event_name=self.event_name,
            # IAM is global: CloudTrail records it in us-east-1.
            region="us-east-1" if self.service == "iam" else region or "us-east-1",
            account_id=self.account_id,
            principal=self.principal,
            access_key_id=access_key_id,
            source_ip=self.source_ip,
            user_agent=self.user_agent,
            request_id=self.request_id,
            event_time=self.event_time,
            request=self.request,
            response=response,
            error_code=error_code,
            error_message=error_message,
            read_only=self.read_only,
            session_created=None if self.principal is None else self.principal.session_created,
        )
        event_id = _event_ids()
        return AuditEventRow(
            event_id=event_id,
            event_time=self.event_time,
            event_source=facts.event_source,
            event_name=self.event_name,
            user_name=user_name(self.principal),
            access_key_id=identity_access_key(self.principal, access_key_id),
            resource_name=self._resource(response),
            read_only=self.read_only,
            record=cloudtrail_text(facts, event_id=event_id),
            aws_region=facts.region,
        )

    def _resource(self, response: Mapping[str, Any] | None) -> str | None:
        for source in (self.request, response):
            for member in _RESOURCE_MEMBERS:
                value = source.get(member) if source else None
                if isinstance(value, str) and value:
                    return resource_name(value)
        return None


class CallStore:
    """The store as one call's operation sees it.

    Every write transaction the operation opens is the same one, left open when the
    operation's ``with`` ends; ``commit`` adds the call's record to it and commits. Reads
    after the first write read inside it (they see the call's own writes). Once the
    operation has returned (``done``), transactions are the store's own again: the work a
    read leaves for later (``Context.later``) is not part of the call.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._stack: ExitStack | None = None
        self._tx: Transaction | None = None
        self._done = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    @property
    def wrote(self) -> bool:
        return self._tx is not None

    def read(self) -> AbstractContextManager[Transaction]:
        if self._tx is not None:
            return contextlib.nullcontext(self._tx)
        # The store's own, unwrapped: most calls never write (a wrapper cost each read more).
        return self._store.read()

    @contextmanager
    def write(self) -> Iterator[Transaction]:
        if self._done:
            with self._store.write() as tx:
                yield tx
            return
        if self._tx is None:
            stack = ExitStack()
            self._tx = stack.enter_context(self._store.write())
            self._stack = stack
        try:
            yield self._tx
        except BaseException:
            self._end(failed=True)
            raise

    def commit(self, row: AuditEventRow) -> None:
        """Insert the call's record into its write transaction and commit them together."""
        assert self._tx is not None  # noqa: S101 - only called when ``wrote``
        try:
            self._tx.insert_audit_events([row])
        except BaseException:
            self._end(failed=True)
            raise
        self._end(failed=False)

    def rollback(self) -> None:
        """Undo the call's writes (the call failed after its transaction had begun)."""
        if self._tx is not None:
            self._end(failed=True)

    def done(self) -> None:
        """The operation has returned without writing: nothing is held any more."""
        self._done = True

    def _end(self, *, failed: bool) -> None:
        self._done = True
        stack, self._stack, self._tx = self._stack, None, None
        if stack is None:
            return
        if failed:
            # Roll back as the store does on an error: hand it the exception in flight.
            error = sys.exc_info()[1] or RuntimeError("call abandoned")
            stack.__exit__(type(error), error, error.__traceback__)
        else:
            stack.close()  # COMMIT (a server database may raise TransientConflict here)


# A call's record, not yet rendered: the committers render the records of a batch one
# after another as the batch leaves. Rendered in the middle of each call's work, a record
# cost about twice the CPU (its code and data cold in the CPU's caches again each time:
# 20 µs against 10 per GetSecretValue, timed among bench/micro_get.py's 16 calls at once
# and alone).
PendingRecord = Callable[[], AuditEventRow]


def rendered(
    waiting: Iterable[tuple[PendingRecord, asyncio.Future[None]]],
) -> list[tuple[AuditEventRow, asyncio.Future[None]]]:
    """The rows of ``waiting``'s records; a record that cannot be rendered fails its call
    alone, with the error (the front end logs it and answers an internal error)."""
    rows = []
    for record, future in waiting:
        try:
            rows.append((record(), future))
        except Exception as exc:  # noqa: BLE001 - any error: that call fails closed
            if not future.done():
                future.set_exception(exc)
    return rows


class RecordCommitter(Protocol):
    """Where the front end commits the records of calls that wrote nothing: the database
    (``GroupCommitter``) or, on an embedded installation, a journal of the process's own
    (``journal.Journal``)."""

    batches: int
    gathering: Gathering

    async def commit(self, record: PendingRecord) -> None:
        """Returns once ``record`` is rendered and durable; raises when it could not be."""

    def close(self) -> None:
        """Stop taking records; what is in hand is made durable first."""


class Gathering:
    """When the next batch of records leaves: at once, or once more records have come.

    Every batch costs the process far more CPU than its system calls or its statement (the
    hand-offs between threads, the wake-ups): letting a record wait up to ``seconds`` for
    the records of the calls around it made batches 2-3 times larger and GetSecretValue
    about 10% faster with the trail on (docs/audit.md). No wait when every call under way
    already waits for its record: nothing else is coming, so a lone call is written at once.
    """

    def __init__(self, seconds: float = GATHER_SECONDS) -> None:
        self.seconds = seconds
        self.calls_in_flight = 0  # this process's calls under way, counted by the front end
        self._since: float | None = None  # loop time the oldest waiting record came
        self._timer: asyncio.TimerHandle | None = None
        self._waiting = 0  # while the timer runs: how many records wait, and who sends them
        self._dispatch: Callable[[], None] | None = None

    def __call__(
        self, loop: asyncio.AbstractEventLoop, waiting: int, dispatch: Callable[[], None]
    ) -> None:
        """``waiting`` records wait and no batch is being written: ``dispatch`` now or later."""
        now = loop.time()
        if self._since is None:
            self._since = now
        due = self._since + self.seconds
        if now >= due or waiting >= self.calls_in_flight:
            dispatch()
            return
        self._waiting, self._dispatch = waiting, dispatch
        if self._timer is None:
            self._timer = loop.call_at(due, dispatch)

    def call_started(self) -> None:
        self.calls_in_flight += 1

    def call_ended(self) -> None:
        """A call has answered (on the event loop): if every call left waits for its
        record, the batch gathering for them has nothing more to wait for."""
        self.calls_in_flight -= 1
        if self._dispatch is not None and self._waiting >= self.calls_in_flight:
            self._dispatch()

    def leaving(self) -> None:
        """A batch leaves (whatever made it): the next one gathers afresh."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._since, self._dispatch = None, None


class GroupCommitter:
    """Commits records from many concurrent calls in few transactions (see the module doc).

    The batching happens on the event loop: records wait in a list while one batch is being
    written, and the next batch leaves as soon as it is done, so a busy server hands its
    writer thread one batch per transaction rather than one record per call (each hand-off
    between threads costs a GIL switch and a wake-up, more than the insert itself).
    """

    def __init__(self, store: Store, gathering: Gathering | None = None) -> None:
        self._store = store
        self.gathering = gathering or Gathering()
        self._waiting: list[tuple[PendingRecord, asyncio.Future[None]]] = []
        self._writing = False
        self._executor: ThreadPoolExecutor | None = None
        # Embedded SQLite: a batch is written on the event loop itself when no other writer
        # holds the lock (``SqlStore.try_write``), else by the writer thread.
        self._try_write: Callable[[], AbstractContextManager[Transaction | None]] | None = (
            getattr(store, "try_write", None) if getattr(store, "reads_never_wait", False) else None
        )
        self._closed = False
        self.batches = 0  # for tests and benchmarks: how many transactions so far

    async def commit(self, record: PendingRecord) -> None:
        """Returns once ``record`` is committed; raises when it could not be."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._waiting.append((record, future))
        if not self._writing:
            self.gathering(loop, len(self._waiting), lambda: self._dispatch(loop))
        await future

    def close(self) -> None:
        self._closed = True  # calls still arriving fail closed rather than wait forever
        if self._executor is not None:
            self._executor.shutdown(wait=True)  # the batch in hand is committed first

    def _dispatch(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[tuple[AuditEventRow, asyncio.Future[None]]] | None = None,
        tries: int = 0,
    ) -> None:
        # A batch the lock turned away takes along what arrived meanwhile.
        self.gathering.leaving()
        waiting, self._waiting = self._waiting, []
        if self._closed:
            stopping = AuditUnavailable("the server is stopping")
            answer_waiting((future for _, future in waiting), stopping)
            self._done(loop, batch or [], stopping)
            return
        batch = (batch or []) + rendered(waiting)
        if not batch:
            self._done(loop, batch, None)  # not one could be rendered: each has its error
            return
        self._writing = True
        if self._try_write is not None:
            outcome = self._write_now([row for row, _ in batch])
            if outcome is not _BUSY:
                self.batches += 1
                error = outcome if isinstance(outcome, BaseException) else None
                loop.call_soon(self._done, loop, batch, error)
                return
            if tries < _INLINE_TRIES:
                # Another writer (most often the other worker process's commit) holds the
                # lock for a moment: try again shortly rather than hand the batch over.
                loop.call_later(_INLINE_RETRY, self._dispatch, loop, batch, tries + 1)
                return
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="audit-commit")

        def write() -> None:
            error = self._write([row for row, _ in batch])
            self.batches += 1
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
                loop.call_soon_threadsafe(self._done, loop, batch, error)

        self._executor.submit(write)

    def _done(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[tuple[AuditEventRow, asyncio.Future[None]]],
        error: BaseException | None,
    ) -> None:
        self._writing = False
        answer_waiting((future for _, future in batch), error)
        if self._waiting:
            self.gathering(loop, len(self._waiting), lambda: self._dispatch(loop))

    def _write_now(self, rows: list[AuditEventRow]) -> BaseException | object | None:
        """Write on the event loop if the lock is free at once; ``_BUSY`` if it is not."""
        assert self._try_write is not None  # noqa: S101 - only called when there is one
        try:
            with self._try_write() as tx:
                if tx is None:
                    return _BUSY
                tx.insert_audit_events(rows)
        except Exception as exc:
            logger.exception("writing %d audit records failed", len(rows))
            return exc
        return None

    def _write(self, rows: list[AuditEventRow]) -> BaseException | None:
        for attempt in range(1, _BATCH_ATTEMPTS + 1):
            try:
                with self._store.write_at_once() as tx:  # one multi-row INSERT
                    tx.insert_audit_events(rows)
            except TransientConflict as exc:
                if attempt == _BATCH_ATTEMPTS:
                    return exc
                time.sleep(0.005 * attempt)
            except Exception as exc:
                logger.exception("writing %d audit records failed", len(rows))
                return exc
            else:
                return None
        raise AssertionError  # unreachable


def answer_waiting(futures: Iterable[asyncio.Future[None]], error: BaseException | None) -> None:
    """Wake the calls waiting for a batch of records: done, or failed with ``error``."""
    for future in futures:
        if future.done():
            continue  # its request was cancelled (the client went away)
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(AuditUnavailable(str(error)))


class AuditUnavailable(Exception):
    """A record could not be written durably: the call must fail (fail closed)."""
