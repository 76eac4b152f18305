"""Each sealed value is bound to its secret's ARN and its version id (crypto.envelope AAD).

Someone with write access to the database but not the master key can move ciphertext around;
they must never get a value served under another name. These tests do exactly that with
sqlite3 on a server of their own (so the shared one is not corrupted), then read through the
API: the answer is DecryptionFailure, never the moved value and never a 500.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.conftest import start_server

REGION = "us-west-2"


@pytest.fixture(scope="module")
def own_server(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("binding"))
    yield server
    server.stop()


@pytest.fixture
def sm(own_server):
    return own_server.client(REGION)


@pytest.fixture
def db(own_server):
    """Run one SQL statement on the server's database, committed."""
    path: Path = own_server.data_dir / "strongroom.db"

    def execute(sql: str, *params: Any) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(path, timeout=30)
        try:
            with conn:
                return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    return execute


def sealed_of(db, version_id: str) -> bytes:
    ((blob,),) = db("SELECT sealed FROM secret_versions WHERE version_id = ?", version_id)
    return bytes(blob)


def overwrite(db, version_id: str, blob: bytes) -> None:
    db("UPDATE secret_versions SET sealed = ? WHERE version_id = ?", blob, version_id)


def decryption_failure(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as error:
        call(**kwargs)
    response = error.value.response
    assert response["Error"]["Code"] == "DecryptionFailure", response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return response


def test_a_value_copied_onto_another_version_of_the_same_secret_does_not_open(sm, db):
    first = sm.create_secret(Name="moved/within", SecretString="old value")["VersionId"]
    second = sm.put_secret_value(SecretId="moved/within", SecretString="new value")["VersionId"]
    overwrite(db, second, sealed_of(db, first))

    response = decryption_failure(sm.get_secret_value, SecretId="moved/within")
    assert "old value" not in str(response)
    decryption_failure(sm.get_secret_value, SecretId="moved/within", VersionId=second)
    # The untouched version still reads.
    got = sm.get_secret_value(SecretId="moved/within", VersionStage="AWSPREVIOUS")
    assert got["SecretString"] == "old value"


def test_a_value_copied_onto_another_secret_does_not_open(sm, db):
    source = sm.create_secret(Name="moved/source", SecretString="source value")["VersionId"]
    target = sm.create_secret(Name="moved/target", SecretBinary=b"target")["VersionId"]
    overwrite(db, target, sealed_of(db, source))

    response = decryption_failure(sm.get_secret_value, SecretId="moved/target")
    assert "source value" not in str(response)
    assert sm.get_secret_value(SecretId="moved/source")["SecretString"] == "source value"


def test_a_whole_version_row_moved_to_another_secret_does_not_open(sm, db):
    # Same version id, other secret: the ARN in the AAD is what refuses it.
    token = "99999999-8888-4777-8666-555555555555"
    sm.create_secret(Name="row/source", SecretString="source value", ClientRequestToken=token)
    sm.create_secret(Name="row/target", SecretString="target value")
    ((target_pk,),) = db("SELECT pk FROM secrets WHERE name = 'row/target'")
    ((source_pk,),) = db("SELECT pk FROM secrets WHERE name = 'row/source'")
    db("UPDATE secret_versions SET secret_pk = ? WHERE secret_pk = ?", target_pk, source_pk)
    db("DELETE FROM version_stages WHERE secret_pk = ?", source_pk)

    response = decryption_failure(sm.get_secret_value, SecretId="row/target", VersionId=token)
    assert "source value" not in str(response)


def test_a_wrapped_data_key_spliced_from_another_version_does_not_open(sm, db):
    # Header = version, key-id length, key id, wrapped-key length, wrapped key (envelope.py).
    donor = sm.create_secret(Name="splice/donor", SecretString="donor")["VersionId"]
    victim = sm.create_secret(Name="splice/victim", SecretString="victim")["VersionId"]
    donor_blob, victim_blob = sealed_of(db, donor), sealed_of(db, victim)
    header_end = 2 + donor_blob[1] + 2 + int.from_bytes(donor_blob[2 + donor_blob[1] :][:2], "big")
    overwrite(db, victim, donor_blob[:header_end] + victim_blob[header_end:])

    decryption_failure(sm.get_secret_value, SecretId="splice/victim")


@pytest.mark.parametrize(
    "damage",
    [
        lambda blob: blob[:-1] + bytes([blob[-1] ^ 1]),  # one bit of the tag
        lambda blob: blob[:10],  # truncated
        lambda blob: b"\x02" + blob[1:],  # an unknown format version
        lambda _: b"",
        lambda blob: b"\x01\x05nokey\x00\x00" + blob[-28:],  # a master key id nobody has
    ],
    ids=["flipped-bit", "truncated", "format-version", "empty", "unknown-master-key"],
)
def test_a_damaged_value_is_a_decryption_failure_not_a_server_error(sm, db, damage):
    version = sm.create_secret(Name="damaged", SecretString="intact")["VersionId"]
    try:
        overwrite(db, version, damage(sealed_of(db, version)))
        decryption_failure(sm.get_secret_value, SecretId="damaged")
    finally:
        sm.delete_secret(SecretId="damaged", ForceDeleteWithoutRecovery=True)


def test_batch_get_reports_the_moved_value_as_an_error_and_serves_the_rest(sm, db):
    good = sm.create_secret(Name="batch/good", SecretString="good")["VersionId"]
    bad = sm.create_secret(Name="batch/bad", SecretString="bad")["VersionId"]
    overwrite(db, bad, sealed_of(db, good))

    batch = sm.batch_get_secret_value(SecretIdList=["batch/good", "batch/bad"])
    assert [v["Name"] for v in batch["SecretValues"]] == ["batch/good"]
    assert [(e["SecretId"], e["ErrorCode"]) for e in batch["Errors"]] == [
        ("batch/bad", "DecryptionFailure")
    ]


def test_an_idempotent_retry_onto_a_moved_value_is_refused_not_accepted(sm, db):
    # PutSecretValue with a used token compares against the stored value, which it must open.
    token = "12345678-1234-4234-8234-123456789012"
    source = sm.create_secret(Name="retry/source", SecretString="same")["VersionId"]
    sm.create_secret(Name="retry/target", SecretString="first")
    sm.put_secret_value(SecretId="retry/target", SecretString="same", ClientRequestToken=token)
    overwrite(db, token, sealed_of(db, source))

    decryption_failure(
        sm.put_secret_value, SecretId="retry/target", SecretString="same", ClientRequestToken=token
    )
