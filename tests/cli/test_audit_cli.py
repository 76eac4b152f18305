"""`strongroom audit verify / seal / export / public-key` through click's runner, on an
installation whose calls were recorded by a real server."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from tests.conftest import start_server

from strongroom.cli.main import main
from strongroom.storage import schema


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def installation(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir where a server answered a few calls, then stopped."""
    data_dir = tmp_path_factory.mktemp("installation")
    server = start_server(data_dir)
    try:
        client = server.client()
        client.create_secret(Name="app/db", SecretString="canary-value-1")
        client.get_secret_value(SecretId="app/db")
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            client.describe_secret(SecretId="missing")
    finally:
        server.stop()
    return data_dir


def flags(data_dir: Path) -> list[str]:
    return ["--data-dir", str(data_dir)]


def test_seal_then_verify_passes_on_an_intact_trail(installation: Path) -> None:
    code, output = run("audit", "seal", *flags(installation))
    assert code == 0, output
    assert "1 log files sealed" in output
    copies = sorted(p.parent.name for p in (installation / "audit").rglob("*.json.gz"))
    assert copies == ["digests", "logs"]  # copied into the data dir, as a server's seal does
    code, output = run("audit", "verify", *flags(installation))
    assert code == 0, output
    assert "1 digests, 1 log files, 3 records checked" in output
    assert "OK" in output


def test_export_then_verify_the_copy(installation: Path, tmp_path: Path) -> None:
    run("audit", "seal", *flags(installation))
    code, output = run("audit", "export", str(tmp_path / "copy"), *flags(installation))
    assert code == 0, output
    assert sorted(p.name for p in (tmp_path / "copy").iterdir()) == ["digests", "logs"]
    code, output = run("audit", "verify", "--dir", str(tmp_path / "copy"), *flags(installation))
    assert code == 0, output
    log = next((tmp_path / "copy" / "logs").iterdir())
    log.write_bytes(log.read_bytes()[:-2])
    code, output = run("audit", "verify", "--dir", str(tmp_path / "copy"), *flags(installation))
    assert code == 1
    assert f"first broken link: logs/{log.name}: hash differs" in output


def test_verify_exits_1_and_names_an_altered_log_file(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = start_server(data_dir)
    server.client().list_secrets()
    server.uv.should_exit = True
    server.settle_audit()
    assert server.app.services["audit_sealer"].seal() is not None
    engine = server.installation.store.engine
    files = schema.audit_files
    with engine.begin() as conn:
        name = conn.execute(sa.select(files.c.name).where(files.c.kind == "log")).scalar_one()
        conn.execute(sa.update(files).where(files.c.name == name).values(content=b"garbage"))
    server.stop()
    code, output = run("audit", "verify", *flags(data_dir))
    assert code == 1
    assert f"first broken link: {name}: hash differs" in output


def test_verify_against_a_pinned_key_of_another_installation_fails(
    installation: Path, tmp_path: Path
) -> None:
    run("audit", "seal", *flags(installation))
    other = Ed25519PrivateKey.generate().public_key()
    pem = tmp_path / "other.pub"
    pem.write_bytes(other.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    code, output = run("audit", "verify", "--public-key", str(pem), *flags(installation))
    assert code == 1
    assert "signed by another key" in output


def test_the_printed_public_key_pins_verify(installation: Path, tmp_path: Path) -> None:
    run("audit", "seal", *flags(installation))
    code, pem = run("audit", "public-key", *flags(installation))
    assert code == 0
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    (tmp_path / "mine.pub").write_text(pem)
    code, output = run(
        "audit", "verify", "--public-key", str(tmp_path / "mine.pub"), *flags(installation)
    )
    assert code == 0, output


def test_master_key_rotation_keeps_the_signing_key(installation: Path) -> None:
    _, before = run("audit", "public-key", *flags(installation))
    code, output = run("master-key", "rotate", *flags(installation))
    assert code == 0, output
    _, after = run("audit", "public-key", *flags(installation))
    assert after == before
