"""The postgresql-alternating-users rotator against a real PostgreSQL and a real Strongroom."""

from __future__ import annotations

import uuid

import pytest
from psycopg import sql
from tests.rotators.helpers import event, labels, rotate, value

from strongroom.rotators.postgresql_alternating_users import (
    alternate_username,
    lambda_handler,
)

pytestmark = pytest.mark.usefixtures("rotator_env")

OLD_PASSWORD = "initial-Password-1"
MASTER_PASSWORD = "master-Password-1"


@pytest.fixture
def master_arn(client, postgres):
    """``master``: may create roles and set their passwords, and nothing else."""
    master = postgres.create_role("master", MASTER_PASSWORD, "CREATEROLE")
    return client.create_secret(
        Name=f"db/{master}", SecretString=postgres.secret_value(master, MASTER_PASSWORD)
    )["ARN"]


@pytest.fixture
def app_secret(client, postgres, master_arn):
    """An ``app`` role with OLD_PASSWORD that may read one table; (secret ARN, role, table)."""
    role = postgres.create_role("app", OLD_PASSWORD)
    table = sql.Identifier(f"rotator_{uuid.uuid4().hex[:8]}")
    postgres.admin.execute(sql.SQL("CREATE TABLE {} (n int)").format(table))
    postgres.cleanup.append(sql.SQL("DROP TABLE {}").format(table))
    postgres.admin.execute(sql.SQL("INSERT INTO {} VALUES (42)").format(table))
    postgres.admin.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(table, sql.Identifier(role)))
    arn = client.create_secret(
        Name=f"db/{role}",
        SecretString=postgres.secret_value(role, OLD_PASSWORD, masterarn=master_arn),
    )["ARN"]
    return arn, role, table


def test_rotations_alternate_between_the_user_and_its_clone(
    client, postgres, prepare_rotation, app_secret
):
    arn, role, table = app_secret
    clone = f"{role}_clone"

    rotate(lambda_handler, client, prepare_rotation, arn)
    first = value(client, arn)
    assert first["username"] == clone
    assert first["masterarn"] == value(client, arn, VersionStage="AWSPREVIOUS")["masterarn"]
    assert postgres.accepts(clone, first["password"])
    # The credentials that were current keep working until the next rotation.
    assert postgres.accepts(role, OLD_PASSWORD)
    assert value(client, arn, VersionStage="AWSPREVIOUS")["username"] == role
    # The clone has the user's privileges: it is a member, and reads the user's table.
    member = postgres.admin.execute(
        "SELECT pg_has_role(%s, %s, 'USAGE'), rolcanlogin FROM pg_roles WHERE rolname = %s",
        (clone, role, clone),
    ).fetchone()
    assert member == (True, True)
    postgres.admin.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(clone)))
    try:
        assert postgres.admin.execute(sql.SQL("SELECT n FROM {}").format(table)).fetchone() == (42,)
    finally:
        postgres.admin.execute("RESET ROLE")

    token = rotate(lambda_handler, client, prepare_rotation, arn)
    second = value(client, arn)
    assert second["username"] == role
    assert postgres.accepts(role, second["password"])
    assert not postgres.accepts(role, OLD_PASSWORD)
    assert postgres.accepts(clone, first["password"])  # now AWSPREVIOUS, still valid
    assert value(client, arn, VersionStage="AWSPREVIOUS") == first
    assert "AWSCURRENT" in labels(client, arn)[token]

    rotate(lambda_handler, client, prepare_rotation, arn)
    third = value(client, arn)
    assert third["username"] == clone
    assert postgres.accepts(clone, third["password"])
    assert not postgres.accepts(clone, first["password"])
    assert postgres.accepts(role, second["password"])


def test_set_secret_refuses_a_pending_user_that_is_not_the_alternate(
    client, postgres, prepare_rotation, app_secret
):
    arn, _, _ = app_secret
    victim = postgres.create_role("victim", OLD_PASSWORD)
    token = str(uuid.uuid4())
    prepare_rotation(client, arn, token)
    client.put_secret_value(
        SecretId=arn,
        ClientRequestToken=token,
        SecretString=postgres.secret_value(victim, "attacker-Chosen-1", masterarn="x"),
        VersionStages=["AWSPENDING"],
    )
    with pytest.raises(ValueError, match="other than current user or clone"):
        lambda_handler(event("setSecret", arn, token), None)
    assert postgres.accepts(victim, OLD_PASSWORD)


def test_set_secret_needs_current_credentials_that_log_in(
    client, postgres, prepare_rotation, master_arn
):
    missing = f"nobody_{uuid.uuid4().hex[:8]}"
    postgres.made.append(missing)
    arn = client.create_secret(
        Name=f"db/{missing}",
        SecretString=postgres.secret_value(missing, OLD_PASSWORD, masterarn=master_arn),
    )["ARN"]
    with pytest.raises(ValueError, match="Unable to log into database using current credentials"):
        rotate(lambda_handler, client, prepare_rotation, arn)
    assert not postgres.role_exists(f"{missing}_clone")


def test_the_master_must_be_on_the_same_host(client, postgres, prepare_rotation):
    master = postgres.create_role("master", MASTER_PASSWORD, "CREATEROLE")
    elsewhere = postgres.secret_value(master, MASTER_PASSWORD).replace(
        f'"host": "{postgres.host}"', '"host": "db.elsewhere.example"'
    )
    master_arn = client.create_secret(Name=f"db/{master}", SecretString=elsewhere)["ARN"]
    role = postgres.create_role("app", OLD_PASSWORD)
    arn = client.create_secret(
        Name=f"db/{role}",
        SecretString=postgres.secret_value(role, OLD_PASSWORD, masterarn=master_arn),
    )["ARN"]
    with pytest.raises(ValueError, match="is not the same host as master"):
        rotate(lambda_handler, client, prepare_rotation, arn)
    assert not postgres.role_exists(f"{role}_clone")


def test_a_master_that_cannot_log_in_is_reported(client, postgres, prepare_rotation):
    missing_master = f"nomaster_{uuid.uuid4().hex[:8]}"
    master_arn = client.create_secret(
        Name=f"db/{missing_master}",
        SecretString=postgres.secret_value(missing_master, MASTER_PASSWORD),
    )["ARN"]
    role = postgres.create_role("app", OLD_PASSWORD)
    arn = client.create_secret(
        Name=f"db/{role}",
        SecretString=postgres.secret_value(role, OLD_PASSWORD, masterarn=master_arn),
    )["ARN"]
    with pytest.raises(ValueError, match=f"credentials in master secret {master_arn}"):
        rotate(lambda_handler, client, prepare_rotation, arn)


def test_usernames_alternate_and_a_too_long_clone_is_refused():
    assert alternate_username("app") == "app_clone"
    assert alternate_username("app_clone") == "app"
    assert alternate_username("x" * 57) == "x" * 57 + "_clone"
    with pytest.raises(ValueError, match="exceed 63 characters"):
        alternate_username("x" * 58)
    with pytest.raises(ValueError, match="exceed 63 characters"):
        alternate_username("é" * 29)  # 58 bytes: PostgreSQL counts bytes
