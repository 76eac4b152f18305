"""Many rows in few INSERT statements (``storage.execute``), on a real SQLite database."""

from __future__ import annotations

import sqlite3
from typing import Any

from strongroom.storage.execute import _chunk_sizes, _insert_rows_at_once

_COLUMNS = 10
_SQL = (
    "INSERT INTO t (c0, c1, c2, c3, c4, c5, c6, c7, c8, c9) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class _Noting:
    """A sqlite3 cursor that notes each statement text it runs."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self.cursor = cursor
        self.texts: set[str] = set()

    def execute(self, sql: str, params: Any) -> None:
        self.texts.add(sql)
        self.cursor.execute(sql, params)


def test_batches_of_every_size_share_a_few_statement_texts_and_keep_their_rows() -> None:
    # Each distinct text is prepared and cached by the driver: remainders of every size
    # once filled the statement caches of a server under audit load with megabytes of them.
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (c0, c1, c2, c3, c4, c5, c6, c7, c8, c9)")
    noting = _Noting(db.cursor())
    expected = []
    for size in range(1, 301):
        rows = [[size, n, *range(_COLUMNS - 2)] for n in range(size)]
        expected += rows
        sizes = _chunk_sizes(size, 99, powers_of_two=True)  # 999 values: 99 rows of 10
        _insert_rows_at_once(noting, _SQL, rows, sizes)
    stored = [list(row) for row in db.execute("SELECT * FROM t ORDER BY rowid")]
    assert stored == expected  # every row, in order
    counts = sorted({text.count("(?") for text in noting.texts})
    assert counts == [1, 2, 4, 8, 16, 32, 64]  # powers of two, none past the limit


def test_postgresql_takes_as_few_statements_as_hold_the_rows_sqlite_powers_of_two() -> None:
    # Each statement more is a round trip (and in autocommit a transaction around them).
    assert _chunk_sizes(7, 5957, powers_of_two=False) == [7]
    assert _chunk_sizes(6000, 5957, powers_of_two=False) == [5957, 43]
    assert _chunk_sizes(99, 99, powers_of_two=True) == [64, 32, 2, 1]
