"""The postgresql-single-user rotator against a real PostgreSQL and a real Strongroom.

The contract tests (what every step checks before it acts) live here too: both rotators
share that code, so one set of them covers both.
"""

from __future__ import annotations

import logging
import uuid

import pytest
from psycopg import sql
from tests.rotators.helpers import STEPS, event, labels, rotate, value

from strongroom import rotators
from strongroom.rotators.postgresql_single_user import lambda_handler

pytestmark = pytest.mark.usefixtures("rotator_env")

OLD_PASSWORD = "initial-Password-1"


@pytest.fixture
def app_secret(client, postgres):
    """An ``app`` role with OLD_PASSWORD, and its secret; (secret ARN, role)."""
    role = postgres.create_role("app", OLD_PASSWORD)
    arn = client.create_secret(
        Name=f"db/{role}", SecretString=postgres.secret_value(role, OLD_PASSWORD)
    )["ARN"]
    return arn, role


def test_a_rotation_sets_a_new_password_and_the_old_one_stops_working(
    client, postgres, prepare_rotation, app_secret
):
    arn, role = app_secret
    first_version = labels(client, arn)
    passwords = [OLD_PASSWORD]
    previous_version = client.get_secret_value(SecretId=arn)["VersionId"]
    for _ in range(2):
        token = rotate(lambda_handler, client, prepare_rotation, arn)
        current = value(client, arn)
        assert current["username"] == role
        assert current["password"] not in passwords
        assert postgres.accepts(role, current["password"])
        assert not postgres.accepts(role, passwords[-1])
        assert value(client, arn, VersionStage="AWSPREVIOUS")["password"] == passwords[-1]
        staged = labels(client, arn)
        # The service, not the function, takes AWSPENDING off afterwards (spec §6.3.10).
        assert "AWSCURRENT" in staged[token]
        assert [vid for vid, s in staged.items() if "AWSPREVIOUS" in s] == [previous_version]
        passwords.append(current["password"])
        previous_version = token
    assert len(set(passwords)) == 3
    (original,) = first_version
    assert not labels(client, arn).get(original)  # deprecated after two rotations


def test_the_new_value_keeps_every_other_field(client, postgres, prepare_rotation):
    role = postgres.create_role("app", OLD_PASSWORD)
    arn = client.create_secret(
        Name=f"db/{role}",
        SecretString=postgres.secret_value(role, OLD_PASSWORD, ssl=False, note="kept"),
    )["ARN"]
    rotate(lambda_handler, client, prepare_rotation, arn)
    before = value(client, arn, VersionStage="AWSPREVIOUS")
    after = value(client, arn)
    assert {k: v for k, v in after.items() if k != "password"} == {
        k: v for k, v in before.items() if k != "password"
    }


def test_each_step_can_be_retried(client, postgres, prepare_rotation, app_secret):
    arn, role = app_secret
    token = str(uuid.uuid4())
    prepare_rotation(client, arn, token)
    lambda_handler(event("createSecret", arn, token), None)
    pending = value(client, arn, VersionId=token, VersionStage="AWSPENDING")
    for step in STEPS:
        lambda_handler(event(step, arn, token), None)
        lambda_handler(event(step, arn, token), None)
        # createSecret again must not replace the pending password with yet another one.
        assert value(client, arn, VersionId=token)["password"] == pending["password"]
    assert value(client, arn)["password"] == pending["password"]
    assert postgres.accepts(role, pending["password"])


def test_a_version_already_current_is_left_alone(client, postgres, prepare_rotation, app_secret):
    arn, role = app_secret
    token = rotate(lambda_handler, client, prepare_rotation, arn)
    before = labels(client, arn)
    password = value(client, arn)["password"]
    for step in STEPS:
        lambda_handler(event(step, arn, token), None)
    assert labels(client, arn) == before
    assert postgres.accepts(role, password)


def test_the_generated_password_avoids_the_excluded_characters(
    client, postgres, prepare_rotation, app_secret, monkeypatch
):
    arn, _ = app_secret
    rotate(lambda_handler, client, prepare_rotation, arn, steps=("createSecret",))
    pending = value(client, arn, VersionStage="AWSPENDING")["password"]
    assert len(pending) == 32
    assert not set(pending) & set(":/@\"'\\")
    lowercase = "abcdefghijklmnopqrstuvwxyz"
    monkeypatch.setenv("EXCLUDE_CHARACTERS", lowercase)
    rotate(lambda_handler, client, prepare_rotation, arn, steps=("createSecret",))
    pending = value(client, arn, VersionStage="AWSPENDING")["password"]
    assert not set(pending) & set(lowercase)


def test_it_refuses_a_secret_whose_rotation_is_disabled(
    client, server, postgres, prepare_rotation, app_secret
):
    arn, role = app_secret
    token = str(uuid.uuid4())
    prepare_rotation(client, arn, token)
    with server.installation.store.write() as tx:
        secret = tx.secret_by_arn(arn)
        assert secret is not None
        tx.update_secret(secret.pk, rotation_enabled=False)
    with pytest.raises(ValueError, match="is not enabled for rotation"):
        lambda_handler(event("createSecret", arn, token), None)
    assert postgres.accepts(role, OLD_PASSWORD)


def test_it_refuses_a_token_that_is_no_version(client, prepare_rotation, app_secret):
    arn, _ = app_secret
    prepare_rotation(client, arn, str(uuid.uuid4()))
    with pytest.raises(ValueError, match="has no stage for rotation"):
        lambda_handler(event("createSecret", arn, str(uuid.uuid4())), None)


def test_it_refuses_a_version_that_is_not_pending(client, prepare_rotation, app_secret):
    arn, _ = app_secret
    rotate(lambda_handler, client, prepare_rotation, arn)
    (previous,) = [vid for vid, s in labels(client, arn).items() if "AWSPREVIOUS" in s]
    with pytest.raises(ValueError, match="not set as AWSPENDING"):
        lambda_handler(event("setSecret", arn, previous), None)


def test_it_refuses_an_unknown_step(client, prepare_rotation, app_secret):
    arn, _ = app_secret
    token = str(uuid.uuid4())
    prepare_rotation(client, arn, token)
    with pytest.raises(ValueError, match="Invalid step parameter rotateSecret"):
        lambda_handler(event("rotateSecret", arn, token), None)


def test_it_refuses_a_pending_value_for_another_user(
    client, postgres, prepare_rotation, app_secret
):
    arn, role = app_secret
    victim = postgres.create_role("victim", OLD_PASSWORD)
    token = str(uuid.uuid4())
    prepare_rotation(client, arn, token)
    # Someone who may write the secret but knows no password points AWSPENDING elsewhere.
    client.put_secret_value(
        SecretId=arn,
        ClientRequestToken=token,
        SecretString=postgres.secret_value(victim, "attacker-Chosen-1"),
        VersionStages=["AWSPENDING"],
    )
    with pytest.raises(ValueError, match=f"other than current user {role}"):
        lambda_handler(event("setSecret", arn, token), None)
    assert postgres.accepts(victim, OLD_PASSWORD)


def test_set_secret_fails_when_no_credentials_log_in(client, postgres, prepare_rotation):
    missing = f"nobody_{uuid.uuid4().hex[:8]}"  # a role that does not exist cannot log in
    arn = client.create_secret(
        Name=f"db/{missing}", SecretString=postgres.secret_value(missing, OLD_PASSWORD)
    )["ARN"]
    with pytest.raises(ValueError, match="Unable to log into database with previous, current"):
        rotate(lambda_handler, client, prepare_rotation, arn)
    assert "AWSCURRENT" in labels(client, arn)[value_version(client, arn)]


def value_version(client, arn):
    return client.get_secret_value(SecretId=arn)["VersionId"]


def test_a_missing_user_is_created_with_the_master_secret(client, postgres, prepare_rotation):
    master = postgres.create_role("master", "master-Password-1", "CREATEROLE")
    master_arn = client.create_secret(
        Name=f"db/{master}", SecretString=postgres.secret_value(master, "master-Password-1")
    )["ARN"]
    role = f"app_{uuid.uuid4().hex[:8]}"
    postgres.made.append(role)
    arn = client.create_secret(
        Name=f"db/{role}",
        SecretString=postgres.secret_value(role, OLD_PASSWORD, masterarn=master_arn),
    )["ARN"]
    rotate(lambda_handler, client, prepare_rotation, arn)
    assert postgres.role_exists(role)
    assert postgres.accepts(role, value(client, arn)["password"])
    assert not postgres.accepts(role, OLD_PASSWORD)


def test_a_wrong_engine_is_refused(client, postgres, prepare_rotation):
    role = postgres.create_role("app", OLD_PASSWORD)
    arn = client.create_secret(
        Name=f"db/{role}", SecretString=postgres.secret_value(role, OLD_PASSWORD, engine="mysql")
    )["ARN"]
    with pytest.raises(ValueError, match="engine must be set to 'postgres'"):
        rotate(lambda_handler, client, prepare_rotation, arn)


def test_no_password_reaches_the_log(client, postgres, prepare_rotation, app_secret, caplog):
    arn, _ = app_secret
    caplog.set_level(logging.INFO)
    rotate(lambda_handler, client, prepare_rotation, arn)
    new = value(client, arn)["password"]
    assert "setSecret: set the password of user" in caplog.text
    assert new not in caplog.text
    assert OLD_PASSWORD not in caplog.text


def test_builtins_are_found_by_kind():
    assert rotators.load("postgresql-single-user") is lambda_handler
    with pytest.raises(KeyError):
        rotators.load("mysql-single-user")


def test_the_previous_password_is_tried_when_the_current_one_fails(
    client, postgres, prepare_rotation, app_secret
):
    arn, role = app_secret
    rotate(lambda_handler, client, prepare_rotation, arn)
    # The database went back to the previous password (say, restored from a backup).
    postgres.admin.execute(
        sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(OLD_PASSWORD))
    )
    rotate(lambda_handler, client, prepare_rotation, arn)
    assert postgres.accepts(role, value(client, arn)["password"])
    assert not postgres.accepts(role, OLD_PASSWORD)


def test_ssl_true_insists_on_verified_tls(client, postgres, prepare_rotation):
    # Neither test server offers TLS, so a secret that demands it cannot log in.
    role = postgres.create_role("app", OLD_PASSWORD)
    arn = client.create_secret(
        Name=f"db/{role}", SecretString=postgres.secret_value(role, OLD_PASSWORD, ssl="TRUE")
    )["ARN"]
    with pytest.raises(ValueError, match="Unable to log into database"):
        rotate(lambda_handler, client, prepare_rotation, arn)
    assert postgres.accepts(role, OLD_PASSWORD)
