"""``strongroom copy``: a whole installation moved between backends, still sealed.

The source is a data dir filled through the real API (boto3 against an in-process server):
secrets with string and binary values, several versions and labels, tags, a resource
policy, a deleted-but-recoverable secret, a rotation (cancelled), an IAM user with an inline
policy and an access key, and a registered rotation function. It is copied to a middle
database (a fresh PostgreSQL database, or another SQLite file) and from there to a last
SQLite data dir, on which a real server must answer exactly as the source did.

PostgreSQL: ``TEST_POSTGRES_URL`` (see tests/postgres.py); without it those cases
skip, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import json
import sqlite3
import stat
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import sqlalchemy as sa
from botocore.config import Config
from botocore.exceptions import ClientError
from click.testing import CliRunner, Result
from tests.conftest import ACCOUNT_ID, ROOT_KEY_ID, ROOT_SECRET, Server, start_server
from tests.postgres import fresh_postgres_database

from strongroom.audit.journal import JOURNAL_DIR, encode
from strongroom.cli.main import main as cli
from strongroom.storage import migrate, schema
from strongroom.storage.base import AuditEventRow
from strongroom.storage.copy import TableCount, compare_counts, copy_database
from strongroom.storage.sql import SqlStore

REGION = "eu-west-1"
BINARY = bytes(range(256)) * 3
# The reader may read app/* and nothing else (an inline policy: copied with the user).
READER_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": "arn:aws:secretsmanager:*:*:secret:app/*",
        }
    ],
}


@dataclass
class Source:
    data_dir: Path
    reader: tuple[str, str]  # the IAM user's access key id and secret
    state: dict[str, Any]  # everything a client can see, read before the server stopped

    @property
    def master_key(self) -> Path:
        return self.data_dir / "master.key"


def _iam(server: Server) -> Any:
    return boto3.client(
        "iam",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=ROOT_KEY_ID,
        aws_secret_access_key=ROOT_SECRET,
        config=Config(retries={"max_attempts": 1}),
    )


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), terminal_width=200)


def copy(source: str | Path, target: str | Path, *extra: str) -> Result:
    return run("copy", "--from", str(source), "--to", str(target), *extra)


def _populate(server: Server, data_dir: Path) -> tuple[str, str]:
    sm = server.client(REGION)
    sm.create_secret(
        Name="app/db",
        Description="the database",
        SecretString='{"password": "v1"}',
        Tags=[{"Key": "team", "Value": "core"}, {"Key": "env", "Value": "prod"}],
    )
    sm.put_secret_value(SecretId="app/db", SecretString='{"password": "v2"}')
    sm.put_secret_value(
        SecretId="app/db", SecretString='{"password": "v3"}', VersionStages=["staged"]
    )
    arn = sm.describe_secret(SecretId="app/db")["ARN"]
    sm.put_resource_policy(
        SecretId="app/db",
        ResourcePolicy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"},
                        "Action": "secretsmanager:GetSecretValue",
                        "Resource": arn,
                    }
                ],
            }
        ),
    )
    sm.create_secret(Name="app/cert", SecretBinary=BINARY)
    sm.create_secret(Name="other/token", SecretString="not for the reader")
    sm.create_secret(Name="old/thing", SecretString="recover me")
    sm.delete_secret(SecretId="old/thing", RecoveryWindowInDays=7)

    functions = CliRunner().invoke(
        cli,
        ["functions", "add", "rot-fn", "--url", "http://127.0.0.1:9/rotate",
         "--env", "TOKEN=function-env-value", "--data-dir", str(data_dir)],
    )  # fmt: skip
    assert functions.exit_code == 0, functions.output
    sm.rotate_secret(
        SecretId="other/token",
        RotationLambdaARN=f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:rot-fn",
        RotationRules={"AutomaticallyAfterDays": 30},
    )
    sm.cancel_rotate_secret(SecretId="other/token")
    _settle_rotations(server)

    iam = _iam(server)
    iam.create_user(UserName="reader", Tags=[{"Key": "dept", "Value": "ops"}])
    iam.put_user_policy(
        UserName="reader", PolicyName="read-app", PolicyDocument=json.dumps(READER_POLICY)
    )
    key = iam.create_access_key(UserName="reader")["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def _settle_rotations(server: Server) -> None:
    """Wait until no rotation is running, so that what is copied stays as it was."""
    deadline = time.monotonic() + 30
    while True:
        with server.installation.store.read() as tx:
            states = {row.state for row, _ in tx.rotations(ACCOUNT_ID, None, 100)}
        if states and states <= {"succeeded", "failed", "cancelled"}:
            return
        assert time.monotonic() < deadline, f"rotation still in {states}"
        time.sleep(0.05)


def _value(sm: Any, name: str, version_id: str) -> str | bytes | None:
    try:
        got = sm.get_secret_value(SecretId=name, VersionId=version_id)
    except sm.exceptions.ResourceNotFoundException:
        return None  # the empty AWSPENDING version of a rotation that never stored one
    return got.get("SecretString", got.get("SecretBinary"))


def observe(server: Server) -> dict[str, Any]:
    """What clients see: every secret's values, labels, tags, policy; rotations; functions."""
    sm = server.client(REGION)
    state: dict[str, Any] = {}
    listed = sm.list_secrets(IncludePlannedDeletion=True)["SecretList"]
    for entry in sorted(listed, key=lambda e: e["Name"]):
        name = entry["Name"]
        described = sm.describe_secret(SecretId=name)
        values = {}
        if "DeletedDate" not in described:
            for version_id in described["VersionIdsToStages"]:
                values[version_id] = _value(sm, name, version_id)
        state[name] = {
            "arn": described["ARN"],
            "description": described.get("Description"),
            "labels": {v: sorted(s) for v, s in described["VersionIdsToStages"].items()},
            "values": values,
            "tags": described.get("Tags"),
            "deleted": "DeletedDate" in described,
            "rotation": (described.get("RotationEnabled"), described.get("RotationLambdaARN")),
            # AWS refuses GetResourcePolicy on a secret marked for deletion.
            "policy": None
            if "DeletedDate" in described
            else sm.get_resource_policy(SecretId=name).get("ResourcePolicy"),
        }
    with server.installation.store.read() as tx:
        state["rotations"] = sorted(
            (row.version_id, row.state) for row, _ in tx.rotations(ACCOUNT_ID, None, 100)
        )
        state["functions"] = [(f.name, f.url) for f in tx.functions(ACCOUNT_ID)]
    iam = _iam(server)
    state["iam"] = {
        "users": [u["UserName"] for u in iam.list_users()["Users"]],
        "policy": iam.get_user_policy(UserName="reader", PolicyName="read-app")["PolicyDocument"],
        "tags": iam.list_user_tags(UserName="reader")["Tags"],
    }
    return state


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Source:
    data_dir = tmp_path_factory.mktemp("source")
    server = start_server(data_dir)
    try:
        reader = _populate(server, data_dir)
        state = observe(server)
    finally:
        server.stop()
    return Source(data_dir=data_dir, reader=reader, state=state)


def _dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order."""
    store = SqlStore.from_url(url)
    try:
        with store.engine.connect() as conn:
            return {
                table.name: [
                    tuple(row)
                    for row in conn.execute(sa.select(table).order_by(*table.primary_key.columns))
                ]
                for table in schema.metadata.sorted_tables
            }
    finally:
        store.close()


def _sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'strongroom.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def middle(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The database between the source and the last copy: its URL, as a user writes it."""
    if request.param == "sqlite":
        yield str(tmp_path / "middle")  # a data dir, created by the copy
        return
    with fresh_postgres_database() as url:
        yield url.replace("postgresql+psycopg://", "postgresql://", 1)


def test_a_copy_of_a_copy_serves_everything_the_source_served(
    source: Source, middle: str, tmp_path: Path
) -> None:
    result = copy(source.data_dir, middle, "--batch-size", "2")  # many batches per table
    assert result.exit_code == 0, result.output
    assert "MISMATCH" not in result.output
    assert "master key is NOT in the database" in result.output
    assert f"--master-key-file {source.master_key}" in result.output

    # The middle copy takes new writes through a real server: new primary keys (PostgreSQL:
    # from sequences moved past the copied keys) must not collide with the copied ones.
    middle_url = middle if "://" in middle else _sqlite_url(Path(middle))
    server = start_server(
        tmp_path / "middle-node", database_url=middle_url, master_key_file=source.master_key
    )
    try:
        assert observe(server) == source.state
        sm = server.client(REGION)
        sm.create_secret(Name="app/new", SecretString="written after the copy")
        sm.put_secret_value(SecretId="app/db", SecretString='{"password": "v4"}')
        sm.rotate_secret(
            SecretId="app/cert",
            RotationLambdaARN=f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:rot-fn",
        )
        sm.cancel_rotate_secret(SecretId="app/cert")
        _settle_rotations(server)
        expected = observe(server)
    finally:
        server.stop()
    assert expected["app/new"]["values"]
    assert len(expected["rotations"]) == 2

    final = tmp_path / "final"
    result = copy(middle, final)
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE((final / "strongroom.db").stat().st_mode) == 0o600
    assert not (final / "master.key").exists()  # keys are never copied
    server = start_server(final, master_key_file=source.master_key)
    try:
        assert observe(server) == expected
        sm = server.client(REGION)
        assert sm.get_secret_value(SecretId="app/cert")["SecretBinary"] == BINARY
        assert sm.get_secret_value(SecretId="app/db")["SecretString"] == '{"password": "v4"}'
        staged = sm.get_secret_value(SecretId="app/db", VersionStage="staged")
        assert staged["SecretString"] == '{"password": "v3"}'
        sm.restore_secret(SecretId="old/thing")
        assert sm.get_secret_value(SecretId="old/thing")["SecretString"] == "recover me"

        key_id, secret = source.reader
        reader = server.client(REGION, key_id=key_id, secret=secret)
        assert reader.get_secret_value(SecretId="app/db")["SecretString"]
        with pytest.raises(ClientError) as denied:
            reader.get_secret_value(SecretId="other/token")
        assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    finally:
        server.stop()


def test_postgres_sequences_continue_past_the_copied_keys_and_tables_are_analyzed(
    source: Source,
) -> None:
    with fresh_postgres_database() as url:
        result = copy(source.data_dir, url)
        assert result.exit_code == 0, result.output
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        try:
            with engine.begin() as conn:
                # The planner has statistics at once (not only after autovacuum's next look).
                analyzed = conn.exec_driver_sql(
                    "SELECT count(*) FROM pg_stat_user_tables "
                    "WHERE relname = 'secrets' AND last_analyze IS NOT NULL"
                ).scalar()
                assert analyzed == 1
                for table in (schema.secrets, schema.versions, schema.rotations):
                    largest = conn.execute(sa.select(sa.func.max(table.c.pk))).scalar()
                    assert largest  # the source has rows in each
                    sequence = sa.func.pg_get_serial_sequence(table.name, "pk")
                    following = conn.execute(sa.select(sa.func.nextval(sequence))).scalar()
                    assert following == largest + 1, table.name
        finally:
            engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def filled_target(request: pytest.FixtureRequest, source: Source, tmp_path: Path) -> Iterator[str]:
    """A database that already holds an installation (a copy of the source)."""
    if request.param == "sqlite":
        url = _sqlite_url(tmp_path / "filled")
        assert copy(source.data_dir, tmp_path / "filled").exit_code == 0
        yield url
        return
    with fresh_postgres_database() as url:
        assert copy(source.data_dir, url).exit_code == 0
        yield url


def test_copying_into_a_database_that_holds_data_is_refused_and_changes_nothing(
    source: Source, filled_target: str, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    server = start_server(other)  # a different installation: one root key, its meta
    server.stop()
    before = _dump(filled_target)

    result = copy(other, filled_target)

    assert result.exit_code == 1
    assert "the target already holds data" in result.output
    assert "access_keys" in result.output
    assert _dump(filled_target) == before


def test_a_row_count_mismatch_rolls_the_copy_back_and_exits_non_zero(
    source: Source, tmp_path: Path
) -> None:
    # A target that silently drops tag rows: migrated, empty, but with a trigger of its own.
    target = tmp_path / "lossy.db"
    store = SqlStore.from_url(f"sqlite:///{target}")
    migrate.upgrade(store.engine)
    store.close()
    with sqlite3.connect(target) as conn:
        conn.execute(
            "CREATE TRIGGER drop_tags BEFORE INSERT ON secret_tags BEGIN SELECT RAISE(IGNORE); END"
        )

    result = copy(source.data_dir, target)

    assert result.exit_code == 1
    assert "row counts differ: secret_tags (source 2, target 0)" in result.output
    assert "the copy was rolled back" in result.output
    assert "MISMATCH" in result.output
    assert all(not rows for rows in _dump(f"sqlite:///{target}").values())


def test_compare_counts_pairs_tables_and_flags_differences() -> None:
    counts = compare_counts({"a": 2, "b": 1}, {"b": 1, "c": 4})
    assert counts == [TableCount("a", 2, 0), TableCount("b", 1, 1), TableCount("c", 0, 4)]
    assert [c.matches for c in counts] == [False, True, False]


def test_a_source_migrated_by_a_newer_release_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "newer"
    server = start_server(source)
    server.stop()
    with sqlite3.connect(source / "strongroom.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'ffff_from_the_future'")

    result = copy(source, tmp_path / "target")

    assert result.exit_code == 1
    assert "ffff_from_the_future" in result.output
    assert "newer release" in result.output
    assert not (tmp_path / "target" / "strongroom.db").exists()


def test_a_source_at_an_older_schema_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "older"
    server = start_server(source)
    server.stop()
    with sqlite3.connect(source / "strongroom.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0002'")

    result = copy(source, tmp_path / "target")

    assert result.exit_code == 1
    assert "run `strongroom migrate` on it first" in result.output


def test_a_missing_source_is_refused_without_creating_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    result = copy(missing, tmp_path / "target")
    assert result.exit_code == 1
    assert f"no database file at {missing / 'strongroom.db'}" in result.output
    assert not missing.exists()


def test_copying_a_database_onto_itself_is_refused(source: Source) -> None:
    result = copy(source.data_dir, _sqlite_url(source.data_dir))
    assert result.exit_code == 2
    assert "name the same database" in result.output


def test_help_says_what_the_locations_may_be() -> None:
    result = run("copy", "--help")
    assert result.exit_code == 0
    for text in ("sqlite:///", "postgresql://", "a data dir", "--master-key-file"):
        assert text in result.output


def test_an_unreachable_postgres_target_is_an_error_not_a_traceback(
    source: Source,
) -> None:
    url = f"postgresql://nobody@127.0.0.1:1/{uuid.uuid4().hex}"
    result = copy(source.data_dir, url)
    assert result.exit_code == 1
    assert "database error" in result.output


@pytest.mark.parametrize(
    ("target", "says"),
    [
        ("postgresql://host:port/db", "not a database URL"),
        ("mysterydb://somewhere/db", "cannot open the target"),
    ],
)
def test_a_target_that_is_no_database_url_is_refused(
    source: Source, target: str, says: str
) -> None:
    result = copy(source.data_dir, target)
    assert result.exit_code in {1, 2}
    assert says in result.output


class _WriteToSourceMidway:
    """A progress callback that commits a write to the source once the copy is under way."""

    def __init__(self, source: SqlStore) -> None:
        self.source = source
        self.wrote = False

    def start(self, counts: Any) -> None:
        pass

    def advance(self, _table: str, _rows: int) -> None:
        if not self.wrote:
            with self.source.write() as tx:  # would wait if the copy held a write lock
                tx.set_meta("written-during-the-copy", "yes")
            self.wrote = True

    def verifying(self) -> None:
        pass


@pytest.fixture(params=["sqlite", "postgres"])
def source_url(request: pytest.FixtureRequest, source: Source, tmp_path: Path) -> Iterator[str]:
    """A database holding a copy of the source installation, of each backend."""
    if request.param == "sqlite":
        assert copy(source.data_dir, tmp_path / "live").exit_code == 0
        yield _sqlite_url(tmp_path / "live")
        return
    with fresh_postgres_database() as url:
        assert copy(source.data_dir, url).exit_code == 0
        yield url


def test_the_copy_is_a_snapshot_and_never_blocks_writers_of_the_source(
    source_url: str, tmp_path: Path
) -> None:
    target_url = f"sqlite:///{tmp_path / 'snapshot.db'}"
    live, target = SqlStore.from_url(source_url), SqlStore.from_url(target_url)
    try:
        before = _dump(source_url)
        migrate.upgrade(target.engine)
        writer = _WriteToSourceMidway(live)
        started = time.monotonic()
        counts = copy_database(live.engine, target.engine, batch_size=1, progress=writer)
        assert time.monotonic() - started < 10  # the write did not wait for a lock
    finally:
        live.close()
        target.close()
    assert writer.wrote
    assert all(c.matches for c in counts)
    assert _dump(target_url) == before  # without the row written meanwhile
    assert len(_dump(source_url)["meta"]) == len(before["meta"]) + 1


def test_records_a_crashed_server_left_in_its_journal_are_copied(tmp_path: Path) -> None:
    """Reads are recorded in a per-process journal before they reach the database
    (audit/journal.py): the copy of a data dir whose server died takes them along."""
    data_dir = tmp_path / "source"
    server = start_server(data_dir)
    server.client(REGION).list_secrets()
    server.stop()
    # What a killed process leaves: its lock file (no longer held) and a segment whose
    # records never reached the database.
    left = AuditEventRow(
        event_id=str(uuid.uuid4()),
        event_time=time.time(),
        event_source="secretsmanager.amazonaws.com",
        event_name="GetSecretValue",
        user_name="root",
        access_key_id=ROOT_KEY_ID,
        resource_name="app/db",
        read_only=True,
        record="{}",
    )
    journal = data_dir / JOURNAL_DIR
    journal.mkdir(exist_ok=True)
    (journal / "4242-deadbeef.lock").touch()
    (journal / "4242-deadbeef-000001.log").write_bytes(encode(left))

    result = copy(data_dir, tmp_path / "target")
    assert result.exit_code == 0, result.output
    copied = _dump(_sqlite_url(tmp_path / "target"))["audit_events"]
    assert left.event_id in {row[1] for row in copied}
    # Moved into the source, then removed (the in-process server's own journal may remain).
    assert sorted(journal.glob("4242-*")) == []
