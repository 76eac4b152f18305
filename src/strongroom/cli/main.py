"""``strongroom serve`` and the top-level group."""

from __future__ import annotations

import ipaddress
import logging
import os
import sys
from typing import Any

import click
import uvicorn

from strongroom import __version__
from strongroom.cli import audit_lookup  # noqa: F401 - adds `audit lookup` and `audit tail`
from strongroom.cli.audit import audit
from strongroom.cli.copy import copy_command
from strongroom.cli.functions import functions, rotations
from strongroom.cli.keys import master_key
from strongroom.cli.options import load_settings, setting_options
from strongroom.installation import ROOT_CREDENTIALS_FILE, Installation, open_installation
from strongroom.settings import SETTINGS, Settings, SettingsError
from strongroom.storage import migrate
from strongroom.storage.base import SchemaTooNew
from strongroom.storage.sql import SqlStore


@click.group()
@click.version_option(__version__, prog_name="strongroom")
def main() -> None:
    """Strongroom: a self-hosted secrets manager that speaks the AWS Secrets Manager API."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def open_or_exit(settings: Settings) -> Installation:
    try:
        return open_installation(settings)
    except (SettingsError, SchemaTooNew) as exc:
        raise click.ClickException(str(exc)) from exc


@main.command()
@setting_options()
def serve(**flags: Any) -> None:
    """Run the server (SQLite in the data dir unless --database-url says otherwise)."""
    settings = load_settings(flags)
    if settings.dev and not _is_loopback(settings.host):
        raise click.UsageError("--dev binds to loopback only: use --host 127.0.0.1 or ::1")
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    if settings.log_level != "debug":
        logging.getLogger("alembic").setLevel(logging.WARNING)  # its start-up chatter
    installation = open_or_exit(settings)
    _announce(installation)
    if settings.workers > 1:
        # The first start (keys, schema, root key) has happened here. Worker processes open
        # the installation themselves from the exported variables; this process becomes
        # the supervisor (strongroom/supervisor.py), so it holds no copy of the application.
        installation.close()
        _export(settings)
        sys.stdout.flush()
        argv = [sys.executable, "-m", "strongroom.supervisor", *_supervisor_flags(settings)]
        os.execv(sys.executable, argv)  # noqa: S606 - our own interpreter, our own arguments
    from strongroom.app import build_app  # noqa: PLC0415 - keeps `strongroom --help` fast

    uvicorn.run(
        build_app(installation),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,  # requests are logged by strongroom.http, without bodies
        server_header=False,
    )


def _supervisor_flags(settings: Settings) -> list[str]:
    return [
        f"--workers={settings.workers}",
        f"--host={settings.host}",
        f"--port={settings.port}",
        f"--log-level={settings.log_level}",
    ]


def _export(settings: Settings) -> None:
    for setting in SETTINGS:
        value = getattr(settings, setting.name)
        if value is not None:
            os.environ[setting.env] = str(value).lower() if isinstance(value, bool) else str(value)


def _announce(installation: Installation) -> None:
    settings = installation.settings
    echo = click.echo
    if settings.dev:
        click.secho(
            "WARNING: --dev: ANY well-formed credentials are accepted and act as the account "
            "root. Never use this for real secrets.",
            fg="red",
            bold=True,
            err=True,
        )
    if installation.created_master_key:
        click.secho(
            f"Created a master key in {settings.resolved_master_key_file}: back it up; without "
            "it no secret can be read.",
            fg="yellow",
            err=True,
        )
    echo(f"Strongroom {__version__}")
    echo(f"  endpoint:   {settings.endpoint}")
    echo(f"  account id: {installation.account_id}")
    echo(f"  data dir:   {settings.data_dir.resolve()}")
    if installation.new_root_credentials is not None:
        key_id, secret = installation.new_root_credentials
        echo(
            "  root credentials (shown once; also in "
            f"{settings.data_dir / ROOT_CREDENTIALS_FILE}, mode 0600):"
        )
        echo(f"    AWS_ACCESS_KEY_ID={key_id}")
        echo(f"    AWS_SECRET_ACCESS_KEY={secret}")
    sys.stdout.flush()


@main.command("migrate")
@setting_options("data_dir", "database_url")
def migrate_command(**flags: Any) -> None:
    """Bring the database schema up to date (serve does this too, on start)."""
    settings = load_settings(flags)
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    store = SqlStore.from_url(settings.resolved_database_url)
    try:
        migrate.upgrade(store.engine)
        click.echo(f"schema at revision {migrate.current_revision(store.engine)}")
    except SchemaTooNew as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        store.close()


main.add_command(master_key)
main.add_command(functions)
main.add_command(rotations)
main.add_command(copy_command)
main.add_command(audit)
