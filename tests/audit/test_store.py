"""The audit store on real files: durable appends, group commit, rolling, and verify."""

from __future__ import annotations

import gzip
import json
import os
import stat
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from strongroom.audit.digests import VerifyReport, read_gzip_json, sha256_file, verify
from strongroom.audit.store import AuditStore, load_or_create_signing_key

KEY = Ed25519PrivateKey.generate()


def record(n: int, when: datetime | None = None) -> dict[str, Any]:
    moment = when or datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC) + timedelta(seconds=n)
    return {
        "eventTime": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventID": str(uuid.uuid4()),
        "eventName": "GetSecretValue",
        "n": n,
    }


@pytest.fixture
def audit_dir(tmp_path: Path) -> Path:
    return tmp_path / "audit"


@pytest.fixture
def filled(audit_dir: Path) -> Path:
    """Four rolled log files of 3 records each (and their digests), 2 records in the journal."""
    store = AuditStore(audit_dir, KEY, max_records=3, max_seconds=3600)
    for n in range(14):
        store.append([record(n)])
    store.close()
    return audit_dir


def logs(directory: Path) -> list[Path]:
    """Log files in the order they were rolled (their names sort by minute only)."""
    listed = [read_gzip_json(d)["logFiles"][0]["s3Object"] for d in digest_files(directory)]
    return [directory / name for name in listed]


def digest_files(directory: Path) -> list[Path]:
    return sorted((directory / "digests").glob("*.json.gz"))


def check(directory: Path) -> VerifyReport:
    return verify(directory, KEY.public_key())


def test_an_untouched_store_verifies(filled: Path) -> None:
    report = check(filled)
    assert report.ok, report.problems
    assert report.first_broken is None
    assert (report.digests, report.log_files, report.records) == (4, 4, 12)
    assert report.journal_records == 2
    assert any("not yet covered by a digest" in note for note in report.notes)


def test_log_files_use_cloudtrail_layout_and_digests_chain(filled: Path) -> None:
    assert len(list((filled / "logs").iterdir())) == 4
    first_log = logs(filled)[0]
    assert first_log.name.startswith("000000000000_CloudTrail_us-east-1_")
    body = json.loads(gzip.decompress(first_log.read_bytes()))
    assert [r["n"] for r in body["Records"]] == [0, 1, 2]
    first, second = (read_gzip_json(p) for p in digest_files(filled)[:2])
    assert first["previousDigestSignature"] is None
    assert second["previousDigestSignature"] == first["digestSignature"]
    assert second["previousDigestS3Object"] == f"digests/{digest_files(filled)[0].name}"
    assert first["digestSignatureAlgorithm"] == "Ed25519"
    assert first["logFiles"][0]["hashAlgorithm"] == "SHA-256"


def test_a_flipped_byte_in_a_log_file_is_named(filled: Path) -> None:
    victim = logs(filled)[1]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    report = check(filled)
    assert not report.ok
    assert report.first_broken is not None
    assert victim.name in report.first_broken


def test_a_dropped_log_file_is_named(filled: Path) -> None:
    victim = logs(filled)[2]
    victim.unlink()
    report = check(filled)
    assert report.first_broken is not None
    assert victim.name in report.first_broken
    assert "missing" in report.first_broken


def test_two_reordered_records_in_a_log_file_are_named(filled: Path) -> None:
    victim = logs(filled)[0]
    body = json.loads(gzip.decompress(victim.read_bytes()))
    body["Records"][0], body["Records"][1] = body["Records"][1], body["Records"][0]
    victim.write_bytes(gzip.compress(json.dumps(body).encode()))
    report = check(filled)
    assert report.first_broken is not None
    assert victim.name in report.first_broken


def test_reordered_records_are_caught_even_when_the_digest_hash_is_forged(filled: Path) -> None:
    """Without the key the digest cannot be re-signed; the order check stands on its own too."""
    victim = logs(filled)[0]
    body = json.loads(gzip.decompress(victim.read_bytes()))
    body["Records"].reverse()
    victim.write_bytes(gzip.compress(json.dumps(body).encode()))
    digest_path = digest_files(filled)[0]
    digest = read_gzip_json(digest_path)
    digest["logFiles"][0]["hashValue"] = sha256_file(victim)
    digest_path.write_bytes(gzip.compress(json.dumps(digest).encode()))
    problems = check(filled).problems
    assert any(digest_path.name in p and "signature" in p for p in problems)


def test_a_tampered_digest_is_named(filled: Path) -> None:
    victim = digest_files(filled)[1]
    digest = read_gzip_json(victim)
    digest["newestEventTime"] = "2030-01-01T00:00:00Z"
    victim.write_bytes(gzip.compress(json.dumps(digest).encode()))
    report = check(filled)
    assert report.first_broken is not None
    assert victim.name in report.first_broken


def test_a_deleted_digest_is_named(filled: Path) -> None:
    victim = digest_files(filled)[1]
    victim.unlink()
    report = check(filled)
    assert report.first_broken is not None
    assert victim.name in report.first_broken
    assert "missing" in report.first_broken


def test_deleting_the_newest_digest_leaves_its_log_file_unlisted(filled: Path) -> None:
    newest = digest_files(filled)[-1]
    its_log = read_gzip_json(newest)["logFiles"][0]["s3Object"]
    newest.unlink()
    report = check(filled)
    assert report.first_broken == f"{its_log}: not listed in any digest"


def test_another_key_fails_every_digest(filled: Path) -> None:
    report = verify(filled, Ed25519PrivateKey.generate().public_key())
    assert not report.ok
    assert report.first_broken is not None
    assert "another key" in report.first_broken


def test_a_duplicated_event_id_is_found(filled: Path) -> None:
    first = json.loads(gzip.decompress(logs(filled)[0].read_bytes()))["Records"][0]
    with (filled / "journal.jsonl").open("a") as journal:
        journal.write(json.dumps(first) + "\n")
    report = check(filled)
    assert report.first_broken is not None
    assert "journal.jsonl" in report.first_broken


def test_a_torn_journal_line_is_reported(filled: Path) -> None:
    with (filled / "journal.jsonl").open("a") as journal:
        journal.write('{"eventID": "x", "eventTi')
    assert "journal.jsonl line 3" in str(check(filled).first_broken)


def test_a_range_skips_reading_log_files_of_older_digests(filled: Path) -> None:
    logs(filled)[0].write_bytes(b"garbage")
    late = datetime.now(UTC) + timedelta(days=1)
    assert verify(filled, KEY.public_key(), start=late).ok
    assert not check(filled).ok


def test_a_reopened_store_continues_the_chain(filled: Path) -> None:
    store = AuditStore(filled, KEY, max_records=3, max_seconds=3600)
    store.append([record(100)])  # the journal held 2: this one rolls it
    store.close()
    assert len(digest_files(filled)) == 5
    report = check(filled)
    assert report.ok, report.problems
    assert report.records == 15


def test_the_journal_rolls_by_age(audit_dir: Path) -> None:
    store = AuditStore(audit_dir, KEY, max_records=1000, max_seconds=0.0)
    store.append([record(1)])
    store.close()
    assert len(logs(audit_dir)) == 1
    assert check(audit_dir).ok


def test_group_commit_writes_every_record_once_with_few_fsyncs(
    audit_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fsyncs = 0
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        nonlocal fsyncs
        fsyncs += 1
        real_fsync(fd)

    store = AuditStore(audit_dir, KEY, max_records=100_000, max_seconds=3600)
    monkeypatch.setattr(os, "fsync", counting_fsync)
    start = threading.Barrier(16)

    def worker(thread: int) -> None:
        start.wait()
        for i in range(50):
            store.commit(record(thread * 50 + i, datetime.now(UTC)))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.roll()
    store.close()
    body = json.loads(gzip.decompress(logs(audit_dir)[0].read_bytes()))
    assert sorted(r["n"] for r in body["Records"]) == list(range(800))
    assert fsyncs < 800 // 2, fsyncs
    assert check(audit_dir).ok


def test_a_failed_write_reaches_every_waiting_caller(
    audit_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = AuditStore(audit_dir, KEY)

    def failing_fsync(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="durably"):
        store.commit(record(1))
    with pytest.raises(OSError, match="disk full"):
        store.append([record(2)])


def test_the_signing_key_is_created_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "audit" / "signing.key"
    key = load_or_create_signing_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_or_create_signing_key(path)
    assert again.private_bytes_raw() == key.private_bytes_raw()


def test_a_failed_roll_keeps_the_journal_for_the_next_one(
    audit_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = AuditStore(audit_dir, KEY, max_records=2, max_seconds=3600)
    store.append([record(1)])
    real_fsync, calls = os.fsync, 0

    def fsync_failing_once_rolling(fd: int) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:  # the first is the journal's; the second the new log file's
            raise OSError("disk full")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_failing_once_rolling)
    store.append([record(2)])  # durable in the journal: the failed roll is only logged
    assert not list((audit_dir / "logs").glob("*.json.gz"))
    store.append([record(3)])  # the journal is still open, and rolls now
    store.close()
    report = check(audit_dir)
    assert report.ok, report.problems
    assert (report.records, report.journal_records) == (3, 0)
