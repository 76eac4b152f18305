"""The PostgreSQL half of the built-in rotators: logging in with a secret's credentials,
creating login roles and setting their passwords.

Passwords never travel as SQL text: libpq hashes them into the verifier the server stores
(SCRAM-SHA-256 or md5, whichever ``password_encryption`` asks for, as psql's ``\\password``
does), and the statement carries only that verifier, quoted by ``psycopg.sql.Literal``
(PostgreSQL takes no bind parameter in ALTER/CREATE ROLE). So neither the server's statement
log nor ``pg_stat_activity`` ever shows a password.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg import sql

from strongroom.rotators._steps import AWSPENDING, Rotation, SecretDict, get_secret_dict

logger = logging.getLogger("strongroom.rotators")

DEFAULT_PORT = 5432
DEFAULT_DBNAME = "postgres"
CONNECT_TIMEOUT = 5  # seconds, as AWS's templates

Connection = psycopg.Connection[Any]


def _ssl_modes(secret: SecretDict) -> list[str]:
    """libpq sslmodes to try in turn, from the secret's optional ``ssl`` field (as AWS's
    templates: absent or unrecognised means verified TLS, falling back to plain)."""
    ssl = secret.get("ssl")
    if isinstance(ssl, str):
        ssl = {"true": True, "false": False}.get(ssl.lower())
    if ssl is True:
        return ["verify-full"]
    if ssl is False:
        return ["disable"]
    return ["verify-full", "disable"]


def _redacted(exc: Exception, password: str) -> str:
    # libpq's messages do not echo passwords; this keeps it so whatever a server says.
    text = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    return text.replace(password, "***") if password else text


def connect(secret: SecretDict, dbname: str | None = None) -> Connection | None:
    """A connection with the secret's credentials, or None when the server refuses them
    (or cannot be reached): callers try other credentials next."""
    password = str(secret["password"])
    for sslmode in _ssl_modes(secret):
        try:
            conn = psycopg.connect(
                host=secret["host"],
                port=int(secret.get("port") or DEFAULT_PORT),
                user=secret["username"],
                password=password,
                dbname=dbname or secret.get("dbname") or DEFAULT_DBNAME,
                connect_timeout=CONNECT_TIMEOUT,
                sslmode=sslmode,
                # Each change is its own explicit transaction (conn.transaction()).
                autocommit=True,
            )
        except psycopg.OperationalError as exc:
            logger.info(
                "Cannot log in as %s on %s (sslmode=%s): %s",
                secret["username"],
                secret["host"],
                sslmode,
                _redacted(exc, password),
            )
            continue
        logger.info(
            "Logged in as %s on %s (sslmode=%s).", secret["username"], secret["host"], sslmode
        )
        return conn
    return None


def password_is_set(secret: SecretDict) -> bool:
    """Whether the server accepts the secret's password for its user.

    Stricter than AWS's templates, which take any successful login as proof: under ``trust``
    (or ``peer``) authentication a login succeeds whatever the password, and rotation would
    then never set one. Only a login where the server asked for the password counts.
    """
    conn = connect(secret)
    if conn is None:
        return False
    with conn:
        return bool(conn.pgconn.used_password)


def run_test_query(secret: SecretDict) -> bool:
    """Log in with the secret and run a query; False when the login is refused."""
    conn = connect(secret)
    if conn is None:
        return False
    with conn:
        conn.execute("SELECT now()")
    return True


def _verifier(conn: Connection, username: str, password: str) -> sql.Literal:
    # libpq asks the server which algorithm (password_encryption) and hashes locally.
    hashed = conn.pgconn.encrypt_password(password.encode(), username.encode())
    return sql.Literal(hashed.decode("ascii"))


def role_exists(conn: Connection, username: str) -> bool:
    row = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (username,)).fetchone()
    return row is not None


def set_password(conn: Connection, username: str, password: str) -> None:
    """ALTER USER ``username`` WITH PASSWORD, committed."""
    verifier = _verifier(conn, username, password)
    statement = sql.SQL("ALTER USER {} WITH PASSWORD {}").format(sql.Identifier(username), verifier)
    with conn.transaction():
        conn.execute(statement)


def create_login_role(
    conn: Connection,
    username: str,
    password: str,
    *,
    member_of: str | None = None,
    connect_to: str | None = None,
) -> None:
    """CREATE ROLE ... WITH LOGIN PASSWORD, then (optionally) make it a member of
    ``member_of`` (so it has that role's privileges) and GRANT CONNECT on ``connect_to``;
    all in one transaction."""
    verifier = _verifier(conn, username, password)
    role = sql.Identifier(username)
    with conn.transaction():
        conn.execute(sql.SQL("CREATE ROLE {} WITH LOGIN PASSWORD {}").format(role, verifier))
        if member_of is not None:
            conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(member_of), role))
        if connect_to is not None:
            conn.execute(
                sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                    sql.Identifier(connect_to), role
                )
            )


def test_secret(rotation: Rotation) -> None:
    """testSecret, the same for both rotators: log in with the AWSPENDING value and query."""
    pending = get_secret_dict(rotation.client, rotation.arn, AWSPENDING, rotation.token)
    if not run_test_query(pending):
        raise ValueError(
            f"Unable to log into database with pending secret of secret ARN {rotation.arn}"
        )
    logger.info("testSecret: logged in with the AWSPENDING value of %s.", rotation.arn)
