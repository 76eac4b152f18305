"""Built-in rotation function ``postgresql-alternating-users``: two users take turns.

The alternating-users scheme of AWS's SecretsManagerRDSPostgreSQLRotationMultiUser template.
The secret's value names ``<user>`` or ``<user>_clone``; each rotation stores the other one
with a new password as AWSPENDING, and a master user (the secret named by ``masterarn``) sets
that password, creating the clone on the first rotation as a member of the original user, so
it has the same privileges. The credentials that were current stay valid until the rotation
after next, so clients holding them keep working while they refresh.

Secret value: ``{"engine": "postgres", "host", "port"?, "username", "password", "dbname"?,
"ssl"?, "masterarn"}``; the master secret holds the same fields for a role allowed to CREATE
ROLE and ALTER the users (CREATEROLE), on the same host.
"""

from __future__ import annotations

from typing import Any

from strongroom.rotators import _postgres as pg
from strongroom.rotators._steps import (
    AWSCURRENT,
    AWSPENDING,
    Rotation,
    SecretDict,
    create_secret,
    finish_secret,
    get_secret_dict,
    handle,
    logger,
    random_password,
)

CLONE_SUFFIX = "_clone"
MAX_NAME_BYTES = 63  # PostgreSQL's NAMEDATALEN - 1: longer names are silently truncated


def lambda_handler(event: dict[str, Any], context: Any) -> None:  # noqa: ARG001 - Lambda signature
    """The rotation function's entry point, Lambda-style; ``context`` is unused."""
    handle(event, STEPS)


def alternate_username(username: str) -> str:
    """``user`` <-> ``user_clone``; ValueError when the clone's name would be too long."""
    if username.endswith(CLONE_SUFFIX):
        return username.removesuffix(CLONE_SUFFIX)
    clone = username + CLONE_SUFFIX
    if len(clone.encode()) > MAX_NAME_BYTES:
        raise ValueError(
            "Unable to clone user, username length with _clone appended would exceed "
            f"{MAX_NAME_BYTES} characters"
        )
    return clone


def _create(rotation: Rotation) -> None:
    def other_user(current: SecretDict) -> SecretDict:
        return {
            **current,
            "username": alternate_username(current["username"]),
            "password": random_password(rotation.client),
        }

    create_secret(rotation, other_user)


def _master(rotation: Rotation, current: SecretDict) -> tuple[str, SecretDict]:
    master_arn = current["masterarn"]
    master = get_secret_dict(rotation.client, master_arn, AWSCURRENT)
    master["dbname"] = current.get("dbname")  # the user's database, as AWS's template
    if master["host"] != current["host"]:
        raise ValueError(
            f"Current database host {current['host']} is not the same host as master "
            f"{master['host']}"
        )
    return master_arn, master


def _set(rotation: Rotation) -> None:
    client, arn = rotation.client, rotation.arn
    current = get_secret_dict(client, arn, AWSCURRENT)
    pending = get_secret_dict(client, arn, AWSPENDING, rotation.token)
    if pg.password_is_set(pending):
        logger.info("setSecret: the AWSPENDING password of %s is already set.", arn)
        return
    if alternate_username(current["username"]) != pending["username"]:
        raise ValueError(
            f"Attempting to modify user {pending['username']} other than current user or "
            f"clone {current['username']}"
        )
    if current["host"] != pending["host"]:
        raise ValueError(
            f"Attempting to modify user for host {pending['host']} other than current host "
            f"{current['host']}"
        )
    # The current credentials must work before the master acts on this secret's say-so
    # (confused deputy: a caller who may write the secret but knows no valid password).
    current_conn = pg.connect(current)
    if current_conn is None:
        raise ValueError(f"Unable to log into database using current credentials for secret {arn}")
    current_conn.close()
    master_arn, master = _master(rotation, current)
    conn = pg.connect(master)
    if conn is None:
        raise ValueError(
            f"Unable to log into database using credentials in master secret {master_arn}"
        )
    with conn:
        user, password = pending["username"], pending["password"]
        if pg.role_exists(conn, user):
            pg.set_password(conn, user, password)
        else:
            pg.create_login_role(conn, user, password, member_of=current["username"])
    logger.info("setSecret: set the password of user %s for %s.", pending["username"], arn)


STEPS = {
    "createSecret": _create,
    "setSecret": _set,
    "testSecret": pg.test_secret,
    "finishSecret": finish_secret,
}
