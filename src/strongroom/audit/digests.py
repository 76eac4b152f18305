"""CloudTrail-style digest files: signed, chained lists of log-file hashes.

A digest names the log files rolled since the previous digest with the SHA-256 of each,
and carries the previous digest's hash, path and signature, so its own Ed25519 signature
(over its canonical content, which includes that previous signature) chains every digest to
the one before it. The layout follows CloudTrail's digest format ("CloudTrail digest file
structure" in the CloudTrail user guide) as far as it applies to files on local disk:

- `s3Object` / `digestS3Object` / `previousDigestS3Object` hold paths relative to the
  audit directory; there is no bucket.
- CloudTrail signs with RSA and keeps the signature in S3 object metadata; we sign with
  Ed25519 and keep the hex signature in the file as `digestSignature` (the signed content is
  the digest without that member).
- `hashValue` is the SHA-256 of the log file as stored (gzip bytes). UNCONFIRMED deviation:
  CloudTrail documents the hash of the uncompressed content; hashing the stored bytes also
  catches edits to the gzip framing.
- `previousDigestHashValue` is the SHA-256 of the previous digest's uncompressed JSON.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

SIGNATURE_ALGORITHM: Final = "Ed25519"
HASH_ALGORITHM: Final = "SHA-256"
LOGS: Final = "logs"
DIGESTS: Final = "digests"


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """SHA-256 hex of the raw public key (CloudTrail uses MD5 of its RSA key)."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def canonical(digest: dict[str, Any]) -> bytes:
    """The bytes a digest's signature covers: every member but the signature, sorted."""
    content = {k: v for k, v in digest.items() if k != "digestSignature"}
    return json.dumps(content, sort_keys=True, separators=(",", ":")).encode()


def sign(digest: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    return digest | {"digestSignature": key.sign(canonical(digest)).hex()}


def signature_valid(digest: dict[str, Any], public_key: Ed25519PublicKey) -> bool:
    signature = digest.get("digestSignature")
    if not isinstance(signature, str):
        return False
    try:
        public_key.verify(bytes.fromhex(signature), canonical(digest))
    except (InvalidSignature, ValueError):
        return False
    return True


def digest_bytes(digest: dict[str, Any]) -> bytes:
    """The uncompressed JSON written to disk; its hash is the next digest's previous hash."""
    return json.dumps(digest, sort_keys=True, separators=(",", ":")).encode()


def gzip_json(raw: bytes) -> Any:
    """Parse a `.json.gz` file's bytes; raises ValueError when they are not gzipped JSON."""
    try:
        return json.loads(gzip.decompress(raw))
    except (gzip.BadGzipFile, EOFError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not gzipped JSON: {exc.__class__.__name__}") from exc


def digest_sequence(name: str) -> int:
    """The chain position written at the end of a digest file's name (`..._00000042.json.gz`)."""
    return int(name.removesuffix(".json.gz").rsplit("_", 1)[1])


JOURNAL: Final = "journal"  # what reports call the records not yet sealed


class TrailFiles(Protocol):
    """Where verify reads a trail from: the database (``sealing.StoreFiles``) or a directory
    of exported files (``DirectoryFiles``). Names are ``logs/<file>`` / ``digests/<file>``."""

    def names(self, folder: str) -> list[str]:
        """The file names (without the folder) stored under ``folder``."""

    def read(self, name: str) -> bytes | None:
        """The stored bytes, or None when there is no such file."""

    def journal(self) -> list[Any]:
        """Records not yet sealed into a log file (parsed JSON)."""

    def indexed_records(self, sequence: int) -> list[Any] | None:
        """The searchable copy of the records of the log file at ``sequence`` (None: none kept)."""


class DirectoryFiles:
    """A trail exported to a directory (``strongroom audit export``)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def names(self, folder: str) -> list[str]:
        return sorted(p.name for p in (self.directory / folder).glob("*.json.gz"))

    def read(self, name: str) -> bytes | None:
        path = self.directory / name
        return path.read_bytes() if path.is_file() else None

    def journal(self) -> list[Any]:
        return []

    def indexed_records(self, sequence: int) -> list[Any] | None:  # noqa: ARG002 - protocol
        return None


@dataclass
class VerifyReport:
    """What `verify` found; `first_broken` names the earliest broken link in chain order."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    digests: int = 0
    log_files: int = 0
    records: int = 0
    journal_records: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_broken(self) -> str | None:
        return self.problems[0] if self.problems else None


def verify(
    files: TrailFiles,
    public_key: Ed25519PublicKey,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
) -> VerifyReport:
    """Check the digest chain, every log file and the unsealed records of a trail.

    Digests outside [start, end] still have their signature and chain link checked (that is
    cheap and keeps the chain whole); only the log files of digests overlapping the range
    are hashed and read. Digests and log files that retention pruned are allowed to be
    missing only up to the position a later, signed digest says was pruned (`prunedThrough`).
    """
    report = VerifyReport()
    low = _iso(start) if start else None
    high = _iso(end) if end else None
    listed: set[str] = set()
    event_ids: set[str] = set()
    loaded = _load_digests(files, public_key, report)
    pruned = max((int(d.get("prunedThrough") or 0) for _, d in loaded), default=0)
    if pruned:
        report.notes.append(f"digests 1-{pruned} and their log files were pruned by retention")
    previous: tuple[str, dict[str, Any]] | None = None
    for name, digest in loaded:
        _check_link(files, name, digest, previous, pruned, report)
        previous = (name, digest)
        entries = digest.get("logFiles") or []
        listed.update(str(f.get("s3Object")) for f in entries)
        if (low and digest.get("digestEndTime", "") < low) or (
            high and digest.get("digestStartTime", "") > high
        ):
            continue
        for entry in entries:
            _check_log_file(files, name, entry, event_ids, report)
    for log in files.names(LOGS):
        if f"{LOGS}/{log}" not in listed:
            report.problems.append(f"{LOGS}/{log}: not listed in any digest")
    journal = files.journal()
    _check_ids(JOURNAL, journal, event_ids, report)
    report.journal_records = len(journal)
    if journal:
        report.notes.append(f"{len(journal)} records not yet sealed into a log file (parsed only)")
    return report


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _gzip_json(files: TrailFiles, name: str) -> Any:
    raw = files.read(name)
    if raw is None:
        raise FileNotFoundError(name)
    return gzip_json(raw)


def _load_digests(
    files: TrailFiles, public_key: Ed25519PublicKey, report: VerifyReport
) -> list[tuple[str, dict[str, Any]]]:
    """Every readable, correctly signed digest, in chain (sequence) order."""
    ordered: list[tuple[int, str]] = []
    for file_name in files.names(DIGESTS):
        try:
            ordered.append((digest_sequence(file_name), f"{DIGESTS}/{file_name}"))
        except (IndexError, ValueError):
            report.problems.append(f"{DIGESTS}/{file_name}: not a digest file name")
    loaded: list[tuple[str, dict[str, Any]]] = []
    expected_fingerprint = fingerprint(public_key)
    for _, name in sorted(ordered):
        report.digests += 1
        try:
            digest = _gzip_json(files, name)
        except (OSError, ValueError) as exc:
            report.problems.append(f"{name}: unreadable ({exc})")
            continue
        if not isinstance(digest, dict):
            report.problems.append(f"{name}: not a digest object")
        elif digest.get("digestPublicKeyFingerprint") != expected_fingerprint:
            report.problems.append(f"{name}: signed by another key (fingerprint differs)")
        elif not signature_valid(digest, public_key):
            report.problems.append(f"{name}: signature does not verify (digest altered)")
        elif digest.get("digestS3Object") != name:
            report.problems.append(f"{name}: says it is {digest.get('digestS3Object')}")
        else:
            loaded.append((name, digest))
    return loaded


def _check_link(  # noqa: PLR0917 - the chain walk's state, passed along
    files: TrailFiles,
    name: str,
    digest: dict[str, Any],
    previous: tuple[str, dict[str, Any]] | None,
    pruned: int,
    report: VerifyReport,
) -> None:
    claimed = digest.get("previousDigestS3Object")
    if previous is None:
        if claimed is None:
            return
        if files.read(str(claimed)) is not None:
            report.problems.append(f"{name}: previous digest {claimed} failed its checks")
        elif not _pruned(str(claimed), pruned):
            report.problems.append(f"{claimed}: missing (previous digest of {name})")
        return
    previous_name, previous_digest = previous
    if claimed != previous_name:
        if claimed is None or files.read(str(claimed)) is None:
            report.problems.append(f"{claimed}: missing (previous digest of {name})")
        else:
            report.problems.append(f"{name}: chains to {claimed}, expected {previous_name}")
        return
    previous_hash = hashlib.sha256(digest_bytes(previous_digest)).hexdigest()
    if digest.get("previousDigestSignature") != previous_digest.get("digestSignature") or (
        digest.get("previousDigestHashValue") != previous_hash
    ):
        report.problems.append(f"{name}: does not match its previous digest {previous_name}")


def _pruned(digest_name: str, pruned: int) -> bool:
    try:
        return digest_sequence(digest_name) <= pruned
    except (IndexError, ValueError):
        return False


def _check_log_file(
    files: TrailFiles,
    digest_name: str,
    entry: dict[str, Any],
    event_ids: set[str],
    report: VerifyReport,
) -> None:
    name = str(entry.get("s3Object"))
    report.log_files += 1
    raw = files.read(name)
    if raw is None:
        report.problems.append(f"{name}: missing (listed in {digest_name})")
        return
    if hashlib.sha256(raw).hexdigest() != entry.get("hashValue"):
        report.problems.append(f"{name}: hash differs from {digest_name} (file altered)")
        return
    try:
        records = _gzip_json(files, name)["Records"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        report.problems.append(f"{name}: unreadable ({exc})")
        return
    times = [str(r.get("eventTime", "")) for r in records]
    if times != sorted(times):
        report.problems.append(f"{name}: records out of time order")
    elif times and (times[0], times[-1]) != (
        entry.get("oldestEventTime"),
        entry.get("newestEventTime"),
    ):
        report.problems.append(f"{name}: event times differ from {digest_name}")
    _check_ids(name, records, event_ids, report)
    _check_index(files, name, digest_sequence(digest_name), records, report)
    report.records += len(records)


def _check_index(
    files: TrailFiles, name: str, sequence: int, records: list[Any], report: VerifyReport
) -> None:
    """The searchable copy (what lookup shows) must say what the sealed file says."""
    indexed = files.indexed_records(sequence)
    if indexed is None:
        return
    sealed = {str(r.get("eventID")): r for r in records}
    copy = {str(r.get("eventID")): r for r in indexed}
    if sealed.keys() != copy.keys():
        report.problems.append(f"{name}: searchable records added or removed since sealing")
        return
    for event_id, record in sealed.items():
        if copy[event_id] != record:
            report.problems.append(f"{name}: searchable record {event_id} was altered")
            return


def _check_ids(where: str, records: list[Any], event_ids: set[str], report: VerifyReport) -> None:
    for record in records:
        event_id = str(record.get("eventID")) if isinstance(record, dict) else None
        if event_id is None:
            report.problems.append(f"{where}: not a record: {str(record)[:80]}")
            return
        if event_id in event_ids:
            report.problems.append(f"{where}: eventID {event_id} appears more than once")
            return
        event_ids.add(event_id)
