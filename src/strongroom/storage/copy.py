"""Copy a whole installation from one database to another, row for row (``strongroom copy``).

Theory of operation
-------------------
Rows are copied as stored: sealed values, access keys and function environments stay sealed
under the master key, which is not in the database, so nothing here can or does decrypt.

* The source is read in one read-only transaction, so a server may keep running on it: the
  copy is the snapshot taken when that transaction started (SQLite WAL: the last commit;
  PostgreSQL: REPEATABLE READ). Its row counts are taken in the same snapshot.
* The target is written in one transaction: the copy lands whole or not at all. Tables go in
  ``metadata.sorted_tables`` order, parents before children, so foreign keys hold throughout.
  On PostgreSQL every table is locked first, so that nothing writes beside the copy.
* Integer primary keys keep their values (rows refer to each other by them). PostgreSQL's
  serial sequences do not see explicit values, so each is then moved past its table's
  largest key; otherwise the next insert would collide. SQLite needs nothing: a new rowid
  is always past the largest.
* Before commit, every table's row count in the target must equal the source's; otherwise
  the transaction is rolled back and ``CountMismatch`` says which tables differ.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from strongroom.storage import migrate, schema
from strongroom.storage.base import SchemaTooNew

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory

BATCH_SIZE = 1000


class CopyRefused(Exception):
    """The source or the target cannot take part in a copy; the message says why."""


class TargetNotEmpty(CopyRefused):
    """The target already holds data (the copy would mix two installations)."""


class CopyFailed(Exception):
    """The target refused a row; nothing was committed."""


@dataclass(frozen=True, slots=True)
class TableCount:
    table: str
    source: int
    target: int

    @property
    def matches(self) -> bool:
        return self.source == self.target


class CountMismatch(Exception):
    """Some table's row count in the target differs from the source's."""

    def __init__(self, counts: Sequence[TableCount]) -> None:
        self.counts = list(counts)
        differing = ", ".join(
            f"{c.table} (source {c.source}, target {c.target})" for c in counts if not c.matches
        )
        super().__init__(f"row counts differ: {differing}")


class Progress(Protocol):
    """What the copy reports while it runs (the CLI draws it as a progress bar)."""

    def start(self, counts: Mapping[str, int]) -> None: ...

    def advance(self, table: str, rows: int) -> None: ...

    def verifying(self) -> None: ...


def require_database_file(url: sa.URL) -> None:
    """Refuse a SQLite URL whose file does not exist (SQLite would create an empty one)."""
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        path = Path(url.database)
        if not path.is_file():
            raise CopyRefused(f"no database file at {path}")


def check_source(engine: Engine) -> None:
    """Refuse a source that is not a Strongroom database at exactly this code's schema.

    Raises ``SchemaTooNew`` for a database migrated by a newer release and ``CopyRefused``
    for a missing, unmigrated or older one (the copy would not match the tables we know).
    """
    require_database_file(engine.url)
    script = _scripts()
    revision = migrate.current_revision(engine)
    head = script.get_current_head()
    if revision is None:
        raise CopyRefused("the source has no Strongroom schema: is it the right database?")
    if revision not in {rev.revision for rev in script.walk_revisions()}:
        raise SchemaTooNew(
            f"the source is at schema revision {revision}, which this Strongroom does not "
            "know: it was migrated by a newer release; copy with that release"
        )
    if revision != head:
        raise CopyRefused(
            f"the source is at schema revision {revision}, older than this Strongroom's "
            f"{head}: run `strongroom migrate` on it first"
        )


def prepare_target(engine: Engine) -> None:
    """Refuse a target holding data; otherwise give it the current schema (Alembic).

    Emptiness is checked before migrating, so that a refused target is left as it was, and
    again inside the copy's transaction (``copy_database``).
    """
    present = set(sa.inspect(engine).get_table_names())
    known = [t for t in schema.metadata.sorted_tables if t.name in present]
    with engine.connect() as conn:
        _refuse_data(_counts(conn, known))
    migrate.upgrade(engine)


def copy_database(
    source: Engine,
    target: Engine,
    *,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> list[TableCount]:
    """Copy every table of ``source`` into the empty, migrated ``target`` in one transaction.

    Returns the per-table counts (source snapshot vs. target after commit). Raises
    ``TargetNotEmpty`` (nothing written) or ``CountMismatch`` (rolled back).
    """
    tables = schema.metadata.sorted_tables
    with _snapshot(source) as src:
        source_counts = _counts(src, tables)
        if progress is not None:
            progress.start(source_counts)
        with _writing(target) as dst:
            _refuse_data(_counts(dst, tables))
            for table in tables:
                _copy_table(src, dst, table, batch_size, progress)
            if dst.dialect.name == "postgresql":
                _reset_sequences(dst, tables)
            if progress is not None:
                progress.verifying()
            counts = compare_counts(source_counts, _counts(dst, tables))
            if not all(c.matches for c in counts):
                raise CountMismatch(counts)  # leaving the block rolls the copy back
    with target.connect() as conn:  # what was committed, read afresh
        if conn.dialect.name == "postgresql":
            # Statistics for the planner now, not when autovacuum next looks: without them
            # PostgreSQL may look a secret up by name through a ListSecrets sort index
            # (every secret shares the account and region) and read the whole table.
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
        return compare_counts(source_counts, _counts(conn, tables))


def compare_counts(source: Mapping[str, int], target: Mapping[str, int]) -> list[TableCount]:
    """Pair each table's counts; a table missing on one side counts as 0 there."""
    names = list(source) + [name for name in target if name not in source]
    return [TableCount(name, source.get(name, 0), target.get(name, 0)) for name in names]


def _scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory  # noqa: PLC0415 - see storage.migrate

    return ScriptDirectory.from_config(migrate._config())  # noqa: SLF001 - same package


def _counts(conn: Connection, tables: Sequence[sa.Table]) -> dict[str, int]:
    return {
        t.name: int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one())
        for t in tables
    }


def _refuse_data(counts: Mapping[str, int]) -> None:
    held = {name: n for name, n in counts.items() if n}
    if held:
        listed = ", ".join(f"{name} ({n} rows)" for name, n in held.items())
        raise TargetNotEmpty(
            f"the target already holds data: {listed}. Copy into a new, empty database "
            "(one `strongroom serve` has never started on)"
        )


@contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction whose reads all see one moment of the source."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        else:
            # storage.sql's SQLite begin hook: a plain BEGIN, not BEGIN IMMEDIATE, so a
            # server writing to the source is not held up by the copy.
            conn.execution_options(strongroom_write=False)
        with conn.begin():
            yield conn


@contextmanager
def _writing(engine: Engine) -> Iterator[Connection]:
    """The target's one write transaction (SQLite: BEGIN IMMEDIATE, via storage.sql)."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            names = ", ".join(
                conn.dialect.identifier_preparer.quote(t.name)
                for t in schema.metadata.sorted_tables
            )
            # Other writers wait until the copy commits; readers are not blocked.
            conn.exec_driver_sql(f"LOCK TABLE {names} IN EXCLUSIVE MODE")
        yield conn


def _copy_table(
    src: Connection, dst: Connection, table: sa.Table, batch_size: int, progress: Progress | None
) -> None:
    # Ordered by primary key, so that a copy of a copy inserts in the same order.
    query = sa.select(table).order_by(*table.primary_key.columns)
    result = src.execute(query, execution_options={"yield_per": batch_size})
    for batch in result.partitions():
        try:
            dst.execute(table.insert(), [row._asdict() for row in batch])
        except sa.exc.DBAPIError as exc:
            # str(exc) would list the batch's parameters: only the driver's first line,
            # which names a constraint or a type.
            reason = (str(exc.orig).splitlines() or [type(exc.orig).__name__])[0]
            raise CopyFailed(f"copying table {table.name} failed: {reason}") from exc
        if progress is not None:
            progress.advance(table.name, len(batch))


def _reset_sequences(dst: Connection, tables: Sequence[sa.Table]) -> None:
    """Move each serial sequence past its table's largest key (next value: max + 1)."""
    for table in tables:
        for column in table.primary_key.columns:
            if column.autoincrement is not True:
                continue
            # setval(..., false): the next nextval() returns this value itself, which also
            # works for an empty table (setval refuses 0, below a sequence's minimum of 1).
            dst.execute(
                sa.select(
                    sa.func.setval(
                        sa.func.pg_get_serial_sequence(table.name, column.name),
                        sa.func.coalesce(sa.func.max(column), 0) + 1,
                        sa.false(),
                    )
                ).select_from(table)
            )
