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
from typing import Any, Final

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


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_gzip_json(path: Path) -> Any:
    """Parse a `.json.gz` file; raises ValueError (or OSError) when it is not one."""
    try:
        return json.loads(gzip.decompress(path.read_bytes()))
    except (gzip.BadGzipFile, EOFError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path.name} is not gzipped JSON: {exc.__class__.__name__}") from exc


def digest_sequence(name: str) -> int:
    """The chain position written at the end of a digest file's name (`..._00000042.json.gz`)."""
    return int(name.removesuffix(".json.gz").rsplit("_", 1)[1])


JOURNAL: Final = "journal.jsonl"


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
    directory: Path,
    public_key: Ed25519PublicKey,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
) -> VerifyReport:
    """Check the digest chain, every log file and the journal under `directory`.

    Digests outside [start, end] still have their signature and chain link checked (that is
    cheap and keeps the chain whole); only the log files of digests overlapping the range
    are hashed and read.
    """
    report = VerifyReport()
    low = _iso(start) if start else None
    high = _iso(end) if end else None
    listed: set[str] = set()
    event_ids: set[str] = set()
    previous: tuple[str, dict[str, Any]] | None = None
    for path, digest in _load_digests(directory, public_key, report):
        name = f"{DIGESTS}/{path.name}"
        _check_link(directory, name, digest, previous, report)
        previous = (name, digest)
        files = digest.get("logFiles") or []
        listed.update(str(f.get("s3Object")) for f in files)
        if (low and digest.get("digestEndTime", "") < low) or (
            high and digest.get("digestStartTime", "") > high
        ):
            continue
        for entry in files:
            _check_log_file(directory, name, entry, event_ids, report)
    for log in sorted((directory / LOGS).glob("*.json.gz")):
        if f"{LOGS}/{log.name}" not in listed:
            report.problems.append(f"{LOGS}/{log.name}: not listed in any digest")
    _check_journal(directory / JOURNAL, event_ids, report)
    return report


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _load_digests(
    directory: Path, public_key: Ed25519PublicKey, report: VerifyReport
) -> list[tuple[Path, dict[str, Any]]]:
    """Every readable, correctly signed digest, in chain (sequence) order."""
    ordered: list[tuple[int, Path]] = []
    for path in (directory / DIGESTS).glob("*.json.gz"):
        try:
            ordered.append((digest_sequence(path.name), path))
        except (IndexError, ValueError):
            report.problems.append(f"{DIGESTS}/{path.name}: not a digest file name")
    loaded: list[tuple[Path, dict[str, Any]]] = []
    expected_fingerprint = fingerprint(public_key)
    for _, path in sorted(ordered):
        name = f"{DIGESTS}/{path.name}"
        report.digests += 1
        try:
            digest = read_gzip_json(path)
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
            loaded.append((path, digest))
    return loaded


def _check_link(
    directory: Path,
    name: str,
    digest: dict[str, Any],
    previous: tuple[str, dict[str, Any]] | None,
    report: VerifyReport,
) -> None:
    claimed = digest.get("previousDigestS3Object")
    if previous is None:
        if claimed is not None:
            if not (directory / str(claimed)).exists():
                report.problems.append(f"{claimed}: missing (previous digest of {name})")
            else:
                report.problems.append(f"{name}: previous digest {claimed} failed its checks")
        return
    previous_name, previous_digest = previous
    if claimed != previous_name:
        if claimed is None or not (directory / str(claimed)).exists():
            report.problems.append(f"{claimed}: missing (previous digest of {name})")
        else:
            report.problems.append(f"{name}: chains to {claimed}, expected {previous_name}")
        return
    previous_hash = hashlib.sha256(digest_bytes(previous_digest)).hexdigest()
    if digest.get("previousDigestSignature") != previous_digest.get("digestSignature") or (
        digest.get("previousDigestHashValue") != previous_hash
    ):
        report.problems.append(f"{name}: does not match its previous digest {previous_name}")


def _check_log_file(
    directory: Path,
    digest_name: str,
    entry: dict[str, Any],
    event_ids: set[str],
    report: VerifyReport,
) -> None:
    name = str(entry.get("s3Object"))
    path = directory / name
    report.log_files += 1
    if not path.is_file():
        report.problems.append(f"{name}: missing (listed in {digest_name})")
        return
    if sha256_file(path) != entry.get("hashValue"):
        report.problems.append(f"{name}: hash differs from {digest_name} (file altered)")
        return
    try:
        body = read_gzip_json(path)
        records = body["Records"]
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
    report.records += len(records)


def _check_ids(
    where: str, records: list[dict[str, Any]], event_ids: set[str], report: VerifyReport
) -> None:
    for record in records:
        event_id = str(record.get("eventID"))
        if event_id in event_ids:
            report.problems.append(f"{where}: eventID {event_id} appears more than once")
            return
        event_ids.add(event_id)


def _check_journal(path: Path, event_ids: set[str], report: VerifyReport) -> None:
    if not path.exists():
        return
    records: list[dict[str, Any]] = []
    for number, line in enumerate(path.read_bytes().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            report.problems.append(f"{JOURNAL} line {number}: not a JSON record")
            continue
        if isinstance(record, dict):
            records.append(record)
        else:
            report.problems.append(f"{JOURNAL} line {number}: not a JSON record")
    _check_ids(JOURNAL, records, event_ids, report)
    report.journal_records = len(records)
    if records:
        report.notes.append(
            f"{JOURNAL}: {len(records)} records not yet covered by a digest (parsed only)"
        )
