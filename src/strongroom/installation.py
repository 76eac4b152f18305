"""Opening an installation: data dir, master key, database schema, account id, root key.

Everything here happens once per process start; the first start of a new data dir also
creates what does not exist yet (and says so, through the returned ``Installation``).
"""

from __future__ import annotations

import os
import secrets
import string
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from strongroom.audit.sealing import signing_key
from strongroom.crypto.envelope import DecryptError, Sealer, aad_for_access_key, key_id_of
from strongroom.crypto.keys import load_or_create_keyring
from strongroom.settings import Settings, SettingsError
from strongroom.storage import migrate
from strongroom.storage.base import (
    AccessKeyRow,
    ConstraintViolation,
    Transaction,
    TransientConflict,
)
from strongroom.storage.sql import SqlStore

ROOT_CREDENTIALS_FILE = "root-credentials"
_KEY_ID_ALPHABET = string.ascii_uppercase + string.digits


@dataclass(slots=True)
class Installation:
    settings: Settings
    store: SqlStore
    sealer: Sealer
    account_id: str
    token_key: bytes
    audit_key: Ed25519PrivateKey  # signs the audit trail's digests (audit.sealing)
    created_master_key: bool = False
    # Set only on the start that generated them, so they can be shown once.
    new_root_credentials: tuple[str, str] | None = None

    def close(self) -> None:
        self.store.close()


FIRST_START_ATTEMPTS = 3


def open_installation(
    settings: Settings, environ: dict[str, str] | None = None, *, migrate_schema: bool = True
) -> Installation:
    """Open (on first start: create) the installation ``settings`` point at.

    ``migrate_schema=False`` is for worker processes whose parent has just migrated: they
    skip Alembic altogether, which keeps it out of their memory.
    """
    environ = dict(os.environ) if environ is None else environ
    # Everything Strongroom writes (database, WAL, keys, credentials) is for its user alone,
    # even in a data dir the operator made with looser permissions.
    os.umask(0o077)
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    settings.data_dir.chmod(0o700)
    keyring, created_key = load_or_create_keyring(settings.resolved_master_key_file)
    sealer = Sealer(keyring)
    store = SqlStore.from_url(settings.resolved_database_url)
    try:
        if migrate_schema:
            migrate.upgrade(store.engine)
        for attempt in range(FIRST_START_ATTEMPTS):
            try:
                with store.write() as tx:
                    account_id = _account_id(tx, settings)
                    token_key = _token_key(tx)
                    new_root = _root_key(tx, sealer, account_id, environ)
                    _check_master_key(tx, sealer, settings)
                    audit_key = signing_key(tx, sealer)
                    if new_root is not None:
                        # Written before the key is committed: a crash in between must not
                        # leave a root key that nobody was ever shown.
                        _write_private(settings.data_dir / ROOT_CREDENTIALS_FILE, new_root)
                break
            except (ConstraintViolation, TransientConflict):
                # Another node made its first start on the same database at the same moment
                # and wrote the account's rows first: read them again.
                if attempt == FIRST_START_ATTEMPTS - 1:
                    raise
    except BaseException:
        store.close()
        raise
    installation = Installation(
        settings=settings,
        store=store,
        sealer=sealer,
        account_id=account_id,
        token_key=token_key,
        audit_key=audit_key,
        created_master_key=created_key,
    )
    installation.new_root_credentials = new_root
    return installation


class WrongMasterKey(SettingsError):
    """The master key file cannot open what this database holds."""


def _check_master_key(tx: Transaction, sealer: Sealer, settings: Settings) -> None:
    """Refuse to start on a key file that is not this database's: otherwise every request
    would fail later, one internal error at a time."""
    key_id = tx.get_meta("root_access_key_id")
    row = tx.access_key(key_id) if key_id else None
    if row is None:
        return
    try:
        sealer.open(row.sealed_secret, aad_for_access_key(row.access_key_id))
    except DecryptError as exc:
        raise WrongMasterKey(
            f"the master key file {settings.resolved_master_key_file} cannot open this "
            f"database's data, which is sealed under master key {key_id_of(row.sealed_secret)}: "
            "start with the key file the database was created with"
        ) from exc


def _account_id(tx: Transaction, settings: Settings) -> str:
    stored = tx.get_meta("account_id")
    if stored is None:
        stored = settings.account_id or "".join(secrets.choice(string.digits) for _ in range(12))
        tx.set_meta("account_id", stored)
    elif settings.account_id is not None and settings.account_id != stored:
        raise SettingsError(
            f"this installation's account id is {stored}, fixed at its first start; "
            f"--account-id / STRONGROOM_ACCOUNT_ID asks for {settings.account_id}"
        )
    return stored


def _token_key(tx: Transaction) -> bytes:
    stored = tx.get_meta("token_key")
    if stored is None:
        stored = secrets.token_hex(32)
        tx.set_meta("token_key", stored)
    return bytes.fromhex(stored)


def _root_key(
    tx: Transaction, sealer: Sealer, account_id: str, environ: dict[str, str]
) -> tuple[str, str] | None:
    """Make sure the root key exists; returns it when it was generated now."""
    given_id = environ.get("STRONGROOM_ROOT_ACCESS_KEY_ID")
    given_secret = environ.get("STRONGROOM_ROOT_SECRET_ACCESS_KEY")
    if given_id and given_secret:
        if tx.access_key(given_id) is None:
            _insert_root(tx, sealer, account_id, given_id, given_secret)
        return None
    if tx.get_meta("root_access_key_id") is not None:
        return None
    key_id = "AKIA" + "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(16))
    secret = secrets.token_urlsafe(30)
    _insert_root(tx, sealer, account_id, key_id, secret)
    return key_id, secret


def _insert_root(
    tx: Transaction, sealer: Sealer, account_id: str, key_id: str, secret: str
) -> None:
    sealed = sealer.seal(secret.encode(), aad_for_access_key(key_id))
    tx.insert_access_key(
        AccessKeyRow(
            access_key_id=key_id,
            account_id=account_id,
            principal_arn=f"arn:aws:iam::{account_id}:root",
            sealed_secret=sealed,
            master_key_id=sealer.key_id_of(sealed),
            created_at=time.time(),
        )
    )
    if tx.get_meta("root_access_key_id") is None:
        tx.set_meta("root_access_key_id", key_id)


def _write_private(path: Path, credentials: tuple[str, str]) -> None:
    key_id, secret = credentials
    text = f"[default]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # O_CREAT's mode applies only to a file it creates
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
