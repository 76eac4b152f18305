"""Sealing the trail: records → CloudTrail log files → signed, chained digests.

Theory of operation
-------------------
- Calls leave their records in ``audit_events`` (``trail``). A sealer (one per server
  process) takes the oldest unsealed records, at most ``max_records`` of them, once the
  oldest is ``max_seconds`` old or there are ``max_records`` waiting, and in ONE write
  transaction: writes them as a gzip CloudTrail log file, writes a digest listing that
  file's SHA-256 and chained to the previous digest (its hash and signature), signed with
  the installation's Ed25519 key, and marks the records sealed. A crash leaves either all
  of it or none of it, so there is no half-rolled state to repair.
- Every node may run a sealer: the chain position (``audit_files`` kind + sequence) is
  unique, so when two seal at once one transaction fails and changes nothing.
- Retention: a seal also drops the digests, log files and records older than the
  retention period, and the new digest says how far it pruned (``prunedThrough``, covered
  by its signature), so verify can tell pruning from deletion.
- The files also go to ``<data dir>/audit/`` as CloudTrail lays them out (``export``);
  verify can check either copy.
- The signing key lives in the database sealed under the master key (every node reads
  the same key); its public key is stored beside it in the clear, for verify.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

from strongroom.audit import digests
from strongroom.audit.digests import DIGESTS, HASH_ALGORITHM, LOGS, SIGNATURE_ALGORITHM
from strongroom.audit.redaction import iso_time
from strongroom.crypto.envelope import Sealer, aad_for_audit_key
from strongroom.durable import sync_folder
from strongroom.storage.base import (
    AuditFileRow,
    ConstraintViolation,
    SealableRecord,
    Store,
    Transaction,
)

logger = logging.getLogger("strongroom.audit")

SIGNING_KEY_META: Final = "audit_signing_key"  # sealed PKCS#8 PEM, hex
PUBLIC_KEY_META: Final = "audit_public_key"  # PEM
AUDIT_DIR: Final = "audit"
SEALER_LEASE_META: Final = "audit_sealer_lease"  # "<owner> <until>": who seals now
LEASE_SECONDS: Final = 15.0
DAY: Final = 86_400.0
_RECORDS_PER_WRITE: Final = 256  # about 330 KB of JSON
# Between log files sealed one after another: up to about eight files (16,000 records) a
# second, beyond what 2 cores serve; a seal itself takes 10-25 ms under load.
_NEXT_SEAL_SECONDS: Final = 0.1


def signing_key(tx: Transaction, sealer: Sealer) -> Ed25519PrivateKey:
    """The installation's digest-signing key; made (and stored sealed) on first use."""
    stored = tx.get_meta(SIGNING_KEY_META)
    if stored is None:
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        tx.set_meta(SIGNING_KEY_META, sealer.seal(pem, aad_for_audit_key()).hex())
        tx.set_meta(PUBLIC_KEY_META, public_pem(key.public_key()).decode())
        return key
    loaded = load_pem_private_key(sealer.open(bytes.fromhex(stored), aad_for_audit_key()), None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise TypeError("the stored audit signing key is not an Ed25519 key")
    return loaded


def stored_public_key(tx: Transaction) -> Ed25519PublicKey | None:
    pem = tx.get_meta(PUBLIC_KEY_META)
    if pem is None:
        return None
    key = load_pem_public_key(pem.encode())
    if not isinstance(key, Ed25519PublicKey):
        raise TypeError("the stored audit public key is not an Ed25519 key")
    return key


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True, slots=True)
class SealPolicy:
    # Records per log file: what a seal holds in memory at once (about 1 KB each, twice);
    # 2,000 keeps a busy server near its memory budget (bench: peak RSS 209 vs 238 MiB at 5,000).
    max_records: int = 2_000
    max_seconds: float = 300.0  # the longest a record waits to be sealed (CloudTrail: ~5 min)
    retention_days: float | None = None  # None: keep everything


class StoreFiles:
    """``digests.TrailFiles`` over the database: what verify checks on a live installation."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def names(self, folder: str) -> list[str]:
        kind = "log" if folder == LOGS else "digest"
        with self.store.read() as tx:
            rows = tx.audit_file_names(kind)
        return [name.removeprefix(folder + "/") for name, *_ in rows]

    def read(self, name: str) -> bytes | None:
        with self.store.read() as tx:
            row = tx.audit_file(name)
        return None if row is None else row.content

    def journal(self) -> list[Any]:
        with self.store.read() as tx:
            rows = tx.unsealed_audit_events(limit=10_000_000)
        return [_parse(row.record) for row in rows]

    def indexed_records(self, sequence: int) -> list[Any] | None:
        with self.store.read() as tx:
            rows = tx.audit_events_sealed_in(sequence)
        return [_parse(row.record) for row in rows]


def _parse(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # verify reports it as not a record


class TrailSealer:
    """Seals the trail of one installation (see the module doc)."""

    def __init__(
        self,
        store: Store,
        key: Ed25519PrivateKey,
        *,
        account_id: str,
        region: str = "us-east-1",
        clock: Callable[[], float],
        policy: SealPolicy | None = None,
        mirror: Path | None = None,
    ) -> None:
        self.store = store
        self.key = key
        self.account_id = account_id
        self.region = region
        self.clock = clock
        self.policy = policy or SealPolicy()
        self.mirror = mirror
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._exported = Exported()
        self._fingerprint = digests.fingerprint(key.public_key())

    def seal_due(self) -> int:
        """Seal while a log file is due; returns how many files were written."""
        written = 0
        while self._due():
            if self.seal() is None:
                break
            written += 1
        return written

    def seal(self) -> str | None:
        """Seal the oldest unsealed records now; the new digest's name, or None if none.

        None as well when another node sealed at the same moment (its file stands)."""
        # Read and compress outside any write transaction: thousands of records must not
        # hold the write lock (on SQLite every call's record waits for it).
        with self.store.read() as tx:
            rows = tx.unsealed_audit_records(self.policy.max_records)
            tip = tx.newest_audit_digest()
        if not rows:
            return None
        # By time (whole seconds, as eventTime shows), stably: the records are joined as
        # stored, without parsing each one again.
        rows.sort(key=lambda row: (int(row.event_time), row.seq))
        log_content = _log_file(rows)
        try:
            with self.store.write() as tx:
                name = self._seal(tx, rows, tip, log_content)
        except (ConstraintViolation, _Overtaken):
            logger.info("another node sealed the same audit records first; sealing again later")
            return None
        self.copy_out()
        return name

    def copy_out(self) -> None:
        """Bring the copy in ``mirror`` up to date (every node keeps one in its data dir)."""
        if self.mirror is None:
            return
        try:
            export(self.store, self.mirror, self._exported)
        except OSError:
            logger.exception("copying the audit files to %s failed", self.mirror)

    def run_forever(self, stop: threading.Event, interval: float = 1.0) -> None:
        # Every second: a busy server's records are sealed a few thousand at a time rather
        # than in bursts, which showed as the slowest replies. One log file per wake-up, the
        # next (when more are due) after a short pause: under load, files sealed back to
        # back held up the event loop for 50-100 ms each second (bench: p99 at 32
        # connections 10.7 against 11.5 ms, four interleaved rounds each).
        try:
            while not stop.is_set():
                wait = interval
                try:
                    if self.holds_lease():
                        if self._due() and self.seal() is not None:
                            wait = _NEXT_SEAL_SECONDS
                    else:
                        self.copy_out()  # another process seals: keep this node's copy
                except Exception:
                    logger.exception("sealing the audit trail failed; retrying")
                stop.wait(wait)
        finally:
            self._give_up_lease()

    def holds_lease(self) -> bool:
        """Take or renew the installation's sealing lease; False while another process holds
        it. The server processes and nodes take turns through it rather than all reading
        the same records to seal them once (one would win, the others' work be thrown
        away). A holder that dies loses it after ``LEASE_SECONDS``. Two that take it at the
        same moment are still safe: the chain position lets only one seal."""
        now = self.clock()
        with self.store.read() as tx:
            owner, until = _lease(tx.get_meta(SEALER_LEASE_META))
        if owner == self.owner and until - now > LEASE_SECONDS / 2:
            return True  # renewed lately: no write (an idle server would sync every second)
        if owner not in ("", self.owner) and until > now:
            return False
        with self.store.write() as tx:
            owner, until = _lease(tx.get_meta(SEALER_LEASE_META))
            if owner not in ("", self.owner) and until > now:
                return False
            tx.set_meta(SEALER_LEASE_META, f"{self.owner} {now + LEASE_SECONDS}")
        return True

    def _give_up_lease(self) -> None:
        try:
            with self.store.write() as tx:
                if _lease(tx.get_meta(SEALER_LEASE_META))[0] == self.owner:
                    tx.delete_meta(SEALER_LEASE_META)  # the next process need not wait it out
        except Exception:
            logger.exception("giving up the audit sealing lease failed; it expires by itself")

    def _due(self) -> bool:
        with self.store.read() as tx:
            oldest = tx.unsealed_audit_events(limit=1)
            if not oldest:
                return False
            if self.clock() - oldest[0].event_time >= self.policy.max_seconds:
                return True
            return tx.unsealed_audit_count_reaches(self.policy.max_records)

    def _seal(
        self,
        tx: Transaction,
        rows: list[SealableRecord],
        tip: AuditFileRow | None,
        log_content: bytes,
    ) -> str:
        current = tx.newest_audit_digest()
        if (current and current.name) != (tip and tip.name):
            raise _Overtaken
        previous = digests.gzip_json(tip.content) if tip else None
        sequence = (tip.sequence if tip else 0) + 1
        # Exactly the records read: a record committed since (out of position order, on a
        # server database) makes the count differ, and the next round includes it.
        first, last = min(row.seq for row in rows), max(row.seq for row in rows)
        if tx.mark_audit_events_sealed(first, last, sequence) != len(rows):
            raise _Overtaken
        now = self.clock()
        oldest, newest = iso_time(rows[0].event_time), iso_time(rows[-1].event_time)
        stamp = datetime.fromtimestamp(now, UTC)
        log_name = (
            f"{LOGS}/{self.account_id}_CloudTrail_{self.region}_"
            f"{stamp.strftime('%Y%m%dT%H%MZ')}_{secrets.token_hex(8).upper()}.json.gz"
        )
        pruned = max(
            self._prune(tx, now, sequence), int((previous or {}).get("prunedThrough") or 0)
        )
        digest_name = (
            f"{DIGESTS}/{self.account_id}_CloudTrail-Digest_{self.region}_"
            f"{stamp.strftime('%Y%m%dT%H%M%SZ')}_{sequence:08d}.json.gz"
        )
        digest: dict[str, Any] = {
            "awsAccountId": self.account_id,
            "digestStartTime": previous["digestEndTime"] if previous else oldest,
            "digestEndTime": iso_time(now),
            "digestS3Object": digest_name,
            "digestPublicKeyFingerprint": self._fingerprint,
            "digestSignatureAlgorithm": SIGNATURE_ALGORITHM,
            "newestEventTime": newest,
            "oldestEventTime": oldest,
            "previousDigestS3Object": tip.name if tip else None,
            "previousDigestHashValue": (
                hashlib.sha256(digests.digest_bytes(previous)).hexdigest() if previous else None
            ),
            "previousDigestHashAlgorithm": HASH_ALGORITHM if previous else None,
            "previousDigestSignature": previous["digestSignature"] if previous else None,
            "logFiles": [
                {
                    "s3Object": log_name,
                    "hashValue": hashlib.sha256(log_content).hexdigest(),
                    "hashAlgorithm": HASH_ALGORITHM,
                    "newestEventTime": newest,
                    "oldestEventTime": oldest,
                }
            ],
        }
        if pruned:
            digest["prunedThrough"] = pruned  # Strongroom's: how far retention removed the chain
        signed = digests.sign(digest, self.key)
        end = rows[-1].event_time
        tx.insert_audit_file(AuditFileRow(log_name, "log", sequence, log_content, end))
        digest_content = gzip.compress(digests.digest_bytes(signed), mtime=0)
        tx.insert_audit_file(AuditFileRow(digest_name, "digest", sequence, digest_content, now))
        return digest_name

    def _prune(self, tx: Transaction, now: float, sequence: int) -> int:
        """Drop what is older than the retention period; the chain position pruned through."""
        days = self.policy.retention_days
        if days is None:
            return 0
        horizon = now - days * DAY
        expired = [seq for _, _, seq, end in tx.audit_file_names("digest") if end < horizon]
        if not expired:
            return 0
        through = min(max(expired), sequence - 1)
        tx.delete_audit_events_sealed_through(through)
        tx.delete_audit_files_through("log", through)
        tx.delete_audit_files_through("digest", through)
        logger.info("audit retention: pruned digests and log files through %d", through)
        return through


def _log_file(rows: list[SealableRecord]) -> bytes:
    """The gzip CloudTrail log file of ``rows``, compressed as it is written: a batch of
    thousands of records is never held whole a second time, as text or as bytes. A few
    hundred records go in per write: one write per record cost more in ``GzipFile``'s own
    Python than the compression, all of it holding the GIL that the event loop waits for
    (zlib lets go of it while it compresses)."""
    out = io.BytesIO()
    # The fastest level: half the CPU of the default for files about 14% larger, and the
    # sealer's CPU is taken from the requests of the process it runs in.
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=1, mtime=0) as log:
        log.write(b'{"Records":[')
        for start in range(0, len(rows), _RECORDS_PER_WRITE):
            chunk = ",".join(row.record for row in rows[start : start + _RECORDS_PER_WRITE])
            log.write((chunk if start == 0 else "," + chunk).encode())
        log.write(b"]}")
    return out.getvalue()


def _lease(text: str | None) -> tuple[str, float]:
    """(holder, until) of the stored sealing lease; ("", 0.0) when there is none."""
    if text is None:
        return "", 0.0
    owner, _, until = text.rpartition(" ")
    return owner, float(until)


class _Overtaken(Exception):
    """Another sealer changed the chain or the records since they were read."""


@dataclass(slots=True)
class Exported:
    """How far a copy made by ``export`` is known to be up to date: the chain positions
    through which files were written, and through which pruned files were dropped."""

    written: int = 0
    pruned: int = 0


def export(store: Store, directory: Path, since: Exported | None = None) -> int:
    """Write the sealed files to ``directory`` as CloudTrail lays them out, and drop there
    what retention pruned (only that: a file missing from the database for any other reason
    stays in the copy, as evidence). Returns how many files were written.

    ``since``: what an earlier call already did (updated here), so that a server that seals
    every second looks only at the new files rather than at every file ever sealed."""
    since = since or Exported()
    with store.read() as tx:
        stored = [
            name
            for kind in ("log", "digest")
            for name, *_ in tx.audit_file_names(kind, after=since.written)
        ]
        tip = tx.newest_audit_digest()
    for folder in (LOGS, DIGESTS):
        (directory / folder).mkdir(parents=True, exist_ok=True)
    written = 0
    for name in stored:
        path = directory / name
        if path.exists():
            continue
        with store.read() as tx:
            row = tx.audit_file(name)
        if row is not None:
            _write_durably(path, row.content)
            written += 1
    pruned = int(digests.gzip_json(tip.content).get("prunedThrough") or 0) if tip else 0
    if tip is not None:
        since.written = max(since.written, tip.sequence)
    if pruned > since.pruned:
        _drop_pruned(directory, pruned)
        since.pruned = pruned
    return written


def _drop_pruned(directory: Path, pruned: int) -> None:
    """Remove from the copy the digests through chain position ``pruned`` and the log
    files they list."""
    for path in (directory / DIGESTS).glob("*.json.gz"):
        try:
            if digests.digest_sequence(path.name) > pruned:
                continue
            listed = digests.gzip_json(path.read_bytes()).get("logFiles") or []
        except (IndexError, ValueError, OSError):
            continue
        for entry in listed:
            (directory / str(entry.get("s3Object"))).unlink(missing_ok=True)
        path.unlink()


def _write_durably(path: Path, data: bytes) -> None:
    """A new file via a temporary name, fsynced, so a crash never leaves half a file."""
    # A name of this writer's own: every server process of a data dir copies the same files.
    partial = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.partial")
    with partial.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    partial.replace(path)
    sync_folder(path.parent)
