"""Built-in rotation function ``postgresql-single-user``: the user changes its own password.

The single-user scheme of AWS's SecretsManagerRDSPostgreSQLRotationSingleUser template: log in
as the user (with the pending password if a retried setSecret already set it, else the
current one, else the previous one) and ALTER USER its own password. The old password stops
working at once, so clients holding it fail until they fetch the new value; use the
alternating-users rotator where that matters.

Secret value: ``{"engine": "postgres", "host", "port"?, "username", "password", "dbname"?,
"ssl"?, "masterarn"?}``. With ``masterarn`` (another secret's ARN holding a role allowed to
CREATE ROLE), a user that does not exist yet is created first, as AWS's template does.
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
    get_previous_dict,
    get_secret_dict,
    handle,
    logger,
    random_password,
)


def lambda_handler(event: dict[str, Any], context: Any) -> None:  # noqa: ARG001 - Lambda signature
    """The rotation function's entry point, Lambda-style; ``context`` is unused."""
    handle(event, STEPS)


def _create(rotation: Rotation) -> None:
    def with_new_password(current: SecretDict) -> SecretDict:
        return {**current, "password": random_password(rotation.client)}

    create_secret(rotation, with_new_password)


def _require_same_account(pending: SecretDict, other: SecretDict, which: str) -> None:
    # Never let a pending value point the current credentials at another user or server.
    if other["username"] != pending["username"]:
        raise ValueError(
            f"Attempting to modify user {pending['username']} other than {which} user "
            f"{other['username']}"
        )
    if other["host"] != pending["host"]:
        raise ValueError(
            f"Attempting to modify user for host {pending['host']} other than {which} host "
            f"{other['host']}"
        )


def _create_user_if_missing(rotation: Rotation, current: SecretDict) -> None:
    master_arn = current.get("masterarn")
    if not master_arn:
        return
    master = get_secret_dict(rotation.client, master_arn, AWSCURRENT)
    if master["host"] != current["host"]:
        raise ValueError(
            f"Current database host {current['host']} is not the same host as master "
            f"{master['host']}"
        )
    dbname = current.get("dbname") or pg.DEFAULT_DBNAME
    conn = pg.connect(master, dbname)
    if conn is None:
        raise ValueError(
            f"Unable to log into database using credentials in master secret {master_arn}"
        )
    with conn:
        if not pg.role_exists(conn, current["username"]):
            pg.create_login_role(conn, current["username"], current["password"], connect_to=dbname)
            logger.info("setSecret: created user %s in database %s.", current["username"], dbname)


def _set(rotation: Rotation) -> None:
    client, arn = rotation.client, rotation.arn
    previous = get_previous_dict(client, arn)
    current = get_secret_dict(client, arn, AWSCURRENT)
    pending = get_secret_dict(client, arn, AWSPENDING, rotation.token)
    _create_user_if_missing(rotation, current)
    if pg.password_is_set(pending):
        logger.info("setSecret: the AWSPENDING password of %s is already set.", arn)
        return
    _require_same_account(pending, current, "current")
    conn = pg.connect(current)
    if conn is None and previous is not None:
        # The previous value, with today's TLS settings.
        previous.pop("ssl", None)
        if "ssl" in current:
            previous["ssl"] = current["ssl"]
        _require_same_account(pending, previous, "previous valid")
        conn = pg.connect(previous)
    if conn is None:
        raise ValueError(
            "Unable to log into database with previous, current, or pending secret of "
            f"secret arn {arn}"
        )
    with conn:
        pg.set_password(conn, pending["username"], pending["password"])
    logger.info("setSecret: set the password of user %s for %s.", pending["username"], arn)


STEPS = {
    "createSecret": _create,
    "setSecret": _set,
    "testSecret": pg.test_secret,
    "finishSecret": finish_secret,
}
