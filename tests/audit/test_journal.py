"""The journal of read records (audit/journal.py) on a real SQLite store and real files:
batching, exactly-once ingest, what a dead process leaves, and a disk that refuses writes."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest

from strongroom.audit.journal import (
    Journal,
    adopt_orphans,
    decode,
    encode,
    frames_end,
    settle,
)
from strongroom.audit.trail import AuditUnavailable, Gathering, PendingRecord
from strongroom.storage import migrate
from strongroom.storage.base import AuditEventRow, AuditQuery, Store, Transaction
from strongroom.storage.sql import SqlStore


def row(name: str = "GetSecretValue", resource: str | None = "app/db") -> AuditEventRow:
    event_id = str(uuid.uuid4())
    return AuditEventRow(
        event_id=event_id,
        event_time=time.time(),
        event_source="secretsmanager.amazonaws.com",
        event_name=name,
        user_name="root",
        access_key_id="AKIAEXAMPLE",
        resource_name=resource,
        read_only=True,
        record=json.dumps({"eventID": event_id, "note": "ünïcode\nand a newline"}),
        aws_region="eu-west-1",
    )


@pytest.fixture
def store(tmp_path: Path) -> SqlStore:
    sql_store = SqlStore.from_url(f"sqlite:///{tmp_path / 'audit.db'}")
    migrate.upgrade(sql_store.engine)
    return sql_store


def stored(store: SqlStore) -> list[AuditEventRow]:
    with store.read() as tx:
        return tx.audit_events(AuditQuery(newest_first=False, limit=100_000))


def pending(made: AuditEventRow) -> PendingRecord:
    """``made`` as a record still to be rendered, as the front end hands records over."""
    return lambda: made


def commit_all(journal: Journal, rows: list[AuditEventRow]) -> None:
    """Commit ``rows`` concurrently; raises the first failure once every one is settled."""

    async def many() -> list[BaseException | None]:
        commits = (journal.commit(pending(r)) for r in rows)
        return await asyncio.gather(*commits, return_exceptions=True)

    for outcome in asyncio.run(many()):
        if isinstance(outcome, BaseException):
            raise outcome


def test_frames_round_trip_and_a_torn_frame_ends_what_is_read() -> None:
    rows = [row(), row("ListSecrets", None), row(resource="名前/db")]
    data = b"".join(encode(r) for r in rows)
    decoded, used = decode(data)
    assert used == len(data)
    assert [(r.event_id, r.event_name, r.resource_name, r.record) for r in decoded] == [
        (r.event_id, r.event_name, r.resource_name, r.record) for r in rows
    ]
    assert decoded[0].aws_region == "eu-west-1"
    assert decoded[0].read_only is True

    # A crash mid-write: the last frame is cut short.
    whole = len(encode(rows[0])) + len(encode(rows[1]))
    assert decode(data[:-5]) == (decoded[:2], whole)
    # A flipped byte inside the second frame: its checksum fails, reading stops before it.
    flipped = bytearray(data)
    flipped[len(encode(rows[0])) + 20] ^= 0x01
    assert decode(bytes(flipped))[1] == len(encode(rows[0]))
    # Zeros (a preallocated or half-written page) are no frame.
    assert decode(b"\0" * 64) == ([], 0)


def test_records_are_batched_and_each_reaches_the_trail_once(
    store: SqlStore, tmp_path: Path
) -> None:
    journal = Journal(store, tmp_path / "journal", segment_bytes=4096)  # rolls often
    rows = [row() for _ in range(300)]
    commit_all(journal, rows[:150])
    assert 1 <= journal.batches < 150  # gathered behind the write in flight
    assert stored(store) == []  # durable in the journal; not yet in the trail

    assert journal.ingest() == 150  # and it makes the next segment ready
    commit_all(journal, rows[150:])  # the first, past 4 KiB, is left for that one
    assert journal.ingest() == 150
    assert journal.ingest() == 0  # nothing twice
    assert sorted(r.event_id for r in stored(store)) == sorted(r.event_id for r in rows)
    # A segment left behind is gone once moved in; the one being appended stays, and the
    # next one is ready (written with zeros through its capacity before any record).
    names = sorted(path.name for path in (tmp_path / "journal").glob("*.log"))
    assert [name[-10:] for name in names] == ["000002.log", "000003.log"]
    assert (tmp_path / "journal" / names[1]).read_bytes() == bytes(4096)

    journal.close()
    assert list((tmp_path / "journal").iterdir()) == []  # all moved in, lock file gone
    with pytest.raises(AuditUnavailable):
        asyncio.run(journal.commit(row))  # a stopping server refuses rather than loses


def test_a_record_waits_for_the_calls_under_way_to_share_its_fdatasync(
    store: SqlStore, tmp_path: Path
) -> None:
    journal = Journal(store, tmp_path / "journal", gathering=Gathering(30.0))
    # A lone call is written at once: nothing else is coming.
    journal.gathering.calls_in_flight = 1
    started = time.monotonic()
    commit_all(journal, [row()])
    assert time.monotonic() - started < 10
    assert journal.batches == 1
    # Five calls under way: the batch leaves once all five wait, in one fdatasync.
    journal.gathering.calls_in_flight = 5
    started = time.monotonic()
    commit_all(journal, [row() for _ in range(5)])
    assert time.monotonic() - started < 10
    assert journal.batches == 2
    journal.close()

    # A call under way answers without bringing a record: the batch need not wait for it.
    journal = Journal(store, tmp_path / "journal", gathering=Gathering(30.0))
    journal.gathering.calls_in_flight = 2

    async def one_waits_while_the_other_ends() -> None:
        asyncio.get_running_loop().call_later(0.1, journal.gathering.call_ended)
        await asyncio.wait_for(journal.commit(row), timeout=10)

    asyncio.run(one_waits_while_the_other_ends())
    assert journal.batches == 1
    journal.close()

    # Calls under way that bring no record soon: the record waits no longer than its bound.
    journal = Journal(store, tmp_path / "journal", gathering=Gathering(0.3))
    journal.gathering.calls_in_flight = 5
    started = time.monotonic()
    commit_all(journal, [row(), row()])
    assert time.monotonic() - started >= 0.3
    assert journal.batches == 1
    journal.close()


def test_a_record_that_cannot_be_rendered_fails_its_call_alone(
    store: SqlStore, tmp_path: Path
) -> None:
    journal = Journal(store, tmp_path / "journal")
    kept = [row() for _ in range(3)]

    def broken() -> AuditEventRow:
        raise ValueError("not JSON serializable")

    async def together() -> list[BaseException | None]:
        records = [pending(kept[0]), broken, pending(kept[1]), pending(kept[2])]
        return await asyncio.gather(*map(journal.commit, records), return_exceptions=True)

    first, failed, *rest = asyncio.run(together())
    assert isinstance(failed, ValueError)  # the front end answers this call with an error
    assert [first, *rest] == [None, None, None]
    journal.ingest()
    assert sorted(r.event_id for r in stored(store)) == sorted(r.event_id for r in kept)
    journal.close()


def test_a_refused_write_fails_the_records_and_keeps_nothing_of_them(
    store: SqlStore, tmp_path: Path
) -> None:
    journal = Journal(store, tmp_path / "journal")
    kept = row()
    commit_all(journal, [kept])
    fd = journal.file_descriptor
    saved, full = os.dup(fd), os.open("/dev/full", os.O_WRONLY)
    os.dup2(full, fd)  # the disk is full from now on
    os.close(full)
    try:
        with pytest.raises(AuditUnavailable):
            commit_all(journal, [row() for _ in range(5)])
    finally:
        os.dup2(saved, fd)
        os.close(saved)
    after = row()
    commit_all(journal, [after])
    journal.close()
    assert [r.event_id for r in stored(store)] == [kept.event_id, after.event_id]


def test_a_segment_that_cannot_be_made_ready_leaves_nothing_and_records_go_on(
    store: SqlStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    journal = Journal(store, tmp_path / "journal", segment_bytes=4096)
    rows = [row() for _ in range(80)]
    commit_all(journal, rows[:40])  # past the first segment's 4 KiB: nothing to roll into yet

    def disk_full(fd: int, data: bytes, offset: int) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as patched:
        patched.setattr(os, "pwrite", disk_full)  # while the next segment is being made
        assert journal.ingest() == 40
    assert "making the next audit journal segment failed" in caplog.text
    assert len(list((tmp_path / "journal").glob("*.log"))) == 1  # no half-made segment

    commit_all(journal, rows[40:])  # appended to the one segment meanwhile
    assert journal.ingest() == 40
    journal.close()
    assert sorted(r.event_id for r in stored(store)) == sorted(r.event_id for r in rows)


def syncer_pid(journal: Journal) -> int:
    pid = journal._syncer.child_pid  # the child process under test
    assert pid is not None
    return pid


def test_a_syncer_that_dies_fails_the_batch_it_held_and_a_new_one_takes_over(
    store: SqlStore, tmp_path: Path
) -> None:
    journal = Journal(store, tmp_path / "journal")
    kept = row()
    commit_all(journal, [kept])
    pid = syncer_pid(journal)
    lost = [row() for _ in range(3)]

    async def syncer_killed_mid_batch() -> list[BaseException | None]:
        os.kill(pid, signal.SIGSTOP)  # it takes the request but cannot answer
        commits = asyncio.gather(*map(journal.commit, map(pending, lost)), return_exceptions=True)
        await asyncio.sleep(0)  # the commits run up to their wait
        assert journal._in_flight is not None  # the first record's sync is asked for
        os.kill(pid, signal.SIGKILL)
        return await asyncio.wait_for(commits, timeout=10)

    # The first record left alone (nothing else was under way); the two that gathered behind
    # it go to a new syncer once the first one's fails.
    first, *behind = asyncio.run(syncer_killed_mid_batch())
    assert isinstance(first, AuditUnavailable)
    assert behind == [None, None]
    assert syncer_pid(journal) != pid
    journal.close()
    # The failed record was never acknowledged, so it never reaches the trail.
    assert [r.event_id for r in stored(store)] == [kept.event_id] + [r.event_id for r in lost[1:]]


def test_records_still_gathering_when_the_journal_closes_fail_closed(
    store: SqlStore, tmp_path: Path
) -> None:
    journal = Journal(store, tmp_path / "journal", gathering=Gathering(30.0))
    journal.gathering.calls_in_flight = 5  # more calls under way: the two records wait

    async def closed_meanwhile() -> list[BaseException | None]:
        commits = asyncio.gather(journal.commit(row), journal.commit(row), return_exceptions=True)
        await asyncio.sleep(0)  # both wait in the gathering batch
        journal.close()  # a stopping server
        return await asyncio.wait_for(commits, timeout=10)

    outcomes = asyncio.run(closed_meanwhile())
    assert all(isinstance(outcome, AuditUnavailable) for outcome in outcomes), outcomes
    assert stored(store) == []


def test_a_journal_in_a_directory_with_any_name_is_synced(store: SqlStore, tmp_path: Path) -> None:
    journal = Journal(store, tmp_path / "data\nwith a newline,\ta tab and ünïcode")
    commit_all(journal, [row(), row()])
    assert journal.batches >= 1
    journal.close()
    assert len(stored(store)) == 2


def test_the_syncer_ends_with_its_journal(store: SqlStore, tmp_path: Path) -> None:
    journal = Journal(store, tmp_path / "journal")
    commit_all(journal, [row()])
    pid = syncer_pid(journal)
    journal.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # reaped, not left behind


def test_a_dead_process_journal_is_adopted_exactly_once(
    store: SqlStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "journal"
    live = Journal(store, directory)  # a process still running: its journal is its own
    commit_all(live, [row("DescribeSecret")])
    # Another process records three reads and dies before moving them in.
    script = (
        "import asyncio, sys, time, uuid\n"
        "from pathlib import Path\n"
        "from strongroom.audit.journal import Journal\n"
        "from strongroom.storage.base import AuditEventRow\n"
        "from strongroom.storage.sql import SqlStore\n"
        "journal = Journal(SqlStore.from_url(sys.argv[1]), Path(sys.argv[2]))\n"
        "async def main():\n"
        "    for n in range(3):\n"
        "        await journal.commit(lambda: AuditEventRow(str(uuid.uuid4()), time.time(),\n"
        "            'secretsmanager.amazonaws.com', 'GetSecretValue', 'root', None,\n"
        "            f'dead/{n}', True, '{}'))\n"
        "asyncio.run(main())\n"
        "import os; os._exit(0)  # no close: as good as kill -9\n"
    )
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    subprocess.run([sys.executable, "-c", script, url, str(directory)], check=True, timeout=60)  # noqa: S603 - our own code

    # Its segment is mostly the zeros it was made with: no torn frame to warn of.
    dead = [path for path in directory.glob("*.log") if not path.name.startswith(live.owner)]
    assert all(path.stat().st_size > frames_end(path.read_bytes()) > 0 for path in dead)
    assert adopt_orphans(store, directory) == 3
    assert adopt_orphans(store, directory) == 0
    assert "dropped" not in caplog.text
    assert sorted(r.resource_name or "" for r in stored(store)) == ["dead/0", "dead/1", "dead/2"]
    assert live.ingest() == 1  # the live process's record was never taken for a dead one's
    live.close()


def test_adoption_resumes_where_a_crash_interrupted_it(
    store: SqlStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The progress of each segment is committed with its records: a crash after a commit
    and before the file was removed moves in only what was not moved in yet."""
    directory = tmp_path / "journal"
    directory.mkdir()
    rows = [row() for _ in range(4)]
    frames = [encode(r) for r in rows]
    segment = directory / "4242-deadbeef-000001.log"
    # And a torn frame at the end, then the zeros the segment was made with.
    segment.write_bytes(b"".join(frames) + frames[0][:7] + bytes(4096))
    (directory / "4242-deadbeef.lock").touch()
    with store.write() as tx:
        tx.insert_audit_events(rows[:2])
        tx.set_meta(f"audit-journal:{segment.name}", str(len(frames[0]) + len(frames[1])))

    assert adopt_orphans(store, directory) == 2
    assert "a batch cut short by a crash" in caplog.text  # the torn frame, not the zeros
    assert sorted(r.event_id for r in stored(store)) == sorted(r.event_id for r in rows)
    assert list(directory.iterdir()) == []
    with store.read() as tx:
        assert tx.get_meta(f"audit-journal:{segment.name}") is None


def test_settle_waits_until_a_live_process_has_moved_its_records_in(
    store: SqlStore, tmp_path: Path
) -> None:
    directory = tmp_path / "journal"
    journal = Journal(store, directory)
    commit_all(journal, [row()])
    assert settle(store, directory, timeout=0.2) is False  # nobody moves it in: time runs out
    mover = threading.Timer(0.2, journal.ingest)
    mover.start()
    try:
        assert settle(store, directory, timeout=10) is True
    finally:
        mover.join()
    assert len(stored(store)) == 1
    journal.close()


class _Recording:
    """``store`` noting, after each commit, whether it waited for the disk and which
    journal segments then existed: the order of commits and deletions is the contract."""

    def __init__(self, store: SqlStore, directory: Path) -> None:
        self.store = store
        self.directory = directory
        self.commits: list[tuple[str, set[str]]] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)

    @contextlib.contextmanager
    def write(self) -> Iterator[Transaction]:
        with self.store.write() as tx:
            yield tx
        self.commits.append(("durably", self._segments()))

    @contextlib.contextmanager
    def write_lazily(self) -> Iterator[Transaction]:
        with self.store.write_lazily() as tx:
            yield tx
        self.commits.append(("lazily", self._segments()))

    def _segments(self) -> set[str]:
        return {path.name for path in self.directory.glob("*.log")}


def test_rounds_commit_lazily_and_a_segment_goes_only_after_a_durable_commit(
    store: SqlStore, tmp_path: Path
) -> None:
    directory = tmp_path / "journal"
    recording = _Recording(store, directory)
    journal = Journal(cast("Store", recording), directory, segment_bytes=4096)
    first = min(directory.glob("*.log")).name
    commit_all(journal, [row() for _ in range(10)])
    journal.ingest()  # makes the next segment ready
    commit_all(journal, [row() for _ in range(10)])  # past 4 KiB: rolls into it
    journal.ingest()  # the first segment is moved in whole, and deleted
    journal.close()
    assert len(stored(store)) == 20

    kinds = [kind for kind, _ in recording.commits]
    assert "lazily" in kinds  # the rounds themselves
    gone = next(i for i, (_, segments) in enumerate(recording.commits) if first not in segments)
    # The commit just before the first segment disappeared waited for the disk, and came
    # after every lazy round that moved its records in.
    assert recording.commits[gone - 1][0] == "durably"
    assert first in recording.commits[gone - 1][1]
    assert "lazily" not in kinds[gone - 1 :]
