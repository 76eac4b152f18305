"""``strongroom audit lookup`` and ``strongroom audit tail``: read the audit trail's records.

Both read ``audit_events`` in the installation's database directly (no server, no master key
needed), so they work while servers run and when none does. Importing this module adds the
commands to the ``audit`` group (``cli.main`` imports it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import click
import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from strongroom.audit import trail
from strongroom.audit.journal import JOURNAL_DIR
from strongroom.cli.audit import audit, settle_journals
from strongroom.cli.options import load_settings, setting_options
from strongroom.storage.base import AuditEventRow, AuditQuery, StorageError
from strongroom.storage.sql import SqlStore

# ISO 8601 as people type it; a trailing Z is accepted (times are UTC either way).
_WHEN: Final = click.DateTime(
    formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%MZ"]
)
# `tail -f` reads a little behind the newest record it has shown: on PostgreSQL, records are
# numbered when inserted but may commit out of that order, so one numbered just below the
# newest shown can appear a moment later. Those seen already are remembered and skipped.
_LOOKBACK: Final = 64
_BATCH: Final = 500


@contextmanager
def _open_trail(flags: dict[str, Any]) -> Iterator[SqlStore]:
    """The installation's store, for reading its trail; never creates or migrates one."""
    settings = load_settings(flags)
    url = sa.engine.make_url(settings.resolved_database_url)
    shown = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
        raise click.ClickException(f"no Strongroom installation at {settings.data_dir}")
    store = SqlStore.from_url(settings.resolved_database_url)
    try:
        try:
            has_trail = sa.inspect(store.engine).has_table("audit_events")
        except sa.exc.SQLAlchemyError as exc:
            raise click.ClickException(f"cannot open {shown}: {exc}") from exc
        if not has_trail:
            raise click.ClickException(
                f"no audit trail in {shown} (an older installation: run `strongroom migrate`)"
            )
        settle_journals(store, settings.data_dir / JOURNAL_DIR)
        yield store
    finally:
        store.close()


def _read(store: SqlStore, query: AuditQuery) -> list[AuditEventRow]:
    try:
        with store.read() as tx:
            return tx.audit_events(query)
    except (StorageError, sa.exc.SQLAlchemyError) as exc:
        raise click.ClickException(f"cannot read the audit trail: {exc}") from exc


def _epoch(moment: datetime | None) -> float | None:
    return None if moment is None else moment.replace(tzinfo=UTC).timestamp()


def _time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _error(row: AuditEventRow) -> str:
    code = json.loads(row.record).get("errorCode")
    return code if isinstance(code, str) else ""


def _source(row: AuditEventRow) -> str:
    return row.event_source.removesuffix(".amazonaws.com")


def _line(row: AuditEventRow) -> str:
    """One record on one line, for `tail`."""
    fields = [
        _time(row.event_time),
        f"{_source(row):<14}",
        f"{row.event_name:<28}",
        row.user_name or "-",
        row.resource_name or "-",
        _error(row),
    ]
    return "  ".join(fields).rstrip()


def _print(rows: list[AuditEventRow], output: str) -> None:
    for row in rows:
        click.echo(row.record if output == "json" else _line(row))


@audit.command("lookup")
@click.option("--event-name", help="only calls of this action, e.g. GetSecretValue")
@click.option("--user-name", help="only calls by this IAM user, role session, or root")
@click.option("--resource-name", help="only calls on this secret (name or ARN), user or role")
@click.option("--from", "start", type=_WHEN, help="from this time on (ISO, UTC)")
@click.option("--to", "end", type=_WHEN, help="up to this time (ISO, UTC)")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option(
    "--output",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="json: one CloudTrail record per line",
)
@setting_options("data_dir", "database_url")
def lookup(  # noqa: PLR0917 - one parameter per flag, as click passes them
    event_name: str | None,
    user_name: str | None,
    resource_name: str | None,
    start: datetime | None,
    end: datetime | None,
    limit: int,
    output: str,
    **flags: Any,
) -> None:
    """The newest calls in the audit trail that match every filter given, newest first."""
    equals: list[tuple[str, Any]] = []
    if event_name is not None:
        equals.append(("event_name", event_name))
    if user_name is not None:
        equals.append(("user_name", user_name))
    if resource_name is not None:
        # A secret's ARN finds the calls that named it by name, as LookupEvents does.
        equals.append(("resource_name", trail.resource_name(resource_name)))
    query = AuditQuery(
        start=_epoch(start),
        end=_epoch(end),
        equals=tuple(equals),
        newest_first=True,
        by_time=True,
        limit=limit,
    )
    with _open_trail(flags) as store:
        rows = _read(store, query)
    if output == "json":
        _print(rows, output)
        return
    table = Table("time", "source", "event", "user", "resource", "error")
    for row in rows:
        table.add_row(
            _time(row.event_time),
            _source(row),
            row.event_name,
            row.user_name or "",
            row.resource_name or "",
            _error(row),
        )
    Console(width=200).print(table)


@audit.command("tail")
@click.option("-f", "--follow", is_flag=True, help="keep printing new records as they arrive")
@click.option("-n", "--lines", type=click.IntRange(min=0), default=10, show_default=True)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.01),
    default=1.0,
    show_default=True,
    help="seconds between checks for new records, with --follow",
)
@click.option(
    "--output",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one CloudTrail record per line",
)
@click.option("--max-polls", type=click.IntRange(min=0), hidden=True)  # bounds -f, for tests
@setting_options("data_dir", "database_url")
def tail(
    follow: bool,
    lines: int,
    interval: float,
    output: str,
    max_polls: int | None,
    **flags: Any,
) -> None:
    """The newest records, oldest first; with -f, then every new one until interrupted."""
    with _open_trail(flags) as store:
        newest = _read(store, AuditQuery(newest_first=True, limit=max(lines, _LOOKBACK)))
        _print(newest[:lines][::-1], output)
        if not follow:
            return
        seen = {row.seq for row in newest}
        last = max(seen, default=0)
        polls = 0
        try:
            while max_polls is None or polls < max_polls:
                time.sleep(interval)
                polls += 1
                last = _follow(store, seen, last, output)
        except KeyboardInterrupt:
            return


def _follow(store: SqlStore, seen: set[int], last: int, output: str) -> int:
    """Print the records not yet seen; returns the newest position now seen."""
    while True:
        after = max(last - _LOOKBACK, 0)
        rows = _read(store, AuditQuery(after_seq=after, newest_first=False, limit=_BATCH))
        fresh = [row for row in rows if row.seq not in seen]
        _print(fresh, output)
        seen.update(row.seq for row in fresh)
        last = max(last, *(row.seq for row in rows)) if rows else last
        seen.difference_update({seq for seq in seen if seq <= last - _LOOKBACK})
        if len(rows) < _BATCH:
            return last
