"""``SqlStore``: the storage contract on SQLAlchemy Core.

One implementation serves every SQL backend; what differs per dialect is connection set-up
and how a write transaction serialises (see ``storage.base``):

* SQLite: WAL journal, ``synchronous=FULL`` (an acknowledged write survives power loss, not
  only a killed process), foreign keys on, and ``BEGIN IMMEDIATE`` for writes so that two
  writers never both read the old label map and then race to commit.
* A server database (PostgreSQL): reads in autocommit, and reads made on the event loop
  (``awaiting_reads``) wait for the network without holding the loop up.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.util import greenlet_spawn
from sqlalchemy.util.concurrency import in_greenlet

from strongroom.storage import schema
from strongroom.storage import statements as q
from strongroom.storage.audit import AuditQueries
from strongroom.storage.base import (
    AccessKeyRow,
    AlreadyExists,
    ConstraintViolation,
    ListQuery,
    SecretRow,
    TransientConflict,
    VersionRow,
)
from strongroom.storage.batched_reads import StagedLookups
from strongroom.storage.execute import Executor, Result, has_nul
from strongroom.storage.filters import SORT_COLUMNS, filter_clause
from strongroom.storage.iam import IamQueries
from strongroom.storage.rotation import RotationQueries

logger = logging.getLogger("strongroom.storage")

_STAGED_MANY = {
    "name": (q.STAGED_BY_NAMES, ("account_id", "region", "name", "stage")),
    "arn": (q.STAGED_BY_ARNS, ("arn", "stage")),
}

AWAITING_CONNECTIONS = 4  # per process: SqlStore._awaiting (docs/deploy.md counts them)

# serialization_failure, deadlock_detected: the transaction may simply be run again.
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})
_S = schema.secrets
_V = schema.versions
_L = schema.stages
_T = schema.tags
_W = schema.words
_K = schema.access_keys


def _bool(value: Any) -> bool | None:
    return None if value is None else bool(value)  # SQLite returns booleans as 0/1


def _secret(row: Any) -> SecretRow:
    return _secret_values(row._asdict())


def _secret_values(values: dict[str, Any]) -> SecretRow:
    values["rotation_enabled"] = _bool(values["rotation_enabled"])
    values["tags_ever_set"] = bool(values["tags_ever_set"])
    return SecretRow(**values)


def _version(row: Any, stages: list[str] | None = None, prefix: str = "") -> VersionRow:
    def column(name: str) -> Any:
        return getattr(row, prefix + name)

    sealed = column("sealed")
    return VersionRow(
        pk=column("pk"),
        secret_pk=column("secret_pk"),
        version_id=column("version_id"),
        created_at=column("created_at"),
        last_accessed_at=column("last_accessed_at"),
        sealed=None if sealed is None else bytes(sealed),
        stages=stages or [],
    )


def _staged_rows(rows: Sequence[Any]) -> tuple[SecretRow, VersionRow | None] | None:
    """A staged read's rows (one per label of the staged version) as the secret and version."""
    if not rows:
        return None
    first = rows[0]
    columns = q.STAGED_SECRET_COLUMNS  # (field, its prefixed label in the row)
    secret = _secret_values({name: getattr(first, label) for name, label in columns})
    if first.v_pk is None:
        return secret, None
    return secret, _version(first, [row.held_stage for row in rows], prefix="v_")


class SqlTransaction(IamQueries, RotationQueries, AuditQueries):
    """The ``Transaction`` of ``storage.base`` over one DBAPI connection (``Executor``).

    The IAM methods live in ``storage.iam`` (``IamQueries``), the rotation ones in
    ``storage.rotation`` (``RotationQueries``), the audit ones in ``storage.audit``
    (``AuditQueries``).
    """

    def __init__(self, db: Executor) -> None:
        self.db = db
        self.dialect_name = db.dialect.name

    def _one(self, statement: Any, **params: Any) -> Any:
        return self.db.execute(statement, params, cache=True).first()

    def _secret_row(self, row: Any) -> SecretRow:
        return _secret(row)

    def _run(self, statement: Any, **params: Any) -> Result:
        return self.db.execute(statement, params, cache=True)

    # -- secrets -----------------------------------------------------------------------------
    def secret_by_name(self, account_id: str, region: str, name: str) -> SecretRow | None:
        row = self._one(q.SECRET_BY_NAME, account_id=account_id, region=region, name=name)
        return None if row is None else _secret(row)

    def secret_by_arn(self, arn: str) -> SecretRow | None:
        row = self._one(q.SECRET_BY_ARN, arn=arn)
        return None if row is None else _secret(row)

    def staged_by_name(
        self, account_id: str, region: str, name: str, stage: str
    ) -> tuple[SecretRow, VersionRow | None] | None:
        return self._staged(
            q.STAGED_BY_NAME, account_id=account_id, region=region, name=name, stage=stage
        )

    def staged_by_arn(self, arn: str, stage: str) -> tuple[SecretRow, VersionRow | None] | None:
        return self._staged(q.STAGED_BY_ARN, arn=arn, stage=stage)

    def _staged(self, statement: Any, **params: Any) -> tuple[SecretRow, VersionRow | None] | None:
        return _staged_rows(self._run(statement, **params).rows)

    def lock_secret(self, pk: int) -> None:
        if self.dialect_name != "sqlite":  # SQLite's BEGIN IMMEDIATE already serialises
            self._run(q.LOCK_SECRET, pk=pk)

    def insert_secret(self, row: SecretRow) -> SecretRow:
        values = {name: getattr(row, name) for name in q.SECRET_FIELDS if name != "pk"}
        try:
            with self.db.savepoint():
                row.pk = int(self._run(q.INSERT_SECRET, **values).scalar())
        except ConstraintViolation as exc:
            raise AlreadyExists(row.name) from exc
        return row

    def update_secret(self, pk: int, **values: Any) -> None:
        columns = tuple(sorted(values))
        self._run(q.update_secret_statement(columns), _pk=pk, **values)

    def delete_secret(self, pk: int) -> None:
        # Children first: foreign-key cascades are not relied upon (SQLite needs a pragma).
        for table in (_L, _T, _W, _V):
            self.db.execute(sa.delete(table).where(table.c.secret_pk == pk))
        self.db.execute(sa.delete(_S).where(_S.c.pk == pk))

    def list_secrets(self, query: ListQuery) -> list[SecretRow]:
        # PostgreSQL compares text under the database's collation, usually a linguistic one
        # (en_US: "Prod/x" falls inside the range of prefix "prod/", "B" sorts after "a").
        # Filters are code-point prefix matches and names must sort as on SQLite (BINARY),
        # so text is compared under the "C" collation there.
        code_points = self.dialect_name == "postgresql"
        conditions: list[Any] = [_S.c.account_id == query.account_id, _S.c.region == query.region]
        if not query.include_planned_deletion:
            conditions.append(_S.c.deletion_date.is_(None))
        else:
            conditions.append(sa.or_(_S.c.deletion_date.is_(None), _S.c.deletion_date > query.now))
        conditions.extend(
            filter_clause(key, values, code_points=code_points) for key, values in query.filters
        )
        column: Any = SORT_COLUMNS[query.sort_by]
        if code_points and query.sort_by == "name":
            column = column.collate("C")  # the keyset comparison below must use it too
        if query.after is not None:
            value, pk = query.after
            if query.descending:
                conditions.append(sa.or_(column < value, sa.and_(column == value, _S.c.pk < pk)))
            else:
                conditions.append(sa.or_(column > value, sa.and_(column == value, _S.c.pk > pk)))
        order = (column.desc(), _S.c.pk.desc()) if query.descending else (column, _S.c.pk)
        stmt = sa.select(_S).where(*conditions).order_by(*order).limit(query.limit)
        return [_secret(row) for row in self.db.execute(stmt)]

    def secrets_due_for_purge(self, now: float, limit: int) -> list[SecretRow]:
        stmt = (
            sa.select(_S)
            .where(_S.c.deletion_date.is_not(None), _S.c.deletion_date <= now)
            .order_by(_S.c.deletion_date)
            .limit(limit)
        )
        return [_secret(row) for row in self.db.execute(stmt)]

    # -- versions and labels -------------------------------------------------------------------
    def versions(self, secret_pk: int) -> list[VersionRow]:
        versions: list[VersionRow] = []
        for row in self._run(q.VERSIONS_OF_SECRET, pk=secret_pk):  # a row per label
            if not versions or versions[-1].pk != row.pk:
                versions.append(_version(row))
            if row.held_stage is not None:
                versions[-1].stages.append(row.held_stage)
        return versions

    def _version_with_labels(self, statement: Any, **params: Any) -> VersionRow | None:
        rows = self._run(statement, **params).rows  # one per label of the version
        if not rows:
            return None
        return _version(rows[0], [row.held_stage for row in rows if row.held_stage is not None])

    def version_by_id(self, secret_pk: int, version_id: str) -> VersionRow | None:
        return self._version_with_labels(
            q.VERSION_BY_ID, secret_pk=secret_pk, version_id=version_id
        )

    def version_by_stage(self, secret_pk: int, stage: str) -> VersionRow | None:
        return self._version_with_labels(q.VERSION_BY_STAGE, secret_pk=secret_pk, stage=stage)

    def labels_of(self, secret_pks: Sequence[int]) -> dict[int, dict[str, list[str]]]:
        out: dict[int, dict[str, list[str]]] = {pk: {} for pk in secret_pks}
        if len(secret_pks) == 1:  # DescribeSecret: a cached statement
            labels = out[secret_pks[0]]
            for version_id, stage in self._run(q.LABELS_OF_SECRET, pk=secret_pks[0]):
                labels.setdefault(version_id, []).append(stage)
        elif secret_pks:
            stmt = (
                sa.select(_L.c.secret_pk, _V.c.version_id, _L.c.stage)
                .join(_V, _V.c.pk == _L.c.version_pk)
                .where(_L.c.secret_pk.in_(secret_pks))
            )
            for secret_pk, version_id, stage in self.db.execute(stmt):
                out[secret_pk].setdefault(version_id, []).append(stage)
        return out

    def insert_version(
        self,
        secret_pk: int,
        version_id: str,
        created_at: float,
        sealed: bytes | None,
        key_id: str | None,
    ) -> VersionRow:
        values = {
            "secret_pk": secret_pk,
            "version_id": version_id,
            "created_at": created_at,
            "sealed": sealed,
            "master_key_id": key_id,
        }
        if self.dialect_name == "postgresql":
            pk = self._run(q.INSERT_VERSION_UNLESS_TAKEN, **values).scalar()
            if pk is None:
                raise AlreadyExists(version_id)
        else:
            try:
                with self.db.savepoint():
                    pk = self._run(q.INSERT_VERSION, **values).scalar()
            except ConstraintViolation as exc:
                raise AlreadyExists(version_id) from exc
        return VersionRow(
            pk=int(pk),
            secret_pk=secret_pk,
            version_id=version_id,
            created_at=created_at,
            sealed=sealed,
        )

    def set_version_value(self, version_pk: int, sealed: bytes, key_id: str) -> None:
        self._run(q.SET_VERSION_VALUE, pk=version_pk, sealed=sealed, master_key_id=key_id)

    def delete_versions(self, version_pks: Sequence[int]) -> None:
        if version_pks:
            self.db.execute(sa.delete(_L).where(_L.c.version_pk.in_(version_pks)))
            self.db.execute(sa.delete(_V).where(_V.c.pk.in_(version_pks)))

    def set_labels(self, secret_pk: int, labels: Mapping[int, Sequence[str]]) -> None:
        self._run(q.DELETE_LABELS, pk=secret_pk)
        rows = [
            {"secret_pk": secret_pk, "stage": stage, "version_pk": version_pk}
            for version_pk, stages in labels.items()
            for stage in stages
        ]
        self.db.insert_many(_L, rows)

    def touch_accessed(self, secret_pk: int, version_pk: int, day: float) -> None:
        self._run(q.TOUCH_SECRET, pk=secret_pk, day=day)
        self._run(q.TOUCH_VERSION, pk=version_pk, day=day)

    # -- tags and words ------------------------------------------------------------------------
    def tags(self, secret_pk: int) -> list[tuple[str, str]]:
        return [(key, value) for key, value in self._run(q.TAGS_OF_SECRET, pk=secret_pk)]

    def tags_of(self, secret_pks: Sequence[int]) -> dict[int, list[tuple[str, str]]]:
        out: dict[int, list[tuple[str, str]]] = {pk: [] for pk in secret_pks}
        if secret_pks:
            stmt = (
                sa.select(_T.c.secret_pk, _T.c.key, _T.c.value)
                .where(_T.c.secret_pk.in_(secret_pks))
                .order_by(_T.c.secret_pk, _T.c.position)
            )
            for secret_pk, key, value in self.db.execute(stmt):
                out[secret_pk].append((key, value))
        return out

    def set_tags(self, secret_pk: int, tags: Sequence[tuple[str, str]]) -> None:
        self._run(q.DELETE_TAGS, pk=secret_pk)
        self.db.insert_many(
            _T,
            [
                {"secret_pk": secret_pk, "position": i, "key": k, "value": v}
                for i, (k, v) in enumerate(tags)
            ],
        )

    def set_words(self, secret_pk: int, words: Mapping[str, Sequence[str]]) -> None:
        self._run(q.DELETE_WORDS, pk=secret_pk)
        self.db.insert_many(
            _W,
            [
                {"secret_pk": secret_pk, "field": field, "word": word}
                for field, field_words in words.items()
                for word in set(field_words)
            ],
        )

    # -- access keys and facts -----------------------------------------------------------------
    def access_key(self, access_key_id: str) -> AccessKeyRow | None:
        row = self._one(q.ACCESS_KEY, access_key_id=access_key_id)
        if row is None:
            return None
        values = row._asdict()
        values["sealed_secret"] = bytes(values["sealed_secret"])
        return AccessKeyRow(**values)

    def insert_access_key(self, row: AccessKeyRow) -> None:
        try:
            with self.db.savepoint():
                self._run(q.INSERT_ACCESS_KEY, **{c.name: getattr(row, c.name) for c in _K.columns})
        except ConstraintViolation as exc:
            raise AlreadyExists(row.access_key_id) from exc

    def get_meta(self, key: str) -> str | None:
        value = self._run(q.GET_META, key=key).scalar()
        return None if value is None else str(value)

    def set_meta(self, key: str, value: str) -> None:
        if not self._run(q.UPDATE_META, key=key, value=value).rowcount:
            self._run(q.INSERT_META, key=key, value=value)

    def delete_meta(self, key: str) -> None:
        self._run(q.DELETE_META, key=key)

    # -- master-key rotation -------------------------------------------------------------------
    def version_blobs(self, after_pk: int, limit: int) -> list[tuple[int, str, str, bytes]]:
        stmt = (
            sa.select(_V.c.pk, _S.c.arn, _V.c.version_id, _V.c.sealed)
            .join(_S, _S.c.pk == _V.c.secret_pk)
            .where(_V.c.pk > after_pk, _V.c.sealed.is_not(None))
            .order_by(_V.c.pk)
            .limit(limit)
        )
        return [(pk, arn, vid, bytes(blob)) for pk, arn, vid, blob in self.db.execute(stmt)]

    def access_key_blobs(self) -> list[tuple[str, bytes]]:
        stmt = sa.select(_K.c.access_key_id, _K.c.sealed_secret).order_by(_K.c.access_key_id)
        return [(akid, bytes(blob)) for akid, blob in self.db.execute(stmt)]

    def replace_access_key_blob(self, access_key_id: str, sealed: bytes, key_id: str) -> None:
        self.db.execute(
            sa.update(_K)
            .where(_K.c.access_key_id == access_key_id)
            .values(sealed_secret=sealed, master_key_id=key_id)
        )


class _AwaitedTransaction(SqlTransaction):
    """A read of a call the event loop runs (``SqlStore.awaiting_reads``): its staged reads
    join the concurrent calls' (``storage.batched_reads``); any other statement checks out
    a connection, on first use."""

    def __init__(self, engine: Engine, lookups: StagedLookups) -> None:
        # No SqlTransaction.__init__: there is no connection yet.
        self.dialect_name = engine.dialect.name
        self._engine = engine
        self._lookups = lookups
        self._pooled: Any = None
        self._db: Executor | None = None

    @property
    def db(self) -> Executor:
        if self._db is None:
            self._pooled = self._engine.raw_connection()
            self._db = Executor(self._pooled.dbapi_connection, self._engine.dialect)
        return self._db

    @db.setter
    def db(self, value: Executor) -> None:
        self._db = value

    def release(self) -> None:
        if self._pooled is not None:
            _give_back(self._pooled)
            self._pooled = self._db = None

    def staged_by_name(
        self, account_id: str, region: str, name: str, stage: str
    ) -> tuple[SecretRow, VersionRow | None] | None:
        return self._staged_lookup("name", (account_id, region, name, stage))

    def staged_by_arn(self, arn: str, stage: str) -> tuple[SecretRow, VersionRow | None] | None:
        return self._staged_lookup("arn", (arn, stage))

    def _staged_lookup(
        self, kind: str, values: tuple[str, ...]
    ) -> tuple[SecretRow, VersionRow | None] | None:
        if has_nul(values):
            return None  # no stored row can hold it, as Executor.execute answers a SELECT
        return _staged_rows(self._lookups.rows(kind, values))


class SqlStore:
    """``Store`` over a SQLAlchemy engine (``sqlite:///path`` by default).

    Theory of operation (SQLite)
    ----------------------------
    Readers never wait: in WAL mode a read transaction sees the last commit and blocks no
    one, and each thread reads on a connection of its own (kept, not pooled), so a read can
    run on the event loop without ever queueing behind the pool.

    Writers take turns in two steps: a lock in this process, then ``flock`` on a lock file
    beside the database for the other processes (``--workers``, ``master-key rotate``), and
    only then ``BEGIN IMMEDIATE``. SQLite's own busy handler would also serialise them, but
    it polls with sleeps of up to 100 ms, which under contention makes the slowest writes
    hundreds of times slower than the median; the kernel hands a released flock to the next
    waiter at once.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        self._readers = threading.local()
        self._write_lock = threading.Lock()
        self._groups = threading.local()  # the write group open on this thread, if any
        self._lock_file: int | None = None
        # A server database reads in autocommit: at READ COMMITTED every statement takes its
        # own snapshot anyway, so a read transaction gives nothing more, and BEGIN and COMMIT
        # would be two more round trips on every read (half of a GetSecretValue's). So do
        # writes of one statement (``write_at_once``). Kept open: the 4 threads of calls that
        # read (app.SERVER_DATABASE_THREADS), the audit commit thread and the background
        # threads. Fewer than they need and connections beyond the pool were opened and
        # closed all the time under load, each a new PostgreSQL backend (about 10 a second
        # at 2,000 reads/s, when GetSecretValue still read in those threads).
        self._autocommit = (
            None
            if self._sqlite
            else sa.create_engine(
                engine.url,
                isolation_level="AUTOCOMMIT",
                pool_size=8,
                max_overflow=20,
                pool_reset_on_return=None,
            )
        )
        self._awaited = None if self._sqlite else _awaiting_engine(engine)
        # The batched staged reads' own connection (storage.batched_reads), and the lookups
        # waiting on this thread's event loop.
        self._lookup_engine = (
            None if self._awaited is None else _awaiting_engine(engine, 1, generic_plans=True)
        )
        self._loop_state = threading.local()
        database = engine.url.database
        if self._sqlite and database and database != ":memory:":
            path = f"{database}.write-lock"
            self._lock_file = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    @classmethod
    def from_url(cls, url: str) -> SqlStore:
        if url.startswith(("postgresql://", "postgres://")):
            # What users write; SQLAlchemy would otherwise pick psycopg2, which we don't ship.
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        # Every transaction here ends in its own COMMIT or ROLLBACK (_pooled_transaction), so
        # the pool's own ROLLBACK on every check-in would be one more round trip per request.
        engine = sa.create_engine(
            url, pool_size=8, max_overflow=24, pool_pre_ping=False, pool_reset_on_return=None
        )
        if engine.dialect.name == "sqlite":
            _configure_sqlite(engine)
        return cls(engine)

    def _reader(self) -> Any:
        connection = getattr(self._readers, "connection", None)
        if connection is None:
            pooled = self.engine.raw_connection()
            connection = self._readers.connection = pooled.driver_connection
            pooled.detach()  # this thread's for good; SQLite connections are cheap
        return connection

    @contextmanager
    def _serialised(self) -> Iterator[None]:
        with self._write_lock:
            if self._lock_file is None:
                yield
                return
            fcntl.flock(self._lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)

    @contextmanager
    def _sqlite_transaction(self, connection: Any, begin: str) -> Iterator[SqlTransaction]:
        db = Executor(connection, self.engine.dialect)
        db.raw(begin)
        try:
            yield SqlTransaction(db)
        except BaseException:
            if connection.in_transaction:  # SQLite ends it itself on some errors
                db.raw("ROLLBACK")
            raise
        db.raw("COMMIT")

    @contextmanager
    def _pooled_sqlite_transaction(
        self, begin: str, *, lazily: bool = False
    ) -> Iterator[SqlTransaction]:
        pooled = self.engine.raw_connection()
        connection: Any = pooled.driver_connection
        try:
            if not lazily:
                with self._sqlite_transaction(connection, begin) as tx:
                    yield tx
                return
            # SQLite refuses to change it inside a transaction: around it, on this connection.
            connection.execute("PRAGMA synchronous=NORMAL")
            try:
                with self._sqlite_transaction(connection, begin) as tx:
                    yield tx
            finally:
                try:
                    connection.execute("PRAGMA synchronous=FULL")
                except BaseException:
                    pooled.invalidate()  # never handed out again below FULL
                    raise
        finally:
            _give_back(pooled)

    @contextmanager
    def _pooled_transaction(self) -> Iterator[SqlTransaction]:
        """A server database: one transaction on a pooled connection."""
        pooled = self.engine.raw_connection()
        connection: Any = pooled.driver_connection
        try:
            with _conflicts_retryable():
                try:
                    yield SqlTransaction(Executor(connection, self.engine.dialect))
                except BaseException:
                    try:
                        connection.rollback()
                    except Exception:  # noqa: BLE001 - the error in flight is the one to raise
                        connection.close()  # in an unknown state: dropped, not reused
                    raise
                connection.commit()
        finally:
            _give_back(pooled)

    @contextmanager
    def read(self) -> Iterator[SqlTransaction]:
        group: WriteGroup | None = getattr(self._groups, "current", None)
        if group is not None:  # a call of a write group reads what the calls before it wrote
            yield group.transaction()
            return
        if self._awaited is not None and in_greenlet():
            with self._awaiting() as tx:
                yield tx
            return
        if self._autocommit is not None:
            with self._autocommitted() as tx:
                yield tx
            return
        reader = self._reader()
        if reader.in_transaction:  # a read nested in another read of this thread
            with self._pooled_sqlite_transaction("BEGIN") as tx:
                yield tx
            return
        with self._sqlite_transaction(reader, "BEGIN") as tx:
            yield tx

    @contextmanager
    def _autocommitted(self) -> Iterator[SqlTransaction]:
        assert self._autocommit is not None  # noqa: S101 - a server database's only
        pooled = self._autocommit.raw_connection()
        try:
            with _conflicts_retryable():
                yield SqlTransaction(Executor(pooled.driver_connection, self.engine.dialect))
        finally:
            _give_back(pooled)

    @contextmanager
    def _awaiting(self) -> Iterator[SqlTransaction]:
        """``_autocommitted`` for code the event loop runs in a greenlet (``awaiting_reads``):
        each statement hands the loop back until PostgreSQL answers."""
        assert self._awaited is not None  # noqa: S101 - a server database's only
        tx = _AwaitedTransaction(self._awaited, self._staged_lookups())
        try:
            with _conflicts_retryable():
                yield tx
        finally:
            tx.release()

    def _staged_lookups(self) -> StagedLookups:
        lookups: StagedLookups | None = getattr(self._loop_state, "lookups", None)
        if lookups is None:
            lookups = self._loop_state.lookups = StagedLookups(self._look_up_staged)
        return lookups

    def _look_up_staged(self, kind: str, values: Sequence[tuple[str, ...]]) -> list[Any]:
        """One statement for many staged reads (``StagedLookups``), on the batches' own
        connection."""
        assert self._lookup_engine is not None  # noqa: S101 - with _awaited
        statement, keys = _STAGED_MANY[kind]
        columns = zip(*values, strict=True)  # a list per key, an entry per lookup
        arrays = {f"{key}s": list(column) for key, column in zip(keys, columns, strict=True)}
        pooled = self._lookup_engine.raw_connection()
        try:
            return (
                Executor(pooled.dbapi_connection, self.engine.dialect)
                .execute(statement, arrays, cache=True)
                .rows
            )
        finally:
            _give_back(pooled)

    @contextmanager
    def write_at_once(self) -> Iterator[SqlTransaction]:
        """A write that is one statement, atomic by itself (a batch of audit records): on
        a server database in autocommit, one round trip where ``write`` takes three (BEGIN,
        the statement, COMMIT). Anything more than one statement must use ``write``."""
        if self._autocommit is None:
            with self.write() as tx:
                yield tx
            return
        with self._autocommitted() as tx:
            yield tx

    def write(self) -> AbstractContextManager[SqlTransaction]:
        return self._write(lazily=False)

    def write_lazily(self) -> AbstractContextManager[SqlTransaction]:
        return self._write(lazily=True)

    @contextmanager
    def _write(self, *, lazily: bool) -> Iterator[SqlTransaction]:
        group: WriteGroup | None = getattr(self._groups, "current", None)
        if group is not None:  # part of the group's commit, whichever was asked for
            with group.savepoint() as tx:
                yield tx
            return
        if not self._sqlite:
            with self._pooled_transaction() as tx:
                if lazily:
                    tx.db.raw("SET LOCAL synchronous_commit TO OFF")
                yield tx
            return
        # Lazily: synchronous=NORMAL in WAL mode, the commit appended to the WAL without an
        # fsync; the next commit at FULL (or a checkpoint) syncs the WAL, this one with it.
        transaction = self._pooled_sqlite_transaction("BEGIN IMMEDIATE", lazily=lazily)
        with self._serialised(), transaction as tx:
            yield tx

    @contextmanager
    def write_group(self) -> Iterator[WriteGroup]:
        """One write transaction for several calls, committed once (group commit).

        Embedded SQLite only, where writes are serialised anyway and a write's cost is
        mostly its COMMIT (the fsync of the WAL, ``synchronous=FULL``). Inside this block,
        on this thread, every ``write()`` is a savepoint of the group's transaction, so a
        call that fails undoes only its own writes, and every ``read()`` reads inside it, so
        a call sees what the calls before it wrote. Leaving the block commits them all;
        nothing of the group is durable before that, so no call may be answered sooner. A
        call whose failure could not be undone by its savepoint breaks the group: the block
        then rolls everything back and raises.
        """
        if not self._sqlite:
            raise NotImplementedError("write groups are for embedded SQLite")
        with self._serialised(), self._pooled_sqlite_transaction("BEGIN IMMEDIATE") as tx:
            group = WriteGroup(tx)
            self._groups.current = group
            try:
                yield group
            finally:
                self._groups.current = None
            if group.broken is not None:
                raise WriteGroupBroken(str(group.broken)) from group.broken  # → ROLLBACK

    @contextmanager
    def try_write(self) -> Iterator[SqlTransaction | None]:
        """A write transaction if no other writer holds the lock this moment, else None.

        For a caller on an event loop (the audit trail's group commit), which must not wait
        for another writer but can write at once when none is busy: handing the work to a
        thread costs two GIL hand-offs, more than the write. Embedded SQLite only (a server
        database waits on the network: always None there).
        """
        if not self._sqlite or not self._write_lock.acquire(blocking=False):
            yield None
            return
        try:
            if self._lock_file is not None:
                try:
                    fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    yield None  # another process is writing
                    return
            try:
                with self._pooled_sqlite_transaction("BEGIN IMMEDIATE") as tx:
                    yield tx
            finally:
                if self._lock_file is not None:
                    fcntl.flock(self._lock_file, fcntl.LOCK_UN)
        finally:
            self._write_lock.release()

    def database_time(self) -> float:
        """The database server's clock, in epoch seconds (``storage.clock``)."""
        query = (
            "SELECT (julianday('now') - 2440587.5) * 86400.0"
            if self._sqlite
            else "SELECT extract(epoch FROM clock_timestamp())"
        )
        with self.engine.connect() as conn:
            return float(conn.exec_driver_sql(query).scalar_one())

    @property
    def reads_never_wait(self) -> bool:
        """True when a read may run on the event loop (see the theory of operation)."""
        return self._sqlite

    @property
    def awaiting_reads(self) -> bool:
        """True when code run by ``sqlalchemy.util.greenlet_spawn`` on the event loop may
        read: its reads then await the database (``_awaiting``) instead of blocking the
        loop, so read-only calls need no worker thread. Why not threads: a hop to one and
        back, and the GIL handed between it and the busy loop, cost a PostgreSQL
        GetSecretValue more CPU than the query (bench/micro_get.py). Writes still block,
        so only calls that never write may run so."""
        return self._awaited is not None

    def close(self) -> None:
        if self._lock_file is not None:
            os.close(self._lock_file)
            self._lock_file = None
        if self._autocommit is not None:
            self._autocommit.dispose()
        for awaiting in (self._awaited, self._lookup_engine):
            if awaiting is not None:
                _dispose_awaiting(awaiting)
        self.engine.dispose()


def _give_back(pooled: Any) -> None:
    """Return a pooled connection, or drop it if it is broken (the server restarted, a
    network failure, an idle timeout): the pool then makes a new one at the next checkout.
    Connections are used raw here (``storage.execute``), so SQLAlchemy never sees the error
    that would make it drop them itself; without this, every later call that drew a broken
    connection failed until the process restarted."""
    connection = pooled.driver_connection
    if getattr(connection, "broken", False) or getattr(connection, "closed", False):
        pooled.invalidate()
    else:
        pooled.close()


def _awaiting_engine(
    engine: Engine, connections: int = AWAITING_CONNECTIONS, *, generic_plans: bool = False
) -> Engine | None:
    """The engine of ``SqlStore._awaiting``: the same reads for calls the event loop runs
    (``awaiting_reads``), on psycopg's async connections, used from synchronous code through
    SQLAlchemy's greenlet bridge. None without greenlet (the ``postgres`` extra brings it):
    those calls then read in worker threads, as every other read does."""
    try:
        from sqlalchemy.ext.asyncio import create_async_engine  # noqa: PLC0415
    except ImportError:
        logger.warning("greenlet is not installed: PostgreSQL reads go through threads")
        return None
    # A fixed pool: calls beyond it wait for a connection on the loop (each holds one for
    # its read only, a few round trips). Overflow connections would be opened and closed
    # again all the time under load, each a new PostgreSQL backend.
    awaiting = create_async_engine(
        engine.url,
        isolation_level="AUTOCOMMIT",
        pool_size=connections,
        max_overflow=0,
        pool_reset_on_return=None,
    )
    if generic_plans:
        event.listen(awaiting.sync_engine, "connect", _plan_once)
    return awaiting.sync_engine


def _dispose_awaiting(engine: Engine) -> None:
    """Close an awaiting engine's connections. Closing an async connection must be awaited,
    and the loop that used them may be gone or may be the caller's own: a short-lived loop
    of its own, in a thread of its own, does it. Merely dropped (``dispose(close=False)``),
    they stayed open until a full garbage collection found them (they sit in reference
    cycles, and ``gc.freeze`` at start-up keeps much from the collector), which a process
    that opens and closes stores (the tests, ``strongroom copy``) cannot afford."""

    def dispose() -> None:
        asyncio.run(greenlet_spawn(engine.dispose))

    closer = threading.Thread(target=dispose, name="strongroom-dispose")
    closer.start()
    closer.join(10.0)


def _plan_once(dbapi_connection: Any, _record: Any) -> None:
    """The batched lookups' connection plans its statement once (``force_generic_plan``).

    PostgreSQL plans a prepared statement anew on each run while a plan for its actual
    values looks cheaper than the one generic plan, and for ``STAGED_BY_NAMES`` it always
    does: the generic plan cannot know the arrays' length and assumes ten lookups. Planning
    that join cost several times more than running it (PostgreSQL's CPU per lookup: 370 µs
    alone, 27 in batches of 16, against 80 and 17 with the generic plan); the generic plan
    is the same loop of index lookups (LATERAL), whatever the length. A database without
    the setting (before PostgreSQL 12, or a compatible one) just plans each run, as before.
    """
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SET plan_cache_mode = force_generic_plan")
    except Exception:  # noqa: BLE001 - an optimisation only: carry on without it
        logger.info("plan_cache_mode not set: the database has no such setting")
    finally:
        cursor.close()


@contextmanager
def _conflicts_retryable() -> Iterator[None]:
    """A transaction that lost a race (serialization failure, deadlock) as TransientConflict:
    the whole operation may simply run again (``app.retrying``)."""
    try:
        yield
    except Exception as exc:
        if getattr(exc, "sqlstate", None) in _RETRYABLE_SQLSTATES:
            raise TransientConflict(str(exc)) from exc
        raise


class WriteGroupBroken(Exception):
    """A call of a write group failed in a way its savepoint could not undo."""


class WriteGroup:
    """The transaction of ``SqlStore.write_group``: a savepoint per ``write()`` in it."""

    def __init__(self, tx: SqlTransaction) -> None:
        self._tx = tx
        self._savepoints = 0
        self.broken: BaseException | None = None

    def transaction(self) -> SqlTransaction:
        if self.broken is not None:
            raise WriteGroupBroken(str(self.broken)) from self.broken
        return self._tx

    @contextmanager
    def savepoint(self) -> Iterator[SqlTransaction]:
        tx = self.transaction()
        self._savepoints += 1
        name = f"write{self._savepoints}"
        tx.db.raw(f"SAVEPOINT {name}")
        try:
            yield tx
        except BaseException:
            try:
                tx.db.raw(f"ROLLBACK TO {name}")
                tx.db.raw(f"RELEASE {name}")
            except BaseException as exc:  # noqa: BLE001 - the call's own error is raised
                # SQLite ends the whole transaction itself on some errors (a full disk, an
                # I/O error): the savepoint is gone, and so is every call's work before it.
                self.broken = exc
            raise
        try:
            tx.db.raw(f"RELEASE {name}")
        except BaseException as exc:
            self.broken = exc
            raise


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the sqlite3 module so BEGIN is ours (below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=FULL",
            "foreign_keys=ON",
            "busy_timeout=30000",
            # 4 MiB of page cache per connection (the default is 2 MiB): the inner index
            # pages of ~100,000 secrets and then some; a miss is a read from the OS's page
            # cache. Each of a process's connections fills its cache under load (the sealer's
            # with audit records), so this is paid several times over: with 8 MiB the
            # processes of `serve --workers 2` held about 7 MiB more at 100,000 secrets,
            # for no GetSecretValue latency measurable in bench/.
            "cache_size=-4096",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("strongroom_write", True)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
