"""``strongroom audit verify``: check the audit trail's digest chain and log files."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

from strongroom.audit.digests import verify as verify_directory
from strongroom.audit.store import SIGNING_KEY
from strongroom.cli.options import load_settings, setting_options

# ISO 8601 as people type it; a trailing Z is accepted (times are UTC either way).
_WHEN = click.DateTime(
    formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%MZ"]
)


@click.group()
def audit() -> None:
    """Inspect the audit trail."""


def _public_key(audit_dir: Path, pinned: Path | None) -> Ed25519PublicKey:
    """The pinned public key when given; else the one of the installation's signing key.

    Pinning matters: someone able to rewrite the data dir can also replace the key there.
    """
    try:
        if pinned is not None:
            key: Any = load_pem_public_key(pinned.read_bytes())
        else:
            key = load_pem_private_key((audit_dir / SIGNING_KEY).read_bytes(), password=None)
            key = key.public_key()
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"cannot load the audit signing key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise click.ClickException("the audit signing key is not an Ed25519 key")
    return key


@audit.command()
@setting_options("data_dir")
@click.option("--from", "start", type=_WHEN, help="Check digests from (ISO, UTC).")
@click.option("--to", "end", type=_WHEN, help="Check digests up to (ISO, UTC).")
@click.option(
    "--public-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PEM public key to check signatures against (default: the data dir's own key).",
)
def verify(
    start: datetime | None, end: datetime | None, public_key: Path | None, **flags: Any
) -> None:
    """Check every digest's signature and chain, every log file's hash and records.

    Exits 1 and names the first broken link when anything is broken.
    """
    audit_dir = load_settings(flags).data_dir / "audit"
    if not audit_dir.is_dir():
        raise click.ClickException(f"no audit trail at {audit_dir}")
    report = verify_directory(audit_dir, _public_key(audit_dir, public_key), start=start, end=end)
    click.echo(
        f"{report.digests} digests, {report.log_files} log files, {report.records} records "
        f"checked; {report.journal_records} records in the journal"
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
