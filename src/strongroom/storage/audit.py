"""The audit part of ``SqlTransaction`` (see ``storage.base`` for the contract).

``audit_events`` is the trail's journal and its query index; ``audit_files`` holds the sealed
CloudTrail log files and digests (``strongroom.audit.sealing``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from strongroom.storage import schema
from strongroom.storage.base import AuditEventRow, AuditFileRow, AuditQuery, SealableRecord
from strongroom.storage.execute import Executor

_E = schema.audit_events
_AF = schema.audit_files
_FILTER_COLUMNS = {
    "event_id": _E.c.event_id,
    "event_name": _E.c.event_name,
    "event_source": _E.c.event_source,
    "user_name": _E.c.user_name,
    "access_key_id": _E.c.access_key_id,
    "resource_name": _E.c.resource_name,
    "read_only": _E.c.read_only,
}


# The sealer's statements (run every second, and thousands of records at a time) are built
# once and compiled once per dialect, like the hot paths' (``storage.statements``): compiling
# them on each call cost a seal about as much CPU as compressing its log file.
_UNSEALED = _E.c.sealed_in.is_(None)
_UNSEALED_RECORDS = (
    sa.select(_E.c.seq, _E.c.event_time, _E.c.record)
    .where(_UNSEALED)
    .order_by(_E.c.seq)
    .limit(sa.bindparam("limit"))
)
_UNSEALED_EVENTS = sa.select(_E).where(_UNSEALED).order_by(_E.c.seq).limit(sa.bindparam("limit"))
_UNSEALED_AT = (
    sa.select(_E.c.seq).where(_UNSEALED).order_by(_E.c.seq).limit(1).offset(sa.bindparam("offset"))
)
_MARK_SEALED = (
    sa.update(_E)
    .where(_UNSEALED, _E.c.seq.between(sa.bindparam("first"), sa.bindparam("last")))
    .values(sealed_in=sa.bindparam("sequence"))
)
_NEWEST_DIGEST = (
    sa.select(_AF).where(_AF.c.kind == "digest").order_by(_AF.c.sequence.desc()).limit(1)
)
_FILE_COLUMNS = ("name", "kind", "sequence", "content", "end_time")
_INSERT_FILE = sa.insert(_AF).values({name: sa.bindparam(name) for name in _FILE_COLUMNS})


def _indexable(value: Any) -> Any:
    # PostgreSQL text cannot hold U+0000; a name a caller sent with one (refused later by
    # the operation) must still be recorded, so the filter columns get U+FFFD instead. The
    # record itself is JSON, where it is the escape \u0000.
    return value.replace("\x00", "\ufffd") if isinstance(value, str) else value


def _event_values(row: AuditEventRow) -> dict[str, Any]:
    # Spelled out: this runs for every record of every call, holding the GIL. The ids and
    # the source are Strongroom's own; the record is JSON, where a NUL is the text \u0000.
    return {
        "event_id": row.event_id,
        "event_time": row.event_time,
        "event_source": row.event_source,
        "event_name": _indexable(row.event_name),
        "aws_region": _indexable(row.aws_region),
        "user_name": _indexable(row.user_name),
        "access_key_id": _indexable(row.access_key_id),
        "resource_name": _indexable(row.resource_name),
        "read_only": row.read_only,
        "record": row.record,
    }


def _event(row: Any) -> AuditEventRow:
    values = row._asdict()
    values["read_only"] = bool(values["read_only"])
    return AuditEventRow(**values)


def _file(row: Any) -> AuditFileRow:
    values = row._asdict()
    values["content"] = bytes(values["content"])
    return AuditFileRow(**values)


class AuditQueries:
    """Mixed into ``SqlTransaction``: the audit methods of the ``Transaction`` contract."""

    db: Executor

    def insert_audit_events(self, rows: Sequence[AuditEventRow]) -> None:
        self.db.insert_many(_E, [_event_values(row) for row in rows])

    def audit_events(self, query: AuditQuery) -> list[AuditEventRow]:
        stmt = sa.select(_E)
        if query.start is not None:
            stmt = stmt.where(_E.c.event_time >= query.start)
        if query.end is not None:
            stmt = stmt.where(_E.c.event_time <= query.end)
        if query.region is not None:
            stmt = stmt.where(_E.c.aws_region == query.region)
        for name, value in query.equals:
            stmt = stmt.where(_FILTER_COLUMNS[name] == _indexable(value))
        if query.after_seq is not None:
            stmt = stmt.where(_after(query))
        keys = (_E.c.event_time, _E.c.seq) if query.by_time else (_E.c.seq,)
        order = tuple(key.desc() for key in keys) if query.newest_first else keys
        return [_event(r) for r in self.db.execute(stmt.order_by(*order).limit(query.limit))]

    def unsealed_audit_events(self, limit: int) -> list[AuditEventRow]:
        rows = self.db.execute(_UNSEALED_EVENTS, {"limit": limit}, cache=True)
        return [_event(r) for r in rows]

    def unsealed_audit_records(self, limit: int) -> list[SealableRecord]:
        rows = self.db.execute(_UNSEALED_RECORDS, {"limit": limit}, cache=True)
        return [SealableRecord(seq, time, record) for seq, time, record in rows]

    def unsealed_audit_count_reaches(self, count: int) -> bool:
        offset = {"offset": max(count - 1, 0)}
        return self.db.execute(_UNSEALED_AT, offset, cache=True).first() is not None

    def audit_events_sealed_in(self, sequence: int) -> list[AuditEventRow]:
        stmt = sa.select(_E).where(_E.c.sealed_in == sequence).order_by(_E.c.seq)
        return [_event(r) for r in self.db.execute(stmt)]

    def mark_audit_events_sealed(self, first_seq: int, last_seq: int, sequence: int) -> int:
        params = {"first": first_seq, "last": last_seq, "sequence": sequence}
        return int(self.db.execute(_MARK_SEALED, params, cache=True).rowcount)

    def delete_audit_events_sealed_through(self, sequence: int) -> int:
        result = self.db.execute(sa.delete(_E).where(_E.c.sealed_in <= sequence))
        return int(result.rowcount)

    def insert_audit_file(self, row: AuditFileRow) -> None:
        """Raises ConstraintViolation when that chain position is taken (another sealer)."""
        values = {name: getattr(row, name) for name in _FILE_COLUMNS}
        with self.db.savepoint():
            self.db.execute(_INSERT_FILE, values, cache=True)

    def audit_file(self, name: str) -> AuditFileRow | None:
        row = self.db.execute(sa.select(_AF).where(_AF.c.name == name)).first()
        return None if row is None else _file(row)

    def audit_file_names(
        self, kind: str | None = None, *, after: int = 0
    ) -> list[tuple[str, str, int, float]]:
        """(name, kind, sequence, end_time) of every stored file past chain position
        ``after``, by sequence."""
        stmt = sa.select(_AF.c.name, _AF.c.kind, _AF.c.sequence, _AF.c.end_time)
        if kind is not None:
            stmt = stmt.where(_AF.c.kind == kind)
        if after:
            stmt = stmt.where(_AF.c.sequence > after)
        rows = self.db.execute(stmt.order_by(_AF.c.sequence, _AF.c.kind))
        return [(r.name, r.kind, int(r.sequence), float(r.end_time)) for r in rows]

    def newest_audit_digest(self) -> AuditFileRow | None:
        row = self.db.execute(_NEWEST_DIGEST, cache=True).first()
        return None if row is None else _file(row)

    def delete_audit_files_through(self, kind: str, sequence: int) -> int:
        stmt = sa.delete(_AF).where(_AF.c.kind == kind, _AF.c.sequence <= sequence)
        return int(self.db.execute(stmt).rowcount)


def _after(query: AuditQuery) -> sa.ColumnElement[bool]:
    """Past the record a page ended on: newest first pages downwards, oldest first upwards."""
    assert query.after_seq is not None  # noqa: S101 - only called with one
    seq, at = query.after_seq, query.after_time
    if not query.by_time or at is None:
        return _E.c.seq < seq if query.newest_first else _E.c.seq > seq
    # Spelled out rather than as a row value so that the time index bounds the scan.
    if query.newest_first:
        return sa.and_(_E.c.event_time <= at, sa.or_(_E.c.event_time < at, _E.c.seq < seq))
    return sa.and_(_E.c.event_time >= at, sa.or_(_E.c.event_time > at, _E.c.seq > seq))
