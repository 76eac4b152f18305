"""Sealing the audit trail on each backend: log files, chained digests, verify, retention."""

from __future__ import annotations

import gzip
import json
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from strongroom.audit.digests import DirectoryFiles, VerifyReport, verify
from strongroom.audit.redaction import iso_time
from strongroom.audit.sealing import (
    LEASE_SECONDS,
    SIGNING_KEY_META,
    Exported,
    SealPolicy,
    StoreFiles,
    TrailSealer,
    _log_file,
    _Overtaken,
    export,
    signing_key,
)
from strongroom.crypto.envelope import Sealer
from strongroom.crypto.keys import Keyring, LocalMasterKey
from strongroom.storage import schema
from strongroom.storage.base import AuditEventRow, AuditFileRow, SealableRecord
from strongroom.storage.sql import SqlStore

SEALER = Sealer(Keyring(LocalMasterKey.generate()))
START = 1_795_000_000.0  # 2026-11-18


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def add_events(store: SqlStore, count: int, at: float) -> list[str]:
    ids = []
    rows = []
    for n in range(count):
        event_id = str(uuid.uuid4())
        ids.append(event_id)
        when = at + n
        record = {
            "eventID": event_id,
            "eventTime": iso_time(when),
            "eventName": "GetSecretValue",
            "n": n,
        }
        rows.append(
            AuditEventRow(
                event_id=event_id,
                event_time=when,
                event_source="secretsmanager.amazonaws.com",
                event_name="GetSecretValue",
                user_name="root",
                access_key_id="AKIAEXAMPLE",
                resource_name="app/db",
                read_only=True,
                record=json.dumps(record),
            )
        )
    with store.write() as tx:
        tx.insert_audit_events(rows)
    return ids


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def trail(store: SqlStore, clock: Clock) -> TrailSealer:
    with store.write() as tx:
        key = signing_key(tx, SEALER)
    return TrailSealer(
        store, key, account_id="123456789012", clock=clock, policy=SealPolicy(max_records=3)
    )


@pytest.fixture
def sealed(store: SqlStore, trail: TrailSealer, clock: Clock) -> SqlStore:
    """Three log files of three records, and two records not yet sealed."""
    add_events(store, 9, START)
    clock.now += 400  # past max_seconds: due
    assert trail.seal_due() == 3
    add_events(store, 2, clock.now)  # recent, fewer than max_records: not due
    assert trail.seal_due() == 0
    return store


def check(store: SqlStore, trail: TrailSealer) -> VerifyReport:
    return verify(StoreFiles(store), trail.key.public_key())


def execute(store: SqlStore, statement: Any) -> None:
    with store.engine.begin() as conn:
        conn.execute(statement)


def files(store: SqlStore, kind: str) -> list[str]:
    with store.read() as tx:
        return [name for name, *_ in tx.audit_file_names(kind)]


def test_an_untouched_trail_verifies(sealed: SqlStore, trail: TrailSealer) -> None:
    report = check(sealed, trail)
    assert report.ok, report.problems
    assert (report.digests, report.log_files, report.records) == (3, 3, 9)
    assert report.journal_records == 2


def test_nothing_is_sealed_before_it_is_due(store: SqlStore, trail: TrailSealer) -> None:
    add_events(store, 2, START)
    assert trail.seal_due() == 0
    add_events(store, 1, START + 2)  # max_records (3) reached
    assert trail.seal_due() == 1


def test_files_use_cloudtrail_layout_and_digests_chain(
    sealed: SqlStore, trail: TrailSealer
) -> None:
    digests = files(sealed, "digest")
    assert all(d.startswith("digests/123456789012_CloudTrail-Digest_us-east-1_") for d in digests)
    assert [d[-16:] for d in digests] == [f"{n:08d}.json.gz" for n in (1, 2, 3)]
    with sealed.read() as tx:
        second = json.loads(gzip.decompress(tx.audit_file(digests[1]).content))  # type: ignore[union-attr]
        log = tx.audit_file(second["logFiles"][0]["s3Object"])
    assert second["previousDigestS3Object"] == digests[0]
    assert log is not None
    assert log.name.startswith("logs/123456789012_CloudTrail_us-east-1_")
    assert len(json.loads(gzip.decompress(log.content))["Records"]) == 3


def test_a_flipped_byte_in_a_log_file_is_named(sealed: SqlStore, trail: TrailSealer) -> None:
    victim = files(sealed, "log")[1]
    with sealed.read() as tx:
        content = bytearray(tx.audit_file(victim).content)  # type: ignore[union-attr]
    content[len(content) // 2] ^= 0x01
    table = schema.audit_files
    execute(sealed, sa.update(table).where(table.c.name == victim).values(content=bytes(content)))
    assert (
        check(sealed, trail).first_broken
        == f"{victim}: hash differs from " + files(sealed, "digest")[1] + " (file altered)"
    )


def test_a_dropped_log_file_is_named(sealed: SqlStore, trail: TrailSealer) -> None:
    victim = files(sealed, "log")[0]
    execute(sealed, sa.delete(schema.audit_files).where(schema.audit_files.c.name == victim))
    assert check(sealed, trail).first_broken.startswith(f"{victim}: missing")  # type: ignore[union-attr]


def test_two_reordered_records_are_named(sealed: SqlStore, trail: TrailSealer) -> None:
    victim = files(sealed, "log")[2]
    with sealed.read() as tx:
        body = json.loads(gzip.decompress(tx.audit_file(victim).content))  # type: ignore[union-attr]
    body["Records"][0], body["Records"][1] = body["Records"][1], body["Records"][0]
    table = schema.audit_files
    content = gzip.compress(json.dumps(body).encode())
    execute(sealed, sa.update(table).where(table.c.name == victim).values(content=content))
    assert not check(sealed, trail).ok


def test_a_deleted_digest_is_named(sealed: SqlStore, trail: TrailSealer) -> None:
    victim = files(sealed, "digest")[1]
    execute(sealed, sa.delete(schema.audit_files).where(schema.audit_files.c.name == victim))
    assert (
        check(sealed, trail).first_broken
        == f"{victim}: missing (previous digest of " + files(sealed, "digest")[1] + ")"
    )


def test_an_edited_searchable_record_is_named(sealed: SqlStore, trail: TrailSealer) -> None:
    events = schema.audit_events
    with sealed.read() as tx:
        victim = tx.audit_events_sealed_in(2)[0]
    forged = json.loads(victim.record) | {"eventName": "DescribeSecret"}
    execute(
        sealed,
        sa.update(events).where(events.c.seq == victim.seq).values(record=json.dumps(forged)),
    )
    assert check(sealed, trail).first_broken is not None
    assert f"searchable record {victim.event_id} was altered" in str(check(sealed, trail).problems)


def test_a_removed_searchable_record_is_named(sealed: SqlStore, trail: TrailSealer) -> None:
    events = schema.audit_events
    with sealed.read() as tx:
        victim = tx.audit_events_sealed_in(3)[1]
    execute(sealed, sa.delete(events).where(events.c.seq == victim.seq))
    assert "searchable records added or removed" in str(check(sealed, trail).first_broken)


def test_a_seal_that_loses_the_race_changes_nothing(store: SqlStore, trail: TrailSealer) -> None:
    add_events(store, 3, START)
    with store.write() as tx:  # another node took chain position 1 a moment ago
        tx.insert_audit_file(AuditFileRow("logs/other.json.gz", "log", 1, b"x", START))
    assert trail.seal() is None
    with store.read() as tx:
        assert len(tx.unsealed_audit_events(10)) == 3
        assert tx.newest_audit_digest() is None


def test_export_writes_a_copy_that_verifies_on_its_own(
    sealed: SqlStore, trail: TrailSealer, tmp_path: Path
) -> None:
    assert export(sealed, tmp_path / "copy") == 6
    assert export(sealed, tmp_path / "copy") == 0  # nothing new
    report = verify(DirectoryFiles(tmp_path / "copy"), trail.key.public_key())
    assert report.ok, report.problems
    log = next((tmp_path / "copy" / "logs").iterdir())
    log.write_bytes(log.read_bytes()[:-1])
    assert not verify(DirectoryFiles(tmp_path / "copy"), trail.key.public_key()).ok


def test_an_export_that_remembers_looks_only_past_what_it_wrote(
    sealed: SqlStore, trail: TrailSealer, clock: Clock, tmp_path: Path
) -> None:
    copy, since = tmp_path / "copy", Exported()
    assert export(sealed, copy, since) == 6
    assert since.written == 3
    first = min((copy / "logs").iterdir())
    first.unlink()  # gone from the copy: only an export that looks at everything notices
    add_events(sealed, 3, clock.now)
    assert trail.seal() is not None
    assert export(sealed, copy, since) == 2  # the new log file and its digest
    assert since.written == 4
    assert not first.exists()
    assert export(sealed, copy) == 1  # a fresh look puts it back
    assert verify(DirectoryFiles(copy), trail.key.public_key()).ok


def test_sealers_take_turns_through_a_lease_in_the_database(
    store: SqlStore, clock: Clock, tmp_path: Path
) -> None:
    with store.write() as tx:
        key = signing_key(tx, SEALER)
    first, second, third = (
        TrailSealer(
            store, key, account_id="123456789012", clock=clock, policy=SealPolicy(max_records=3)
        )
        for _ in range(3)
    )
    assert first.holds_lease()
    assert first.holds_lease()  # renewed
    assert not second.holds_lease()  # another process (or node) seals
    add_events(store, 3, clock.now)  # max_records: due
    assert first.seal_due() == 1
    second.mirror = tmp_path / "other-node"
    second.copy_out()  # what a process without the lease does each round: its node's copy
    assert len(list((tmp_path / "other-node" / "logs").iterdir())) == 1
    clock.now += LEASE_SECONDS + 1  # the holder stopped renewing: it died
    assert second.holds_lease()
    assert not first.holds_lease()
    stop = threading.Event()
    stop.set()
    second.run_forever(stop)  # ends at once, and gives the lease up
    assert third.holds_lease()  # at once, without waiting for it to expire


def test_a_backlog_is_sealed_a_file_at_a_time_without_waiting_for_the_next_round(
    store: SqlStore, trail: TrailSealer, clock: Clock
) -> None:
    add_events(store, 9, START)
    clock.now += 400  # three files due at once
    stop = threading.Event()
    sealer = threading.Thread(target=trail.run_forever, args=(stop, 3600.0))
    sealer.start()
    try:
        # The round comes once an hour here: only the short pause after each file can
        # bring the next ones.
        for _ in range(200):
            if len(files(store, "digest")) == 3:
                break
            stop.wait(0.05)
    finally:
        stop.set()
        sealer.join()
    assert len(files(store, "digest")) == 3
    report = check(store, trail)
    assert report.ok, report.problems


def test_retention_prunes_old_files_and_keeps_the_chain_verifiable(
    store: SqlStore, trail: TrailSealer, clock: Clock, tmp_path: Path
) -> None:
    trail.mirror = tmp_path / "mirror"
    add_events(store, 6, START)
    clock.now += 400
    assert trail.seal_due() == 2
    clock.now += 40 * 86_400
    trail.policy = SealPolicy(max_records=3, retention_days=30)
    add_events(store, 3, clock.now)
    assert trail.seal() is not None
    assert [name[-16:] for name in files(store, "digest")] == ["00000003.json.gz"]
    report = check(store, trail)
    assert report.ok, report.problems
    assert any("pruned" in note for note in report.notes)
    with store.read() as tx:
        assert len(tx.unsealed_audit_events(100)) == 0
        assert tx.audit_events_sealed_in(1) == []
    mirrored = verify(DirectoryFiles(tmp_path / "mirror"), trail.key.public_key())
    assert mirrored.ok, mirrored.problems
    assert len(list((tmp_path / "mirror" / "logs").iterdir())) == 1


def test_pruning_is_told_apart_from_deleting(
    store: SqlStore, trail: TrailSealer, clock: Clock
) -> None:
    add_events(store, 9, START)
    clock.now += 400
    assert trail.seal_due() == 3
    clock.now += 40 * 86_400
    trail.policy = SealPolicy(max_records=3, retention_days=30)
    add_events(store, 3, clock.now)
    trail.seal()  # prunes 1-3, writes 4
    add_events(store, 3, clock.now + 5)
    trail.seal()  # writes 5, chained to 4
    victim = files(store, "digest")[0]  # 4: not pruned, deleted
    execute(store, sa.delete(schema.audit_files).where(schema.audit_files.c.name == victim))
    assert check(store, trail).first_broken == (
        f"{victim}: missing (previous digest of {files(store, 'digest')[0]})"
    )


def test_the_signing_key_is_made_once_and_stored_sealed(store: SqlStore) -> None:
    with store.write() as tx:
        first = signing_key(tx, SEALER)
    with store.write() as tx:
        again = signing_key(tx, SEALER)
        stored = tx.get_meta(SIGNING_KEY_META)
    assert first.public_key().public_bytes_raw() == again.public_key().public_bytes_raw()
    assert stored is not None
    assert b"PRIVATE KEY" not in bytes.fromhex(stored)


def test_a_seal_overtaken_by_another_changes_nothing(store: SqlStore, trail: TrailSealer) -> None:
    add_events(store, 3, START)
    with store.read() as tx:
        rows, tip = tx.unsealed_audit_records(10), tx.newest_audit_digest()
    assert trail.seal() is not None  # another sealer, first
    with pytest.raises(_Overtaken), store.write() as tx:
        trail._seal(tx, rows, tip, _log_file(rows))
    assert check(store, trail).ok


def test_a_record_committed_late_inside_the_range_waits_for_the_next_seal(
    store: SqlStore, trail: TrailSealer
) -> None:
    """On PostgreSQL a record can commit after records with later positions: a seal that did
    not see it must not mark it sealed without writing it."""
    events = schema.audit_events
    template = {
        "event_time": START,
        "event_source": "secretsmanager.amazonaws.com",
        "event_name": "GetSecretValue",
        "read_only": True,
    }

    def insert(seq: int) -> None:
        record = json.dumps({"eventID": f"e{seq}", "eventTime": iso_time(START)})
        values = {"seq": seq, "event_id": f"e{seq}", "record": record, **template}
        execute(store, sa.insert(events).values(values))

    insert(10)
    insert(12)
    with store.read() as tx:
        rows, tip = tx.unsealed_audit_records(10), tx.newest_audit_digest()
    insert(11)  # committed late
    with pytest.raises(_Overtaken), store.write() as tx:
        trail._seal(tx, rows, tip, _log_file(rows))
    assert trail.seal() is not None  # the next round takes all three
    report = check(store, trail)
    assert report.ok, report.problems
    assert report.records == 3


@pytest.mark.parametrize("count", [0, 1, 255, 256, 257, 700])
def test_a_log_file_holds_every_record_in_order_however_many_writes_it_takes(count: int) -> None:
    rows = [
        SealableRecord(n, START + n, json.dumps({"eventID": f"e{n}", "n": n})) for n in range(count)
    ]
    content = _log_file(rows)
    assert json.loads(gzip.decompress(content)) == {
        "Records": [{"eventID": f"e{n}", "n": n} for n in range(count)]
    }
