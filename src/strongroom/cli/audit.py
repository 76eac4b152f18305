"""``strongroom audit``: verify, seal, export the audit trail, and show its public key."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from strongroom.audit.digests import DirectoryFiles, TrailFiles
from strongroom.audit.digests import verify as verify_trail
from strongroom.audit.journal import JOURNAL_DIR, settle
from strongroom.audit.sealing import (
    AUDIT_DIR,
    StoreFiles,
    TrailSealer,
    export,
    public_pem,
    stored_public_key,
)
from strongroom.cli.options import load_settings, setting_options
from strongroom.installation import Installation, open_installation
from strongroom.storage.base import Store
from strongroom.storage.clock import DatabaseClock

# ISO 8601 as people type it; a trailing Z is accepted (times are UTC either way).
_WHEN = click.DateTime(
    formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%MZ"]
)
_INSTALLATION = ("data_dir", "database_url", "master_key_file")


@click.group()
def audit() -> None:
    """Inspect the audit trail."""


def _open(flags: dict[str, Any]) -> Installation:
    try:
        installation = open_installation(load_settings(flags))
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"cannot open the installation: {exc}") from exc
    settle_journals(installation.store, installation.settings.data_dir / JOURNAL_DIR)
    return installation


def settle_journals(store: Store, directory: Path) -> None:
    """Records of reads reach the trail from each server process's journal a moment after
    the reply (audit/journal.py): wait for those, so a call just made shows."""
    if not settle(store, directory):
        click.echo(
            "note: a server process has not yet moved its newest records into the trail; "
            "they are not shown",
            err=True,
        )


def _pinned(path: Path) -> Ed25519PublicKey:
    try:
        key = load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"cannot load the public key {path}: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise click.ClickException(f"{path} is not an Ed25519 public key")
    return key


@audit.command()
@setting_options(*_INSTALLATION)
@click.option("--from", "start", type=_WHEN, help="Check digests from (ISO, UTC).")
@click.option("--to", "end", type=_WHEN, help="Check digests up to (ISO, UTC).")
@click.option(
    "--public-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PEM public key to check signatures against (default: the installation's own). "
    "Pin it: whoever can rewrite the database can also replace the key stored there.",
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Check an exported copy (strongroom audit export) instead of the database.",
)
def verify(
    start: datetime | None,
    end: datetime | None,
    public_key: Path | None,
    directory: Path | None,
    **flags: Any,
) -> None:
    """Check every digest's signature and chain, every log file's hash and records.

    Exits 1 and names the first broken link when anything is broken.
    """
    installation = _open(flags)
    try:
        key = _pinned(public_key) if public_key else None
        files: TrailFiles = StoreFiles(installation.store)
        if directory is not None:
            files = DirectoryFiles(directory)
        if key is None:
            with installation.store.read() as tx:
                key = stored_public_key(tx)
        if key is None:
            raise click.ClickException("this installation has no audit signing key yet")
        report = verify_trail(files, key, start=start, end=end)
    finally:
        installation.close()
    click.echo(
        f"{report.digests} digests, {report.log_files} log files, {report.records} records "
        f"checked; {report.journal_records} records not yet sealed"
    )
    for note in report.notes:
        click.echo(f"note: {note}")
    if report.ok:
        click.echo("OK: the audit trail is intact")
        return
    click.echo(f"BROKEN: first broken link: {report.first_broken}", err=True)
    for problem in report.problems[1:]:
        click.echo(f"also: {problem}", err=True)
    raise SystemExit(1)


@audit.command()
@setting_options(*_INSTALLATION)
def seal(**flags: Any) -> None:
    """Seal every record not yet in a log file now (servers do it every few minutes)."""
    installation = _open(flags)
    try:
        sealer = TrailSealer(
            installation.store,
            installation.audit_key,
            account_id=installation.account_id,
            clock=DatabaseClock(installation.store),
            mirror=installation.settings.data_dir / AUDIT_DIR,  # as a server's seal does
        )
        written = 0
        while sealer.seal() is not None:
            written += 1
    finally:
        installation.close()
    click.echo(f"{written} log files sealed")


@audit.command("export")
@setting_options(*_INSTALLATION)
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def export_command(directory: Path, **flags: Any) -> None:
    """Write the sealed log files and digests to DIRECTORY, as CloudTrail lays them out."""
    installation = _open(flags)
    try:
        written = export(installation.store, directory)
    finally:
        installation.close()
    click.echo(f"{written} files written to {directory}")


@audit.command("public-key")
@setting_options(*_INSTALLATION)
def public_key_command(**flags: Any) -> None:
    """Print the public key that verifies the digests (PEM), to pin it elsewhere."""
    installation = _open(flags)
    try:
        click.echo(public_pem(installation.audit_key.public_key()).decode(), nl=False)
    finally:
        installation.close()
