"""``strongroom master-key rotate``: a new master key, every data key re-wrapped under it."""

from __future__ import annotations

from typing import Any

import click
from rich.progress import Progress

from strongroom.audit.sealing import SIGNING_KEY_META
from strongroom.cli.options import load_settings, setting_options
from strongroom.crypto.envelope import (
    Sealer,
    aad_for_access_key,
    aad_for_audit_key,
    aad_for_function_env,
    aad_for_version,
)
from strongroom.crypto.keys import add_new_key, load_keyring
from strongroom.storage import migrate
from strongroom.storage.sql import SqlStore

BATCH = 500


@click.group("master-key")
def master_key() -> None:
    """Manage the master key that wraps every data key."""


@master_key.command()
@setting_options("data_dir", "database_url", "master_key_file")
def rotate(**flags: Any) -> None:
    """Make a new master key current and re-wrap every data key under it.

    Values are not re-encrypted, only their small wrapped data keys. The old key stays in the
    key file (running servers pick up the new keyring within a second), so nothing is down.
    All re-wrapping happens in one transaction: it either completes or changes nothing.
    """
    settings = load_settings(flags)
    path = settings.resolved_master_key_file
    if not path.exists():
        raise click.ClickException(f"no master key file at {path}")
    load_keyring(path)  # refuse early on a bad file, before adding a key to it
    keyring = add_new_key(path)
    sealer = Sealer(keyring)
    store = SqlStore.from_url(settings.resolved_database_url)
    try:
        migrate.upgrade(store.engine)
        with store.write() as tx, Progress() as progress:
            keys = tx.access_key_blobs()
            envs = tx.function_env_blobs()
            task = progress.add_task("re-wrapping data keys", total=None)
            after, done = 0, 0
            while batch := tx.version_blobs(after, BATCH):
                for pk, arn, version_id, blob in batch:
                    new = sealer.rewrap(blob, aad_for_version(arn, version_id))
                    tx.set_version_value(pk, new, sealer.key_id_of(new))
                after = batch[-1][0]
                done += len(batch)
                progress.update(task, completed=done)
            for access_key_id, blob in keys:
                new = sealer.rewrap(blob, aad_for_access_key(access_key_id))
                tx.replace_access_key_blob(access_key_id, new, sealer.key_id_of(new))
            for account_id, name, blob in envs:
                new = sealer.rewrap(blob, aad_for_function_env(account_id, name))
                tx.replace_function_env_blob(account_id, name, new, sealer.key_id_of(new))
            audit_key = tx.get_meta(SIGNING_KEY_META)
            if audit_key is not None:
                new = sealer.rewrap(bytes.fromhex(audit_key), aad_for_audit_key())
                tx.set_meta(SIGNING_KEY_META, new.hex())
            total = done + len(keys) + len(envs)
            progress.update(task, completed=total, total=total)
    finally:
        store.close()
    click.echo(
        f"master key rotated: {keyring.current.key_id} is current; "
        f"{done} secret versions, {len(keys)} access keys and {len(envs)} function environments "
        "re-wrapped"
    )
