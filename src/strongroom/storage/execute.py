"""Run SQLAlchemy Core statements on a raw DBAPI connection, compiled once.

Why not ``Connection.execute``: on the read path of GetSecretValue, SQLAlchemy's per-call
work (statement coercion, cache-key generation, result set-up, pool checkout and the
transaction events) cost about ten times the SQLite query itself — the difference between
hundreds and thousands of requests per second (see bench/). Statements are still written
with SQLAlchemy Core and compiled by SQLAlchemy for the engine's dialect; only execution is
done here, on the DBAPI connection the engine's pool hands out.

Statements built once at import (``bindparam`` placeholders) are compiled once per dialect;
ad-hoc statements (a ListSecrets query with its filters) are compiled on each call.
"""

from __future__ import annotations

import functools
import re
from collections import namedtuple
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, cast

from sqlalchemy import bindparam
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement, Select
from sqlalchemy.sql.compiler import SQLCompiler

from strongroom.storage.base import ConstraintViolation, TextNotStorable


class Compiled:
    """A statement compiled for one dialect: SQL text and how to order its parameters."""

    __slots__ = ("defaults", "positional", "row_type", "sql")

    def __init__(self, statement: ClauseElement, dialect: Dialect, *, expand: bool) -> None:
        # ``expand``: render IN lists of literal values inline (ad-hoc statements); statements
        # compiled once take every value through bindparam() at execution instead.
        compiled = cast(
            "SQLCompiler",
            statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": expand}),
        )
        self.sql: str = compiled.string
        self.defaults: dict[str, Any] = {
            name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required
        }
        if expand:
            self.defaults = dict(compiled.construct_params())
        self.positional = compiled.positiontup if dialect.positional else None
        self.row_type: Any = None  # learnt from the first result

    def parameters(self, params: Mapping[str, Any] | None) -> Sequence[Any] | dict[str, Any]:
        values = {**self.defaults, **params} if params else self.defaults
        if self.positional is not None:
            return [values[name] for name in self.positional]
        return values


@functools.lru_cache(maxsize=256)
def _row_type(names: tuple[str, ...]) -> Any:
    # Rows behave like SQLAlchemy's: attribute access, unpacking, _asdict().
    return namedtuple("Row", names, rename=True)  # noqa: PYI024 - built per column set


_NO_ROWS: Any = object()  # Compiled.row_type of a statement that returns no rows


class Result:
    __slots__ = ("rowcount", "rows")

    @classmethod
    def empty(cls) -> Result:
        result = cls.__new__(cls)
        result.rowcount, result.rows = 0, []
        return result

    def __init__(self, cursor: Any, compiled: Compiled) -> None:
        self.rowcount: int = cursor.rowcount
        row_type = compiled.row_type
        if row_type is None:
            # Learnt once per statement: psycopg builds ``description`` anew on every access
            # (an object per column), which cost more than the query on PostgreSQL reads.
            description = cursor.description
            row_type = compiled.row_type = (
                _NO_ROWS if description is None else _row_type(tuple(d[0] for d in description))
            )
        if row_type is _NO_ROWS:
            self.rows: list[Any] = []
            return
        self.rows = [row_type._make(values) for values in cursor.fetchall()]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.rows)

    def first(self) -> Any:
        return self.rows[0] if self.rows else None

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows else None

    def scalars(self) -> list[Any]:
        return [row[0] for row in self.rows]


# Values bound per statement: 999 before SQLite 3.32 (32,766 since); the older bound keeps
# any SQLite Python may bring, and still makes a hundred rows one step. PostgreSQL's
# protocol counts parameters in 16 bits.
_MAX_VARIABLES = {"sqlite": 999, "postgresql": 65_535}


_NAMED = re.compile(r"%\((\w+)\)s")  # psycopg's named placeholder, as SQLAlchemy writes it


def _insert_rows_at_once(
    cursor: Any,
    sql: str,
    values: list[Sequence[Any]] | list[dict[str, Any]],
    sizes: list[int],
) -> None:
    """One multi-row INSERT per chunk (``sizes``: ``_chunk_sizes``) instead of executemany.
    sqlite3 lets go of the GIL around every row's step, and a background thread inserting a
    thousand rows (the audit ingest) then swapped the GIL with the busy event loop a
    thousand times, which cost the server more CPU than the inserts did. psycopg's
    executemany costs about 18 µs of client CPU per row, and a pipeline's set-up per batch."""
    head, _, one_row = sql.rpartition(" VALUES ")
    one_row = one_row.partition(" RETURNING ")[0]  # PostgreSQL adds one: nothing is read
    names = _NAMED.findall(one_row)
    rows: list[Sequence[Any]] = cast("list[Sequence[Any]]", values)
    if names:  # psycopg: rows in order, and numbered placeholders (below)
        rows = [[row[name] for name in names] for row in cast("list[dict[str, Any]]", values)]
    start = 0
    for size in sizes:
        chunk = rows[start : start + size]
        text = _numbered(one_row, size) if names else _repeated(one_row, size)
        cursor.execute(f"{head} VALUES {text}", [value for row in chunk for value in row])
        start += size


def _chunk_sizes(count: int, per_insert: int, *, powers_of_two: bool) -> list[int]:
    """How many of ``count`` rows each INSERT holds, at most ``per_insert``.

    SQLite: powers of two (the most that fit, then what is left the same way). sqlite3
    prepares each distinct statement text and keeps 128 per connection; a text for every
    remainder size (the audit ingest's batches come in all sizes) made a worker under load
    grow by 15-25 MiB of them. PostgreSQL: as few statements as hold the rows, since each
    more is a round trip, and in autocommit a transaction around them (two more)."""
    if not powers_of_two:
        return [min(per_insert, count - start) for start in range(0, count, per_insert)]
    most = 1 << (per_insert.bit_length() - 1)
    sizes = []
    while count:
        size = min(most, 1 << (count.bit_length() - 1))
        sizes.append(size)
        count -= size
    return sizes


@functools.lru_cache(maxsize=64)
def _repeated(one_row: str, count: int) -> str:
    return ",".join([one_row] * count)


@functools.lru_cache(maxsize=64)
def _numbered(one_row: str, count: int) -> str:
    """``count`` rows of VALUES with PostgreSQL's own $n placeholders, for a RawCursor:
    psycopg parses a query's %s placeholders on every execution once the text is longer
    than its cache takes (4 KiB), which cost more than the insert itself."""
    parts = _NAMED.split(one_row)  # text, name, text, name, ..., text
    width = len(parts) // 2
    rows = []
    for row in range(count):
        out = [parts[0]]
        for column in range(width):
            out.append(f"${row * width + column + 1}")
            out.append(parts[2 * column + 2])
        rows.append("".join(out))
    return ",".join(rows)


class Executor:
    """Executes statements on one DBAPI connection for the length of one transaction."""

    def __init__(self, dbapi_connection: Any, dialect: Dialect) -> None:
        self.dbapi_connection = dbapi_connection
        self.dialect = dialect
        self._savepoints = 0
        self._integrity_error: type[Exception] = dialect.loaded_dbapi.IntegrityError
        self._text_refuses_nul = dialect.name == "postgresql"

    def compiled(self, statement: ClauseElement, *, cache: bool) -> Compiled:
        if not cache:
            return Compiled(statement, self.dialect, expand=True)
        return _compile_cached(statement, self.dialect)

    def execute(
        self,
        statement: ClauseElement,
        params: Mapping[str, Any] | None = None,
        *,
        cache: bool = False,
    ) -> Result:
        compiled = self.compiled(statement, cache=cache)
        values = compiled.parameters(params)
        if self._text_refuses_nul and has_nul(values):
            # PostgreSQL text cannot hold U+0000, so no stored row can equal such a value: a
            # query finds nothing, and a write is refused (SQLite stores it as given).
            if isinstance(statement, Select):
                return Result.empty()
            raise TextNotStorable("text with a NUL character cannot be stored")
        cursor = self.dbapi_connection.cursor()
        try:
            cursor.execute(compiled.sql, values)
            return Result(cursor, compiled)
        except self._integrity_error as exc:
            raise ConstraintViolation(str(exc)) from exc
        finally:
            cursor.close()

    def insert_many(self, table: Any, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert ``rows`` (dicts with the same keys), as few statements as can hold them."""
        if not rows:
            return
        key = (table.name, tuple(rows[0]), self.dialect.name)
        compiled = _INSERTS.get(key)
        if compiled is None:
            statement = table.insert().values({name: bindparam(name) for name in rows[0]})
            compiled = _INSERTS[key] = Compiled(statement, self.dialect, expand=False)
        values = [compiled.parameters(row) for row in rows]
        if self._text_refuses_nul and any(has_nul(v) for v in values):
            raise TextNotStorable("text with a NUL character cannot be stored")
        many = len(values) > 1
        if many and self.dialect.name == "postgresql":
            cursor = _raw_cursor(self.dbapi_connection)
        else:
            cursor = self.dbapi_connection.cursor()
        try:
            if not many:
                cursor.execute(compiled.sql, values[0])
            else:
                per_insert = max(1, _MAX_VARIABLES.get(self.dialect.name, 999) // len(rows[0]))
                sqlite = self.dialect.name == "sqlite"
                sizes = _chunk_sizes(len(values), per_insert, powers_of_two=sqlite)
                with self._atomic(len(sizes) > 1):
                    _insert_rows_at_once(cursor, compiled.sql, values, sizes)  # type: ignore[arg-type]
        except self._integrity_error as exc:
            raise ConstraintViolation(str(exc)) from exc
        finally:
            cursor.close()

    @contextmanager
    def _atomic(self, several_statements: bool) -> Iterator[None]:
        """Statements that must hold together, on a connection that may be in autocommit
        (``SqlStore.write_at_once``): a transaction of their own there."""
        # psycopg's flag only: sqlite3 has an ``autocommit`` of its own since Python 3.12.
        postgresql = self.dialect.name == "postgresql"
        if several_statements and postgresql and self.dbapi_connection.autocommit:
            with self.dbapi_connection.transaction():
                yield
            return
        yield

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested transaction: an error inside rolls back only what happened inside.

        Only for one statement at a time. SQLite needs none: a statement that breaks a
        constraint is undone by itself and the transaction stays usable, whereas PostgreSQL
        aborts the whole transaction unless a savepoint catches the error.
        """
        if self.dialect.name == "sqlite":
            yield
            return
        self._savepoints += 1
        name = f"sp{self._savepoints}"
        self.raw(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self.raw(f"ROLLBACK TO SAVEPOINT {name}")
            self.raw(f"RELEASE SAVEPOINT {name}")
            raise
        self.raw(f"RELEASE SAVEPOINT {name}")

    def raw(self, sql: str) -> None:
        cursor = self.dbapi_connection.cursor()
        try:
            cursor.execute(sql)
        finally:
            cursor.close()


def _raw_cursor(connection: Any) -> Any:
    import psycopg  # noqa: PLC0415 - only PostgreSQL installations have it

    return psycopg.RawCursor(connection)


def has_nul(values: Sequence[Any] | Mapping[str, Any]) -> bool:
    """Whether any text among ``values`` holds U+0000 (PostgreSQL text cannot)."""
    items = values.values() if isinstance(values, Mapping) else values
    return any(isinstance(v, str) and "\x00" in v for v in items)


# Keyed by the statement object itself: statements cached here are module-level constants
# that live as long as the process, so the cache cannot grow without bound.
_CACHE: dict[tuple[int, str], tuple[ClauseElement, Compiled]] = {}


# Bulk inserts by (table, columns, dialect): a handful of shapes in all.
_INSERTS: dict[tuple[str, tuple[str, ...], str], Compiled] = {}


def _compile_cached(statement: ClauseElement, dialect: Dialect) -> Compiled:
    key = (id(statement), dialect.name)
    hit = _CACHE.get(key)
    if hit is None or hit[0] is not statement:
        hit = (statement, Compiled(statement, dialect, expand=False))
        _CACHE[key] = hit
    return hit[1]
