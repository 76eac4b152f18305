"""`strongroom audit verify` through click's runner, on a real audit trail in a data dir."""

from __future__ import annotations

import gzip
import json
import uuid
from pathlib import Path

from click.testing import CliRunner
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from strongroom.audit.store import SIGNING_KEY, AuditStore, load_or_create_signing_key
from strongroom.cli.main import main


def make_trail(data_dir: Path) -> Path:
    audit_dir = data_dir / "audit"
    store = AuditStore(
        audit_dir, load_or_create_signing_key(audit_dir / SIGNING_KEY), max_records=2
    )
    for n in range(5):
        store.append(
            [{"eventTime": f"2026-11-28T12:00:0{n}Z", "eventID": str(uuid.uuid4()), "n": n}]
        )
    store.close()
    return audit_dir


def test_verify_passes_on_an_intact_trail(tmp_path: Path) -> None:
    make_trail(tmp_path)
    result = CliRunner().invoke(main, ["audit", "verify", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "2 digests, 2 log files, 4 records checked; 1 records in the journal" in result.output
    assert "OK" in result.output


def test_verify_exits_1_and_names_the_altered_log_file(tmp_path: Path) -> None:
    audit_dir = make_trail(tmp_path)
    victim = next((audit_dir / "logs").iterdir())
    body = json.loads(gzip.decompress(victim.read_bytes()))
    body["Records"].reverse()
    victim.write_bytes(gzip.compress(json.dumps(body).encode()))
    result = CliRunner().invoke(main, ["audit", "verify", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert f"first broken link: logs/{victim.name}" in result.output


def test_verify_takes_a_time_range(tmp_path: Path) -> None:
    audit_dir = make_trail(tmp_path)
    for log in (audit_dir / "logs").iterdir():
        log.write_bytes(b"garbage")
    args = ["audit", "verify", "--data-dir", str(tmp_path), "--from", "2999-01-01T00:00:00Z"]
    assert CliRunner().invoke(main, args).exit_code == 0
    args[-2:] = ["--to", "2999-01-01"]
    assert CliRunner().invoke(main, args).exit_code == 1


def test_verify_refuses_a_data_dir_without_a_trail(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["audit", "verify", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "no audit trail" in result.output


def test_verify_against_a_pinned_key_of_another_installation_fails(tmp_path: Path) -> None:
    make_trail(tmp_path)
    other = load_or_create_signing_key(tmp_path / "other.key").public_key()
    pem = tmp_path / "other.pub"
    pem.write_bytes(other.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    args = ["audit", "verify", "--data-dir", str(tmp_path), "--public-key", str(pem)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert "signed by another key" in result.output
