"""The durable, tamper-evident audit store in the data dir (`<data dir>/audit/`).

Theory of operation:

- Records are appended to `journal.jsonl` as JSON lines and fsynced before `append` returns,
  so a caller answers its request only once its record is on disk (fail closed: if the
  write fails, `append` raises and the caller must fail the request).
- `commit(record)` is the group-commit door for request threads: callers queue their
  record on the open batch; whoever finds no write in progress becomes the leader, takes
  the whole open batch and writes it with one write+fsync while new callers gather in the
  next batch. Followers sleep on the condition until their batch is done (or failed).
- When the journal holds `max_records` records or is `max_seconds` old, it is rolled: its
  records (stably sorted by eventTime, as concurrent callers may finish out of order) become
  a gzip CloudTrail log file under `logs/`, then a signed digest under `digests/` lists
  that file and chains to the previous digest, then the journal is emptied.

A crash between writing the log file and its digest leaves a log file no digest lists:
`verify` reports it (it cannot tell a crash from an insertion). UNFINISHED: recovering
that state at start-up.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from strongroom.audit import digests
from strongroom.audit.digests import DIGESTS, HASH_ALGORITHM, JOURNAL, LOGS, SIGNATURE_ALGORITHM

SIGNING_KEY: Final = "signing.key"

_log = logging.getLogger(__name__)


def load_or_create_signing_key(path: Path) -> Ed25519PrivateKey:
    """The installation's digest-signing key, created (mode 0600) on first use."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = Ed25519PrivateKey.generate().private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
        )
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first: use theirs
        else:
            with os.fdopen(fd, "wb") as out:
                out.write(pem)
                out.flush()
                os.fsync(out.fileno())
    key = load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 private key")  # noqa: TRY004 - bad file content, not a bad argument
    return key


def _stamp(moment: datetime, *, seconds: bool) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ" if seconds else "%Y%m%dT%H%MZ")


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_durably(path: Path, data: bytes) -> None:
    """Write a new file via a temporary name so a crash never leaves half a file."""
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    partial.replace(path)
    _fsync_dir(path.parent)


@dataclass
class _Batch:
    records: list[dict[str, Any]] = field(default_factory=list)
    done: bool = False
    error: BaseException | None = None


@dataclass(frozen=True, slots=True)
class _ChainTip:
    path: str  # relative to the audit directory
    signature: str
    hash_value: str
    end_time: str
    sequence: int


class AuditStore:
    """Append-only CloudTrail log files with signed, chained digests in `directory`."""

    def __init__(
        self,
        directory: Path,
        signing_key: Ed25519PrivateKey,
        *,
        account_id: str = "000000000000",
        region: str = "us-east-1",
        max_records: int = 10_000,
        max_seconds: float = 300.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.directory = directory
        self._key = signing_key
        self._account_id = account_id
        self._region = region
        self._max_records = max_records
        self._max_seconds = max_seconds
        self._clock = clock
        for sub in (directory, directory / LOGS, directory / DIGESTS):
            sub.mkdir(parents=True, exist_ok=True)
        self._journal_path = directory / JOURNAL
        self._io = threading.Lock()  # one writer of the journal and the chain at a time
        self._journal = self._journal_path.open("ab")
        self._journal_count = self._count_journal()
        self._journal_opened = time.monotonic()
        self._tip = self._find_tip()
        # Group commit state, guarded by _cond.
        self._cond = threading.Condition()
        self._open = _Batch()
        self._leader_busy = False

    def close(self) -> None:
        with self._io:
            self._journal.close()

    def append(self, records: list[dict[str, Any]]) -> None:
        """Append records to the journal; durable (fsynced) when this returns, else raises."""
        if not records:
            return
        data = b"".join(json.dumps(r, separators=(",", ":")).encode() + b"\n" for r in records)
        with self._io:
            self._journal.write(data)
            self._journal.flush()
            os.fsync(self._journal.fileno())
            if self._journal_count == 0:
                self._journal_opened = time.monotonic()
            self._journal_count += len(records)
            if self._roll_due():
                try:
                    self._roll()
                except OSError:
                    # The records are durable in the journal already; a later roll retries.
                    _log.exception("rolling the audit journal failed; it stays in place")

    def commit(self, record: dict[str, Any]) -> None:
        """Append one record, sharing a write+fsync with concurrent callers; durable on return."""
        with self._cond:
            batch = self._open
            batch.records.append(record)
            while not batch.done:
                if self._leader_busy:
                    self._cond.wait()
                    continue
                # No write in progress, so our batch is still the open one: lead it.
                self._leader_busy = True
                self._open = _Batch()
                self._cond.release()
                try:
                    self.append(batch.records)
                except BaseException as exc:  # noqa: BLE001 - every waiter must hear of it
                    batch.error = exc
                finally:
                    self._cond.acquire()
                    batch.done = True
                    self._leader_busy = False
                    self._cond.notify_all()
            if batch.error is not None:
                raise OSError("the audit record could not be written durably") from batch.error

    def roll_if_due(self) -> None:
        """Roll the journal when it is old enough; for a timer, as appends also check."""
        with self._io:
            if self._journal_count and self._roll_due():
                self._roll()

    def roll(self) -> None:
        """Roll the journal now (when it holds any record)."""
        with self._io:
            if self._journal_count:
                self._roll()

    def _roll_due(self) -> bool:
        return (
            self._journal_count >= self._max_records
            or time.monotonic() - self._journal_opened >= self._max_seconds
        )

    def _count_journal(self) -> int:
        with self._journal_path.open("rb") as journal:
            return sum(1 for line in journal if line.strip())

    def _find_tip(self) -> _ChainTip | None:
        names = sorted((self.directory / DIGESTS).glob("*.json.gz"), key=lambda p: p.name)
        if not names:
            return None
        last = max(names, key=lambda p: digests.digest_sequence(p.name))
        digest = digests.read_gzip_json(last)
        return _ChainTip(
            path=f"{DIGESTS}/{last.name}",
            signature=digest["digestSignature"],
            hash_value=hashlib.sha256(digests.digest_bytes(digest)).hexdigest(),
            end_time=digest["digestEndTime"],
            sequence=digests.digest_sequence(last.name),
        )

    def _roll(self) -> None:
        """Journal → log file → digest → empty journal, each step durable before the next."""
        self._journal.close()
        try:
            lines = self._journal_path.read_bytes().splitlines()
            records = [json.loads(line) for line in lines if line.strip()]
            records.sort(key=lambda r: str(r.get("eventTime", "")))
            now = self._clock()
            stamp = _stamp(now, seconds=False)
            prefix = f"{self._account_id}_CloudTrail_{self._region}_{stamp}"
            log_path = self.directory / LOGS / f"{prefix}_{secrets.token_hex(8).upper()}.json.gz"
            _write_durably(log_path, gzip.compress(json.dumps({"Records": records}).encode()))
            self._write_digest(log_path, records, now)
            # Only now may the journal's records go: they live in a digested log file.
            with self._journal_path.open("wb") as journal:
                os.fsync(journal.fileno())
            self._journal_count = 0
        finally:
            # A failed roll keeps the journal (and its records) for the next attempt.
            self._journal = self._journal_path.open("ab")

    def _write_digest(self, log_path: Path, records: list[dict[str, Any]], now: datetime) -> None:
        times = [str(r.get("eventTime", "")) for r in records]
        tip = self._tip
        sequence = tip.sequence + 1 if tip else 1
        name = (
            f"{self._account_id}_CloudTrail-Digest_{self._region}_"
            f"{_stamp(now, seconds=True)}_{sequence:08d}.json.gz"
        )
        digest: dict[str, Any] = {
            "awsAccountId": self._account_id,
            "digestStartTime": tip.end_time if tip else min(times),
            "digestEndTime": _iso(now),
            "digestS3Object": f"{DIGESTS}/{name}",
            "digestPublicKeyFingerprint": digests.fingerprint(self._key.public_key()),
            "digestSignatureAlgorithm": SIGNATURE_ALGORITHM,
            "newestEventTime": max(times),
            "oldestEventTime": min(times),
            "previousDigestS3Object": tip.path if tip else None,
            "previousDigestHashValue": tip.hash_value if tip else None,
            "previousDigestHashAlgorithm": HASH_ALGORITHM if tip else None,
            "previousDigestSignature": tip.signature if tip else None,
            "logFiles": [
                {
                    "s3Object": f"{LOGS}/{log_path.name}",
                    "hashValue": digests.sha256_file(log_path),
                    "hashAlgorithm": HASH_ALGORITHM,
                    "newestEventTime": max(times),
                    "oldestEventTime": min(times),
                }
            ],
        }
        signed = digests.sign(digest, self._key)
        raw = digests.digest_bytes(signed)
        _write_durably(self.directory / DIGESTS / name, gzip.compress(raw))
        self._tip = _ChainTip(
            path=f"{DIGESTS}/{name}",
            signature=signed["digestSignature"],
            hash_value=hashlib.sha256(raw).hexdigest(),
            end_time=signed["digestEndTime"],
            sequence=sequence,
        )
