"""Service events: what Secrets Manager does on its own, recorded in the audit trail in the
same transaction as the change it reports (audit.service_events).

Against the real server (both backends): DeleteSecret and RestoreSecret, the background
purge, forced deletion, CreateSecret over a name whose recovery window ended, and rotations
run by the server's engine with a rotation function in its own process. Atomicity is shown
with real database failures (triggers), never a fake store: a change that fails leaves no
record, and a record that cannot be written stops the change.
"""

from __future__ import annotations

import json
import sys
import textwrap
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.conftest import ACCOUNT_ID, Server
from tests.rotation.helpers import function_arn, register_function, rotation_row, wait_for

from strongroom.audit import SECRET_RESOURCE_TYPE, service_event_row
from strongroom.audit.redaction import iso_time
from strongroom.rotation.engine import BACKOFF
from strongroom.storage.base import AuditEventRow, AuditQuery, SecretRow

DAY = 86_400
SOURCE = "secretsmanager.amazonaws.com"
DELETION_EVENTS = (
    "StartSecretVersionDelete",
    "CancelSecretVersionDelete",
    "EndSecretVersionDelete",
)
ROTATION_EVENTS = ("RotationStarted", "RotationSucceeded", "RotationFailed", "RotationAbandoned")


# -- reading the trail ------------------------------------------------------------------------


def events(server: Server, name: str, event_name: str | None = None) -> list[AuditEventRow]:
    """The records about the secret called `name`, oldest first."""
    equals: tuple[tuple[str, Any], ...] = (("resource_name", name),)
    if event_name is not None:
        equals += (("event_name", event_name),)
    with server.installation.store.read() as tx:
        return tx.audit_events(AuditQuery(equals=equals, newest_first=False, limit=1000))


def service_events(server: Server, name: str) -> list[str]:
    """The names of the service events about `name`, in the order they were recorded."""
    return [
        row.event_name
        for row in events(server, name)
        if json.loads(row.record)["eventType"] == "AwsServiceEvent"
    ]


def the_event(server: Server, name: str, event_name: str) -> tuple[AuditEventRow, dict]:
    """The one record of `event_name` about `name` (it must be exactly one)."""
    rows = events(server, name, event_name)
    assert len(rows) == 1, [r.event_name for r in rows]
    return rows[0], json.loads(rows[0].record)


def assert_service_event(
    row: AuditEventRow,
    record: dict,
    event_name: str,
    *,
    arn: str,
    name: str,
    region: str,
    between: tuple[float, float],
) -> None:
    """Every field AWS writes for a Secrets Manager service event, and the search columns."""
    assert (row.event_source, row.event_name, row.resource_name) == (SOURCE, event_name, name)
    assert (row.user_name, row.access_key_id, row.read_only) == (None, None, False)
    assert between[0] - 0.001 <= row.event_time <= between[1] + 0.001
    assert record["eventType"] == "AwsServiceEvent"
    assert record["eventName"] == event_name
    assert record["eventSource"] == SOURCE
    assert record["eventTime"] == iso_time(row.event_time)
    assert record["eventID"] == row.event_id
    assert record["awsRegion"] == region
    assert record["userIdentity"] == {"accountId": ACCOUNT_ID, "invokedBy": SOURCE}
    assert record["sourceIPAddress"] == record["userAgent"] == SOURCE
    assert record["requestParameters"] is None
    assert record["responseElements"] is None
    assert record["additionalEventData"] == {"SecretId": arn}
    assert record["resources"] == [
        {"ARN": arn, "type": SECRET_RESOURCE_TYPE, "accountId": ACCOUNT_ID}
    ]
    assert record["readOnly"] is False
    assert record["managementEvent"] is True
    assert record["recipientAccountId"] == ACCOUNT_ID
    assert record["requestID"]


def unique(prefix: str = "svc") -> str:
    """Secret names are unique per test: records are found by name across every region."""
    return f"{prefix}/{uuid.uuid4().hex[:10]}"


# -- real database failures -------------------------------------------------------------------


@contextmanager
def refused(server: Server, table: str, when: str, on: str = "DELETE") -> Iterator[None]:
    """While inside: the database refuses `on` of rows of `table` for which `when` holds
    (written with OLD. / NEW. as each dialect's triggers see the row)."""
    engine = server.installation.store.engine
    tag = f"refuse_{uuid.uuid4().hex[:12]}"
    trigger = f"CREATE TRIGGER {tag} BEFORE {on} ON {table}"
    if engine.dialect.name == "sqlite":
        refuse = "SELECT RAISE(ABORT, 'refused by the test');"
        create = [f"{trigger} WHEN {when} BEGIN {refuse} END"]
        drop = [f"DROP TRIGGER {tag}"]
    else:
        body = "$$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$"
        create = [
            f"CREATE FUNCTION {tag}() RETURNS trigger LANGUAGE plpgsql AS {body}",
            f"{trigger} FOR EACH ROW WHEN ({when}) EXECUTE FUNCTION {tag}()",
        ]
        drop = [f"DROP TRIGGER {tag} ON {table}", f"DROP FUNCTION {tag}()"]
    with engine.begin() as conn:
        for statement in create:
            conn.exec_driver_sql(statement)
    try:
        yield
    finally:
        with engine.begin() as conn:
            for statement in drop:
                conn.exec_driver_sql(statement)


def secret_exists(server: Server, arn: str) -> bool:
    with server.installation.store.read() as tx:
        return tx.secret_by_arn(arn) is not None


def purge(server: Server) -> int:
    return int(server.app.services["worker"].purge_due())


# -- the row itself -----------------------------------------------------------------------------


def test_a_service_event_row_is_the_record_with_its_search_columns():
    arn = f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT_ID}:secret:prod/db-AbCdEf"
    secret = SecretRow(
        pk=1,
        account_id=ACCOUNT_ID,
        region="eu-west-1",
        name="prod/db",
        arn=arn,
        created_at=0.0,
        last_changed_at=0.0,
    )
    row = service_event_row(
        "RotationFailed", secret, event_time=1_795_865_239.0, error_message="setSecret failed"
    )
    record = json.loads(row.record)
    assert_service_event(
        row,
        record,
        "RotationFailed",
        arn=arn,
        name="prod/db",
        region="eu-west-1",
        between=(1_795_865_239.0, 1_795_865_239.0),
    )
    assert record["eventTime"] == "2026-11-28T11:27:19Z"
    assert record["errorMessage"] == "setSecret failed"
    assert row.record == json.dumps(record, separators=(",", ":"))  # compact JSON
    with pytest.raises(ValueError, match="not a Secrets Manager service event"):
        service_event_row("RotationExploded", secret, event_time=0.0)


# -- deletion ---------------------------------------------------------------------------------


def test_delete_secret_with_a_recovery_window_records_start_secret_version_delete(
    server, client, region
):
    name = unique()
    arn = client.create_secret(Name=name, SecretString="s3cr3t-value")["ARN"]
    before = server.clock()
    client.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    after = server.clock()
    row, record = the_event(server, name, "StartSecretVersionDelete")
    assert_service_event(
        row, record, "StartSecretVersionDelete", arn=arn, name=name, region=region,
        between=(before, after),
    )  # fmt: skip
    # Beside the call's own record, as AWS writes both.
    assert len(events(server, name, "DeleteSecret")) == 1
    assert "s3cr3t-value" not in row.record
    # A refused second DeleteSecret schedules nothing, so records no second start.
    with pytest.raises(ClientError):
        client.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    assert service_events(server, name) == ["StartSecretVersionDelete"]


def test_restore_secret_records_cancel_secret_version_delete(server, client, region):
    name = unique()
    arn = client.create_secret(Name=name, SecretString="v")["ARN"]
    client.restore_secret(SecretId=name)  # not scheduled: a no-op, nothing to cancel
    assert service_events(server, name) == []
    client.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    before = server.clock()
    client.restore_secret(SecretId=name)
    after = server.clock()
    row, record = the_event(server, name, "CancelSecretVersionDelete")
    assert_service_event(
        row, record, "CancelSecretVersionDelete", arn=arn, name=name, region=region,
        between=(before, after),
    )  # fmt: skip
    assert service_events(server, name) == [
        "StartSecretVersionDelete",
        "CancelSecretVersionDelete",
    ]


def test_the_purge_records_end_secret_version_delete(server, client, region, clock):
    name = unique()
    arn = client.create_secret(Name=name, SecretString="v")["ARN"]
    deleted = client.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    assert events(server, name, "EndSecretVersionDelete") == []
    clock.advance(7 * DAY + 1)
    purge(server)  # the server's own worker may have been first: either way, one record
    after = server.clock()
    assert not secret_exists(server, arn)
    row, record = the_event(server, name, "EndSecretVersionDelete")
    # The purge's time, on the clock the worker runs on: once the deletion date has come.
    assert_service_event(
        row, record, "EndSecretVersionDelete", arn=arn, name=name, region=region,
        between=(deleted["DeletionDate"].timestamp(), after),
    )  # fmt: skip
    purge(server)
    assert service_events(server, name) == ["StartSecretVersionDelete", "EndSecretVersionDelete"]


def test_a_purge_that_fails_records_nothing(server, client, clock):
    name = unique()
    arn = client.create_secret(Name=name, SecretString="v")["ARN"]
    client.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    # The record is written before the delete in the purge's transaction: the delete's
    # failure must take it back.
    with refused(server, "secrets", f"OLD.arn = '{arn}'"):
        clock.advance(7 * DAY + 1)
        purge(server)
        assert secret_exists(server, arn)
        assert events(server, name, "EndSecretVersionDelete") == []
    purge(server)
    assert not secret_exists(server, arn)
    assert len(events(server, name, "EndSecretVersionDelete")) == 1


def test_a_purge_whose_record_cannot_be_written_leaves_the_secret(server, client, clock):
    name = unique()
    arn = client.create_secret(Name=name, SecretString="v")["ARN"]
    client.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    condition = f"NEW.event_name = 'EndSecretVersionDelete' AND NEW.resource_name = '{name}'"
    with refused(server, "audit_events", condition, on="INSERT"):
        clock.advance(7 * DAY + 1)
        purge(server)
        assert secret_exists(server, arn)  # the whole purge rolled back with its record
    purge(server)
    assert not secret_exists(server, arn)
    assert len(events(server, name, "EndSecretVersionDelete")) == 1


def test_delete_secret_fails_whole_when_its_start_record_cannot_be_written(server, client):
    name = unique()
    client.create_secret(Name=name, SecretString="v")
    condition = f"NEW.event_name = 'StartSecretVersionDelete' AND NEW.resource_name = '{name}'"
    with refused(server, "audit_events", condition, on="INSERT"):
        with pytest.raises(ClientError) as caught:
            client.delete_secret(SecretId=name, RecoveryWindowInDays=7)
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert "DeletedDate" not in client.describe_secret(SecretId=name)  # not scheduled
    assert service_events(server, name) == []


def test_a_forced_delete_records_only_end_secret_version_delete(server, client, region):
    name = unique()
    arn = client.create_secret(Name=name, SecretString="v")["ARN"]
    before = server.clock()
    client.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    after = server.clock()
    row, record = the_event(server, name, "EndSecretVersionDelete")
    assert_service_event(
        row, record, "EndSecretVersionDelete", arn=arn, name=name, region=region,
        between=(before, after),
    )  # fmt: skip
    assert service_events(server, name) == ["EndSecretVersionDelete"]
    # Forcing the delete of a secret that does not exist removes nothing: no record.
    missing = unique()
    client.delete_secret(SecretId=missing, ForceDeleteWithoutRecovery=True)
    assert service_events(server, missing) == []


def test_create_secret_over_an_expired_name_records_the_old_secrets_end(server, client, clock):
    name = unique()
    old = client.create_secret(Name=name, SecretString="old")["ARN"]
    client.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    clock.advance(7 * DAY + 1)
    new = client.create_secret(Name=name, SecretString="new")["ARN"]
    assert new != old
    # CreateSecret removed the old secret, or the server's worker did first: one record.
    _, record = the_event(server, name, "EndSecretVersionDelete")
    assert record["additionalEventData"] == {"SecretId": old}
    assert service_events(server, name) == ["StartSecretVersionDelete", "EndSecretVersionDelete"]


# -- rotation -----------------------------------------------------------------------------------

# A rotation function that fails testSecret when CONTROL/fail exists, and then quotes the
# secret's current value in its error: what must never reach a record.
FUNCTION = textwrap.dedent(
    """
    import json, os, pathlib
    import boto3

    CONTROL = pathlib.Path(os.environ["CONTROL"])

    def lambda_handler(event, context):
        step, arn, token = event["Step"], event["SecretId"], event["ClientRequestToken"]
        sm = boto3.client("secretsmanager", endpoint_url=os.environ["SECRETS_MANAGER_ENDPOINT"])
        if step == "createSecret":
            sm.put_secret_value(SecretId=arn, ClientRequestToken=token,
                                SecretString=json.dumps({"password": token}),
                                VersionStages=["AWSPENDING"])
        elif step == "testSecret" and (CONTROL / "fail").exists():
            current = sm.get_secret_value(SecretId=arn)["SecretString"]
            raise RuntimeError(f"cannot log in with {current}")
        elif step == "finishSecret":
            stages = sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
            current = next(v for v, s in stages.items() if "AWSCURRENT" in s)
            sm.update_secret_version_stage(SecretId=arn, VersionStage="AWSCURRENT",
                                           MoveToVersionId=token, RemoveFromVersionId=current)
    """
)
CURRENT_VALUE = "correct-horse-battery-staple"  # the value that must stay hidden


@pytest.fixture
def control(tmp_path: Path) -> Path:
    path = tmp_path / "control"
    path.mkdir()
    return path


@pytest.fixture
def function(server: Server, tmp_path: Path, control: Path, region: str) -> str:
    """A registered rotation function; its ARN."""
    handler = tmp_path / "rotate.py"
    handler.write_text(FUNCTION)
    name = f"svc-{uuid.uuid4().hex[:8]}"
    register_function(
        server, name, "--handler", f"{handler}:lambda_handler", "--env", f"CONTROL={control}",
        "--timeout", "60", "--python", sys.executable,
    )  # fmt: skip
    return function_arn(name, region)


@pytest.mark.slow
def test_a_rotation_records_started_then_succeeded(server, client, function, region):
    name = unique("db")
    arn = client.create_secret(Name=name, SecretString=CURRENT_VALUE)["ARN"]
    before = server.clock()
    token = client.rotate_secret(SecretId=name, RotationLambdaARN=function)["VersionId"]
    row = wait_for(
        lambda: (r := rotation_row(server, token)) and r.state in {"succeeded", "failed"} and r,
        "the rotation",
    )
    after = server.clock()
    assert row.state == "succeeded"
    assert service_events(server, name) == ["RotationStarted", "RotationSucceeded"]
    started, started_record = the_event(server, name, "RotationStarted")
    succeeded, succeeded_record = the_event(server, name, "RotationSucceeded")
    for event, record in ((started, started_record), (succeeded, succeeded_record)):
        assert_service_event(
            event, record, event.event_name, arn=arn, name=name, region=region,
            between=(before, after),
        )  # fmt: skip
        assert record["requestID"] == f"Rotation-{arn}-{token}"  # one rotation, one id
        assert "errorMessage" not in record
    assert started.event_time <= succeeded.event_time
    assert started.seq < succeeded.seq


@pytest.mark.slow
def test_a_rotation_that_fails_for_good_records_one_masked_failure(
    server, client, function, control, clock
):
    region = client.meta.region_name
    name = unique("db")
    arn = client.create_secret(Name=name, SecretString=CURRENT_VALUE)["ARN"]
    (control / "fail").touch()
    token = client.rotate_secret(SecretId=name, RotationLambdaARN=function)["VersionId"]
    engine = server.app.services["rotations"]
    for attempt, delay in enumerate((*BACKOFF, None), start=1):
        row = wait_for(
            lambda n=attempt: (
                (r := rotation_row(server, token))
                and r.attempts == n
                and r.state in {"pending", "failed"}
                and r
            ),
            f"attempt {attempt} to end",
        )
        assert service_events(server, name)[0] == "RotationStarted"  # once, at the first
        if delay is None:
            break
        assert row.state == "pending"
        # A retry is still to come: the rotation has not failed for good.
        assert events(server, name, "RotationFailed") == []
        clock.advance(delay)
        engine.wake()
    assert row.state == "failed"
    assert service_events(server, name) == ["RotationStarted", "RotationFailed"]
    failed, record = the_event(server, name, "RotationFailed")
    assert_service_event(
        failed, record, "RotationFailed", arn=arn, name=name, region=region,
        between=(row.finished_at, row.finished_at),
    )  # fmt: skip
    assert record["requestID"] == f"Rotation-{arn}-{token}"
    # The reason, as the rotation keeps it, with the value the function quoted masked.
    assert record["errorMessage"] == row.error
    assert record["errorMessage"].startswith("testSecret failed: RuntimeError: cannot log in")
    assert "********" in record["errorMessage"]
    assert CURRENT_VALUE not in failed.record
    assert CURRENT_VALUE not in row.error


def test_nothing_else_records_service_events(server, client):
    """Calls that change a secret without Secrets Manager acting on its own record none."""
    name = unique()
    client.create_secret(Name=name, SecretString="v1")
    client.put_secret_value(SecretId=name, SecretString="v2")
    client.update_secret(SecretId=name, Description="d")
    client.tag_resource(SecretId=name, Tags=[{"Key": "k", "Value": "v"}])
    client.get_secret_value(SecretId=name)
    assert service_events(server, name) == []
    assert all(json.loads(row.record)["eventType"] == "AwsApiCall" for row in events(server, name))
    names = {row.event_name for row in events(server, name)}
    assert not names & {*DELETION_EVENTS, *ROTATION_EVENTS}
