"""The records of reads on an embedded installation: one append-only journal per process.

Why not straight into the database
----------------------------------
On SQLite every commit takes the installation's one write lock and an fsync. With every
read's record committed there, the readers of all worker processes queued for the lock the
writes need. A file of the process's own needs no lock shared with anyone: a batch of
records costs one write and one ``fdatasync``, done outside the interpreter (``syncer.py``)
while the event loop goes on gathering the next batch. A reply still leaves only once its
record is on disk. (The trail's CPU cost per read stayed about the same: most of it is
building, moving in and sealing each record; docs/audit.md has the figures.)

From the journal into the trail
-------------------------------
A thread of the same process moves the journal into ``audit_events`` twenty times a
second, in one transaction per batch that also stores how far it got (the ``meta`` row
``audit-journal:<segment>``), so every record lands exactly once even across a crash. What
a crashed or killed process left (its lock is gone with it) is adopted by the next process
that looks: at start-up, then every few seconds. Records therefore reach the searchable
trail (LookupEvents, ``audit lookup``, sealing) within about a second of the reply;
CloudTrail itself delivers events minutes late, and a process's own LookupEvents first
moves its own journal in.

Those transactions commit lazily (``Store.write_lazily``: no fsync): the records are
durable in the journal already. A power loss may undo a round, but whole, its progress row
with it, so the journal is moved in again from there. Hence the one rule: a segment is
deleted only after a durable commit (``_forget``), which makes every lazy round before it
durable too.

Layout
------
``<data dir>/audit-journal/<owner>.lock`` is held (``flock``) by the live process ``owner``
for its whole life; its segments are ``<owner>-<n>.log``. A segment is a run of frames:
big-endian length and CRC-32 of the payload, then the payload: the row's search columns as
a JSON array, a newline, the record's JSON. A frame torn by a crash (its batch was never
acknowledged) fails its check and ends the segment; so do zeros.

Segments written with zeros before use
--------------------------------------
Each segment is made whole before its first record: zeros written through its capacity and
synced, by the ingest thread while the one before it fills (``_prepare_spare``), and used
once full. Appending to a file makes every ``fdatasync`` commit the file system's journal
too (the file's new size and blocks); overwriting blocks already written makes it write the
data alone: on ext4 here, 70 -> 40 µs of CPU and 143 -> 88 µs of waiting per sync. The
capacity doubles from 1 MiB up to ``segment_bytes``, so a quiet server writes little. Were
no spare ready when a segment is full, records go on being appended to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import secrets
import struct
import threading
import time
import zlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from strongroom.audit.redaction import compact_json
from strongroom.audit.syncer import Syncer
from strongroom.audit.trail import (
    AuditUnavailable,
    Gathering,
    PendingRecord,
    answer_waiting,
    rendered,
)
from strongroom.durable import sync_folder
from strongroom.storage.base import AuditEventRow, Store

logger = logging.getLogger("strongroom.audit")

JOURNAL_DIR: Final = "audit-journal"
_FRAME: Final = struct.Struct(">II")  # payload length, CRC-32 of the payload
_META: Final = "audit-journal:"
_ADOPT_EVERY: Final = 100  # ingest rounds between looks for what dead processes left (5 s)
# Twenty rounds a second: a round moves in what about 50 ms of calls left (under load a
# couple of hundred records, about 2 ms of work) rather than a quarter second's thousand,
# which held up the event loop in longer bursts. Committed lazily, a round costs no fsync,
# so rounds may be this frequent. Both together, five interleaved rounds each at 32
# connections: p99 11.3 against 12.5 ms, 6,921 against 6,838 GetSecretValue/s.
INGEST_SECONDS: Final = 0.05
# A segment's largest capacity. Each is written with zeros and synced before use, by the
# ingest thread: 16 MiB of that at once delayed its rounds (and shared the disk with the
# batches' syncs); 4 MiB: p99 at 32 connections 10.8 against 11.2 ms (6 rounds each).
SEGMENT_BYTES: Final = 4 << 20
_FIRST_CAPACITY: Final = 1 << 20  # bytes of a process's first segment; each next one twice
_ZEROS: Final = bytes(1 << 20)
_MAX_RETRY_WAIT: Final = 5.0  # seconds


# The records of one write: each with its frame and the future its call awaits.
_Batch = list[tuple[AuditEventRow, bytes, "asyncio.Future[None]"]]


def encode(row: AuditEventRow) -> bytes:
    """One frame: what the journal keeps of ``row``."""
    columns = [
        row.event_id,
        row.event_time,
        row.event_source,
        row.event_name,
        row.aws_region,
        row.user_name,
        row.access_key_id,
        row.resource_name,
        row.read_only,
    ]
    payload = compact_json(columns).encode() + b"\n" + row.record.encode()
    return _FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def _payloads(data: bytes) -> Iterator[tuple[bytes, int]]:
    """The payload of each whole frame at the start of ``data``, with where its frame ends."""
    position = 0
    while position + _FRAME.size <= len(data):
        length, crc = _FRAME.unpack_from(data, position)
        end = position + _FRAME.size + length
        payload = data[position + _FRAME.size : end]
        if length == 0 or end > len(data) or zlib.crc32(payload) != crc:
            return  # zeros not yet written over, or torn by a crash (never acknowledged)
        yield payload, end
        position = end


def frames_end(data: bytes) -> int:
    """How many bytes at the start of ``data`` are whole frames."""
    return max((end for _, end in _payloads(data)), default=0)


def decode(data: bytes) -> tuple[list[AuditEventRow], int]:
    """The whole frames at the start of ``data``, and how many bytes they take."""
    rows: list[AuditEventRow] = []
    position = 0
    for payload, position in _payloads(data):  # noqa: B007 - the last one's is returned
        head, _, record = payload.partition(b"\n")
        event_id, time, source, name, region, user, key, resource, read_only = json.loads(head)
        rows.append(
            AuditEventRow(
                event_id=event_id,
                event_time=time,
                event_source=source,
                event_name=name,
                aws_region=region,
                user_name=user,
                access_key_id=key,
                resource_name=resource,
                read_only=read_only,
                record=record.decode(),
            )
        )
    return rows, position


@dataclass(slots=True)
class _Segment:
    path: Path
    fd: int
    capacity: int = 0  # bytes written with zeros (and synced) before use
    durable: int = 0  # bytes written and fdatasync'ed: what may be acknowledged and ingested
    ingested: int = 0  # bytes already in audit_events
    # The rows of each durable batch not yet moved in, and where the batch ends: moving them
    # in from memory spares reading and decoding the file (only a dead process's is read).
    # The writer thread appends, the ingest thread takes from the left.
    unmoved: deque[tuple[list[AuditEventRow], int]] = field(default_factory=deque)

    @property
    def meta_key(self) -> str:
        return _META + self.path.name


class Journal:
    """This process's journal: ``commit`` appends (event loop), ``ingest`` moves it into the
    database (any thread). Same contract as ``trail.GroupCommitter``."""

    def __init__(
        self,
        store: Store,
        directory: Path,
        *,
        segment_bytes: int = SEGMENT_BYTES,
        gathering: Gathering | None = None,
    ) -> None:
        self.store = store
        self.directory = directory
        self.segment_bytes = segment_bytes
        self.gathering = gathering or Gathering()
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.owner = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._lock_fd = _claim(directory, self.owner)
        self._number = 0
        self._segments: list[_Segment] = [self._new_segment(min(segment_bytes, _FIRST_CAPACITY))]
        self._segments_lock = threading.Lock()  # the list: the writer rolls, ingest retires
        self._spare: _Segment | None = None  # the next segment, made ready by ingest
        self._ingest_lock = threading.Lock()
        self._waiting: list[tuple[PendingRecord, asyncio.Future[None]]] = []
        # The batch being synced, with its loop, segment and end: one at a time.
        self._in_flight: tuple[asyncio.AbstractEventLoop, _Segment, int, _Batch] | None = None
        self._syncer = Syncer(self._synced)
        self._closed = False
        self._rounds = 0
        self.batches = 0  # for tests and benchmarks: how many fdatasyncs so far

    @property
    def file_descriptor(self) -> int:
        """The segment being appended to (tests put /dev/full in its place)."""
        return self._segments[-1].fd

    # -- appending (the event loop, and one writer thread) -------------------------------------
    async def commit(self, record: PendingRecord) -> None:
        """Returns once ``record`` is on disk; raises ``AuditUnavailable`` when it could not
        be, or what rendering it raised."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._waiting.append((record, future))
        if self._in_flight is None:
            self.gathering(loop, len(self._waiting), lambda: self._dispatch(loop))
        await future

    def _dispatch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Write what waits (on the loop: ``pwrite`` only reaches the page cache) and ask the
        syncer to make it durable; the next batch gathers meanwhile (``syncer.py``: why a
        process and not a thread)."""
        self.gathering.leaving()
        waiting, self._waiting = self._waiting, []
        if self._closed:
            _refuse(waiting)
            return
        batch = [(row, encode(row), future) for row, future in rendered(waiting)]
        if not batch:
            return  # not one could be rendered: each call has its error
        segment = self._segments[-1]
        data = b"".join(frame for _, frame, _ in batch)
        end = segment.durable + len(data)
        try:
            written = 0
            while written < len(data):  # pwrite may write less (a full disk, a signal)
                written += os.pwrite(segment.fd, data[written:], segment.durable + written)
            self._syncer.request(loop, segment.path, end)
        except Exception as exc:  # noqa: BLE001 - whatever it is, fail closed, never hang
            self._failed(segment, exc)
            self._done(batch, exc)
            return
        self._in_flight = (loop, segment, end, batch)

    def _synced(self, end: int, error: OSError | None) -> None:
        """The syncer's answer (on the loop): the batch in flight is durable, or failed."""
        if self._in_flight is None:
            return
        loop, segment, asked, batch = self._in_flight
        self._in_flight = None
        if error is None and end == asked:
            segment.durable = end
            segment.unmoved.append(([row for row, _, _ in batch], end))
            self.batches += 1
            if end >= (segment.capacity or self.segment_bytes) and self._spare is not None:
                self._roll(self._spare)
        else:
            error = error or OSError("the audit journal's syncer answered out of turn")
            self._failed(segment, error)
        self._done(batch, error)
        if self._waiting:
            self.gathering(loop, len(self._waiting), lambda: self._dispatch(loop))

    @staticmethod
    def _failed(segment: _Segment, error: Exception) -> None:
        logger.error("the audit journal could not be written: %s", error)
        # Whatever reached the file past the durable end is no acknowledged record: the next
        # batch overwrites it, and ingest never reads past the durable end. (Its zeros go
        # too: the segment is appended to from here on, and rolled at the next chance.)
        segment.capacity = min(segment.capacity, segment.durable)
        with contextlib.suppress(OSError):
            os.ftruncate(segment.fd, segment.durable)

    @staticmethod
    def _done(
        batch: _Batch,
        error: BaseException | None,
    ) -> None:
        answer_waiting((future for _, _, future in batch), error)

    def _roll(self, spare: _Segment) -> None:
        self._spare = None  # the ingest thread makes the next one
        with self._segments_lock:
            self._segments.append(spare)

    def _new_segment(self, capacity: int) -> _Segment:
        """The next segment, written with ``capacity`` zeros and synced, its name too (the
        syncer syncs the folder again before the first record in it is acknowledged)."""
        self._number += 1
        path = self.directory / f"{self.owner}-{self._number:06d}.log"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            for start in range(0, capacity, len(_ZEROS)):
                zeros = memoryview(_ZEROS)[: capacity - start]
                written = 0
                while written < len(zeros):
                    written += os.pwrite(fd, zeros[written:], start + written)
                # A mebibyte at a time: the disk never has megabytes of zeros queued ahead
                # of a batch's sync (at 16 MiB at once, some syncs waited 5-20 ms).
                os.fdatasync(fd)
            os.fsync(fd)
            sync_folder(self.directory)
        except BaseException:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        return _Segment(path, fd, capacity)

    def _prepare_spare(self) -> None:
        """Make the segment that follows the one being written (the ingest thread)."""
        if self._spare is not None or self._closed:
            return
        capacity = min(self.segment_bytes, 2 * (self._segments[-1].capacity or _FIRST_CAPACITY))
        try:
            self._spare = self._new_segment(capacity)
        except OSError:
            logger.exception("making the next audit journal segment failed; going on in this one")

    # -- into the database (the ingest thread, or a reader that wants everything) ---------------
    def ingest(self) -> int:
        """Move every durable record of this process's journal into ``audit_events``, and
        adopt what dead processes left now and then; how many records moved."""
        with self._ingest_lock:
            moved = 0
            with self._segments_lock:
                segments = list(self._segments)
            for segment in segments:
                moved += self._ingest(segment)
                if segment is not segments[-1] and segment.ingested == segment.durable:
                    self._retire(segment)
            if self._rounds % _ADOPT_EVERY == 0:
                moved += adopt_orphans(self.store, self.directory)
            self._rounds += 1
            self._prepare_spare()
            return moved

    def _ingest(self, segment: _Segment) -> int:
        # What is durable now, by index: the writer may append meanwhile (never on the left).
        batches = [segment.unmoved[i] for i in range(len(segment.unmoved))]
        if not batches:
            return 0
        rows = [row for batch, _ in batches for row in batch]
        through = batches[-1][1]
        _insert(self.store, segment.meta_key, rows, through)
        for _ in batches:
            segment.unmoved.popleft()  # only once committed: a failed round is retried
        segment.ingested = through
        return len(rows)

    def _retire(self, segment: _Segment) -> None:
        with self._segments_lock:
            self._segments.remove(segment)
        os.close(segment.fd)
        _forget(self.store, segment.path, segment.meta_key, segment.ingested)

    def run_forever(self, stop: threading.Event, interval: float = INGEST_SECONDS) -> None:
        wait = interval
        while not stop.is_set():
            try:
                self.ingest()
            except Exception:
                logger.exception("moving the audit journal into the database failed; retrying")
                # The records are safe in the journal meanwhile: retry less often while the
                # database refuses, rather than log twenty times a second.
                wait = min(wait * 2, _MAX_RETRY_WAIT)
            else:
                wait = interval
            stop.wait(wait)

    def close(self) -> None:
        """Stop taking records (calls still arriving fail closed), write what is in hand,
        and move everything into the database; what cannot be moved now is adopted by the
        next process to start."""
        self._closed = True
        if self._in_flight is not None:
            self._syncer.wait()  # the batch in hand is made durable (or failed) first
        self._syncer.close()
        waiting, self._waiting = self._waiting, []
        with contextlib.suppress(RuntimeError):  # their loop has closed: nobody waits
            _refuse(waiting)
        try:
            self.ingest()
            spare, self._spare = self._spare, None
            if spare is not None:  # never written to
                os.close(spare.fd)
                spare.path.unlink(missing_ok=True)
            with self._segments_lock:
                last = self._segments[-1]
            if last.ingested == last.durable:
                self._retire(last)
                with contextlib.suppress(FileNotFoundError):
                    (self.directory / f"{self.owner}.lock").unlink()
        except Exception:
            logger.exception("the audit journal is left for the next start to move in")
        finally:
            os.close(self._lock_fd)  # releases the lock


def _refuse(waiting: list[tuple[PendingRecord, asyncio.Future[None]]]) -> None:
    """Fail closed: a stopping journal takes no more records."""
    answer_waiting((future for _, future in waiting), AuditUnavailable("the server is stopping"))


def adopt_orphans(store: Store, directory: Path) -> int:
    """Move into ``audit_events`` what processes that died left in their journals, exactly
    once (each segment's progress is committed with its records); how many records moved.
    Commands that read the trail call it too, so a stopped server's last records show."""
    moved = 0
    if not directory.is_dir():
        return 0
    for lock_path in sorted(directory.glob("*.lock")):
        owner = lock_path.stem
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            continue  # adopted meanwhile by another process
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its process is alive and moves its own journal in
            for path in sorted(directory.glob(f"{owner}-*.log")):
                moved += _adopt(store, path)
            with contextlib.suppress(FileNotFoundError):
                lock_path.unlink()
        finally:
            os.close(fd)
    return moved


def settle(store: Store, directory: Path, timeout: float = 2.0) -> bool:
    """Adopt what dead processes left, then wait (up to ``timeout`` seconds) until live ones
    have moved in what their journals held when called: a command that reads the trail
    right after a call then finds it. False when time ran out first."""
    adopt_orphans(store, directory)
    if not directory.is_dir():
        return True
    sizes = {}
    for path in directory.glob("*.log"):
        with contextlib.suppress(FileNotFoundError):  # retired meanwhile: already moved in
            sizes[path] = frames_end(path.read_bytes())  # the rest is zeros
    deadline = time.monotonic() + timeout
    while sizes:
        with store.read() as tx:
            for path, size in list(sizes.items()):
                if not path.exists() or int(tx.get_meta(_META + path.name) or 0) >= size:
                    del sizes[path]
        if not sizes:
            break
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _adopt(store: Store, path: Path) -> int:
    key = _META + path.name
    with store.read() as tx:
        start = int(tx.get_meta(key) or 0)
    data = path.read_bytes()[start:]
    rows, used = decode(data)
    torn = len(data[used:].rstrip(b"\0"))  # the zeros a segment is made with are no loss
    if torn:
        logger.warning(
            "%s: %d bytes after the last whole record (a batch cut short by a crash, never "
            "acknowledged) are dropped",
            path.name,
            torn,
        )
    _insert(store, key, rows, start + used)
    _forget(store, path, key, start + used)
    return len(rows)


def _insert(store: Store, key: str, rows: list[AuditEventRow], through: int) -> None:
    if not rows:
        return
    # Without waiting for the disk (``write_lazily``): the records are durable in the
    # journal already, and a commit a power loss undid is undone whole, progress included,
    # so the journal is moved in again from there. ``_forget`` makes it durable before the
    # journal goes.
    with store.write_lazily() as tx:
        tx.insert_audit_events(rows)
        tx.set_meta(key, str(through))


def _forget(store: Store, path: Path, key: str, through: int) -> None:
    # Before the file goes, a durable commit (its progress, again): it makes every round
    # committed lazily before it durable too, so no record is only in an undoable commit
    # once its journal is gone. The file goes before the progress row: were the row to go
    # first, a crash in between would move the whole segment in again.
    with store.write() as tx:
        tx.set_meta(key, str(through))
    path.unlink(missing_ok=True)
    with store.write() as tx:
        tx.delete_meta(key)


def _claim(directory: Path, owner: str) -> int:
    """Lock ``<owner>.lock`` for life. It is locked under a temporary name and then renamed:
    a lock file anyone can see is always held, so no one takes it for a dead process's."""
    temporary = directory / f".{owner}.lock.new"
    fd = os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    temporary.rename(directory / f"{owner}.lock")
    return fd
