"""``strongroom copy``: move a whole installation to another database (SQLite <-> PostgreSQL)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path

import click
import sqlalchemy as sa
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.progress import Progress as RichProgress
from rich.table import Table

from strongroom.audit.journal import JOURNAL_DIR, adopt_orphans
from strongroom.storage import copy as copying
from strongroom.storage.base import SchemaTooNew
from strongroom.storage.sql import SqlStore

DATABASE_FILE = "strongroom.db"  # in a data dir (settings.resolved_database_url)
MASTER_KEY_FILE = "master.key"


class _Bar:
    """``storage.copy.Progress`` drawn by rich: one bar over every row, the table in hand."""

    def __init__(self, progress: RichProgress) -> None:
        self._progress = progress
        self._task: TaskID | None = None

    def start(self, counts: Mapping[str, int]) -> None:
        self._task = self._progress.add_task("copying", total=sum(counts.values()))

    def advance(self, table: str, rows: int) -> None:
        if self._task is not None:
            self._progress.update(self._task, advance=rows, description=f"copying {table}")

    def verifying(self) -> None:
        if self._task is not None:
            self._progress.update(self._task, description="verifying row counts")


def database_url(location: str) -> str:
    """A URL as given; a path: that SQLite file, or a data dir's strongroom.db."""
    if "://" in location:
        return location
    path = Path(location).expanduser()
    if path.is_file():
        return f"sqlite:///{path.resolve()}"
    return f"sqlite:///{path.resolve() / DATABASE_FILE}"


def _journal_of(url: str) -> Path | None:
    """The audit journal beside an embedded database (``<data dir>/audit-journal``)."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    return Path(parsed.database).parent / JOURNAL_DIR


def _parsed(url: str, flag: str) -> sa.URL:
    try:
        return sa.engine.make_url(url)
    except (sa.exc.ArgumentError, ValueError) as exc:  # ValueError: a port that is no number
        raise click.BadParameter(f"not a database URL: {exc}", param_hint=flag) from exc


def _shown(url: str) -> str:
    return sa.engine.make_url(url).render_as_string(hide_password=True)


@contextmanager
def _opened(url: str, role: str) -> Iterator[SqlStore]:
    try:
        store = SqlStore.from_url(url)
    except (sa.exc.ArgumentError, OSError) as exc:
        raise click.ClickException(f"cannot open the {role} {_shown(url)}: {exc}") from exc
    try:
        yield store
    finally:
        store.close()


@click.command("copy")
@click.option(
    "--from",
    "source",
    required=True,
    metavar="URL|PATH",
    help=(
        "The installation to copy (read only, but for what a crashed server left in its "
        "audit journal; a server may keep running on it)."
    ),
)
@click.option(
    "--to",
    "target",
    required=True,
    metavar="URL|PATH",
    help="An empty database: given the current schema, then filled.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=copying.BATCH_SIZE,
    show_default=True,
    help="Rows read and inserted at a time.",
)
def copy_command(source: str, target: str, batch_size: int) -> None:
    """Copy a whole installation into an empty database, e.g. SQLite to PostgreSQL.

    \b
    URL|PATH is one of:
      sqlite:///path/to/strongroom.db
      postgresql://user[:password]@host:5432/dbname   (psycopg 3)
      a data dir (its strongroom.db; for --to, created if missing)
      or the path of an existing SQLite file

    Rows are copied as they are: values stay sealed under the master key, which is not in
    the database, so the copy must be started with the same master key file
    (--master-key-file). The source must be at this release's schema; the target gets it
    through the migrations and must hold no data (one `strongroom serve` never started on).
    Everything is written in one transaction, then each table's row count is checked
    against the source's: a difference rolls the copy back and exits non-zero.
    """
    os.umask(0o077)  # the target file (SQLite) is for this user alone, like the data dir
    source_url, target_url = database_url(source), database_url(target)
    if _parsed(source_url, "--from") == _parsed(target_url, "--to"):
        raise click.UsageError("--from and --to name the same database")
    try:
        # Before opening: opening would create an empty file (and a lock file beside it).
        copying.require_database_file(_parsed(source_url, "--from"))
    except copying.CopyRefused as exc:
        raise click.ClickException(str(exc)) from exc
    if "://" not in target and not Path(target).is_file():
        Path(target).expanduser().mkdir(mode=0o700, parents=True, exist_ok=True)  # a data dir
    with ExitStack() as stack:
        source_store = stack.enter_context(_opened(source_url, "source"))
        target_store = stack.enter_context(_opened(target_url, "target"))
        try:
            copying.check_source(source_store.engine)
            # Records of reads that a server which died left in its journal belong to the
            # trail being copied: move them into the source first (a live server's it moves
            # in itself; those of its last moment may miss the copy, as later calls do).
            journal = _journal_of(source_url)
            if journal is not None:
                adopt_orphans(source_store, journal)
            copying.prepare_target(target_store.engine)
            counts = _copy(source_store, target_store, batch_size)
        except (copying.CopyRefused, copying.CopyFailed, SchemaTooNew) as exc:
            raise click.ClickException(str(exc)) from exc
        except copying.CountMismatch as exc:
            _print_counts(exc.counts)
            raise click.ClickException(f"{exc}; the copy was rolled back") from exc
        except sa.exc.OperationalError as exc:  # unreachable server, unwritable file, ...
            raise click.ClickException(f"database error: {exc.orig}") from exc
    _print_counts(counts)
    if not all(c.matches for c in counts):  # committed, yet read back different
        raise click.ClickException("row counts differ after the copy: see the table above")
    _report(counts, source, source_url, target, target_url)


def _copy(source: SqlStore, target: SqlStore, batch_size: int) -> list[copying.TableCount]:
    columns = (
        TextColumn("{task.description:<32}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with RichProgress(*columns, console=Console(stderr=True)) as progress:
        return copying.copy_database(
            source.engine, target.engine, batch_size=batch_size, progress=_Bar(progress)
        )


def _print_counts(counts: list[copying.TableCount]) -> None:
    table = Table("table", "source rows", "target rows", "", box=None)
    for count in counts:
        mark = "ok" if count.matches else "[red]MISMATCH[/red]"
        table.add_row(count.table, str(count.source), str(count.target), mark)
    Console().print(table)


def _report(
    counts: list[copying.TableCount], source: str, source_url: str, target: str, target_url: str
) -> None:
    total = sum(c.target for c in counts)
    click.echo(
        f"copied {total} rows in {len(counts)} tables from {_shown(source_url)} to "
        f"{_shown(target_url)}; every table's row count matches the source."
    )
    key = (
        (Path(source) / MASTER_KEY_FILE).resolve()
        if "://" not in source and Path(source).is_dir()
        else Path("<the source's master key file>")
    )
    where = (
        f"--data-dir {Path(target).resolve()}"
        if "://" not in target and Path(target).is_dir()
        else f"--database-url {_shown(target_url)}"
    )
    click.echo(
        "The master key is NOT in the database: start the copy with the same master key "
        f"file, e.g.\n  strongroom serve {where} --master-key-file {key}\n"
        "Access keys (the root key too) and the account id are copied: clients keep their "
        "credentials."
    )
