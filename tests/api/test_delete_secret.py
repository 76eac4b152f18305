"""DeleteSecret and the deletion lifecycle (spec §7): recovery windows, forced deletion, what
every operation does while a secret is scheduled for deletion, and the background purge."""

from __future__ import annotations

import re
import threading
import time

import pytest
import sqlalchemy as sa
from botocore.exceptions import ClientError
from tests.api.helpers import body, refusal
from tests.conftest import ACCOUNT_ID

from strongroom import worker as worker_module
from strongroom.storage import schema
from strongroom.worker import Worker

DAY = 86_400
NOT_FOUND = ("ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
MARKED_FOR_DELETION = (
    "InvalidRequestException",
    "You can't perform this operation on the secret because it was marked for deletion.",
)
# The texts of the three parameter errors are the emulators', UNCONFIRMED (spec §16.2).
WINDOW_RANGE = "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive)."
WINDOW_AND_FORCE = (
    "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays."
)
ALREADY_MARKED = "You tried to perform the operation on a secret that's currently marked deleted."
CHILD_TABLES = (schema.versions, schema.stages, schema.tags, schema.words)


def listed_names(client, *, include_planned_deletion: bool) -> list[str]:
    listed = client.list_secrets(IncludePlannedDeletion=include_planned_deletion)
    return [entry["Name"] for entry in listed["SecretList"]]


def make_secret(client, name: str = "app/db") -> dict:
    return client.create_secret(
        Name=name,
        SecretString="s3cr3t",
        Description="the database",
        Tags=[{"Key": "env", "Value": "prod"}],
    )


# -- the recovery window ---------------------------------------------------------------------------


def test_it_schedules_deletion_30_days_out_by_default(server, client):
    created = make_secret(client)
    before = server.clock()
    deleted = client.delete_secret(SecretId="app/db")
    after = server.clock()
    assert set(body(deleted)) == {"ARN", "Name", "DeletionDate"}
    assert (deleted["ARN"], deleted["Name"]) == (created["ARN"], "app/db")
    deletion = deleted["DeletionDate"].timestamp()
    assert before + 30 * DAY - 0.001 <= deletion <= after + 30 * DAY + 0.001


@pytest.mark.parametrize("days", [7, 19, 30])
def test_it_schedules_deletion_at_now_plus_the_recovery_window(server, client, days):
    make_secret(client)
    before = server.clock()
    deleted = client.delete_secret(SecretId="app/db", RecoveryWindowInDays=days)
    after = server.clock()
    deletion = deleted["DeletionDate"].timestamp()
    assert before + days * DAY - 0.001 <= deletion <= after + days * DAY + 0.001


def test_the_deletion_date_follows_the_servers_clock(server, client, clock):
    make_secret(client)
    clock.advance(5 * DAY)
    deleted = client.delete_secret(SecretId="app/db", RecoveryWindowInDays=7)
    assert deleted["DeletionDate"].timestamp() == pytest.approx(time.time() + 12 * DAY, abs=5)


def test_describe_shows_the_deletion_date_as_deleted_date(client):
    make_secret(client)
    deleted = client.delete_secret(SecretId="app/db", RecoveryWindowInDays=7)
    assert client.describe_secret(SecretId="app/db")["DeletedDate"] == deleted["DeletionDate"]


@pytest.mark.parametrize("days", [-1, 0, 6, 31, 365])
def test_it_refuses_a_recovery_window_outside_7_to_30_days(client, days):
    make_secret(client)
    assert refusal(client.delete_secret, SecretId="app/db", RecoveryWindowInDays=days) == (
        "InvalidParameterException",
        WINDOW_RANGE,
    )
    assert "DeletedDate" not in client.describe_secret(SecretId="app/db")


def test_it_refuses_a_recovery_window_together_with_forced_deletion(client):
    make_secret(client)
    assert refusal(
        client.delete_secret,
        SecretId="app/db",
        RecoveryWindowInDays=7,
        ForceDeleteWithoutRecovery=True,
    ) == ("InvalidParameterException", WINDOW_AND_FORCE)
    assert "DeletedDate" not in client.describe_secret(SecretId="app/db")


def test_a_recovery_window_with_force_explicitly_off_is_fine(client):
    make_secret(client)
    deleted = client.delete_secret(
        SecretId="app/db", RecoveryWindowInDays=7, ForceDeleteWithoutRecovery=False
    )
    assert "DeletionDate" in deleted
    assert "DeletedDate" in client.describe_secret(SecretId="app/db")


def test_deleting_a_secret_already_scheduled_for_deletion_is_refused(client):
    make_secret(client)
    first = client.delete_secret(SecretId="app/db", RecoveryWindowInDays=7)["DeletionDate"]
    assert refusal(client.delete_secret, SecretId="app/db", RecoveryWindowInDays=30) == (
        "InvalidRequestException",
        ALREADY_MARKED,
    )
    assert client.describe_secret(SecretId="app/db")["DeletedDate"] == first


def test_deleting_an_unknown_secret_is_resource_not_found(client):
    assert refusal(client.delete_secret, SecretId="nowhere") == NOT_FOUND


def test_it_refuses_an_invalid_name_even_when_forced(client):
    code, _ = refusal(client.delete_secret, SecretId="bad name", ForceDeleteWithoutRecovery=True)
    assert code == "ValidationException"


# -- forced deletion -------------------------------------------------------------------------------


def test_forced_deletion_removes_the_secret_at_once(server, client):
    created = make_secret(client)
    before = server.clock()
    deleted = client.delete_secret(SecretId="app/db", ForceDeleteWithoutRecovery=True)
    after = server.clock()
    assert (deleted["ARN"], deleted["Name"]) == (created["ARN"], "app/db")
    assert before - 0.001 <= deleted["DeletionDate"].timestamp() <= after + 0.001
    assert refusal(client.describe_secret, SecretId="app/db") == NOT_FOUND
    assert refusal(client.get_secret_value, SecretId=created["ARN"]) == NOT_FOUND
    assert listed_names(client, include_planned_deletion=True) == []


def test_the_name_can_be_reused_right_after_a_forced_deletion(client):
    old = make_secret(client)
    client.delete_secret(SecretId="app/db", ForceDeleteWithoutRecovery=True)
    new = client.create_secret(Name="app/db", SecretString="fresh")
    assert new["ARN"] != old["ARN"]
    assert client.get_secret_value(SecretId="app/db")["SecretString"] == "fresh"
    described = client.describe_secret(SecretId="app/db")
    assert "Tags" not in described
    assert "Description" not in described
    assert list(described["VersionIdsToStages"]) == [new["VersionId"]]


def test_force_deleting_a_missing_secret_succeeds_and_echoes_the_name(server, client, region):
    before = server.clock()
    deleted = client.delete_secret(SecretId="never/was", ForceDeleteWithoutRecovery=True)
    assert deleted["Name"] == "never/was"
    # Which ARN AWS makes up here is UNCONFIRMED (spec §7.1); ours has the usual shape.
    pattern = rf"arn:aws:secretsmanager:{region}:{ACCOUNT_ID}:secret:never/was-[A-Za-z0-9]{{6}}"
    assert re.fullmatch(pattern, deleted["ARN"])
    assert deleted["DeletionDate"].timestamp() >= before - 0.001
    assert listed_names(client, include_planned_deletion=True) == []


def test_force_deleting_an_unknown_arn_succeeds_and_echoes_the_arn(client, region):
    arn = f"arn:aws:secretsmanager:{region}:{ACCOUNT_ID}:secret:never/was-AbCdEf"
    deleted = client.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    assert deleted["ARN"] == arn


def test_force_deleting_a_secret_scheduled_for_deletion_succeeds(client):
    created = make_secret(client)
    client.delete_secret(SecretId="app/db", RecoveryWindowInDays=30)
    deleted = client.delete_secret(SecretId="app/db", ForceDeleteWithoutRecovery=True)
    assert (deleted["ARN"], deleted["Name"]) == (created["ARN"], "app/db")
    assert refusal(client.describe_secret, SecretId="app/db") == NOT_FOUND
    assert refusal(client.restore_secret, SecretId="app/db") == NOT_FOUND
    client.create_secret(Name="app/db", SecretString="again")


# -- while scheduled for deletion (spec §7.2) ------------------------------------------------------

REFUSED_WHILE_SCHEDULED = {
    "GetSecretValue": lambda c, _: c.get_secret_value(SecretId="app/db"),
    "GetSecretValue by version": lambda c, v: c.get_secret_value(SecretId="app/db", VersionId=v),
    "PutSecretValue": lambda c, _: c.put_secret_value(SecretId="app/db", SecretString="new"),
    "UpdateSecret with a value": lambda c, _: c.update_secret(SecretId="app/db", SecretString="n"),
    "UpdateSecret metadata": lambda c, _: c.update_secret(SecretId="app/db", Description="new"),
    "UpdateSecretVersionStage": lambda c, v: c.update_secret_version_stage(
        SecretId="app/db", VersionStage="BLUE", MoveToVersionId=v
    ),
    "TagResource": lambda c, _: c.tag_resource(
        SecretId="app/db", Tags=[{"Key": "new", "Value": "tag"}]
    ),
    "UntagResource": lambda c, _: c.untag_resource(SecretId="app/db", TagKeys=["env"]),
    "ListSecretVersionIds": lambda c, _: c.list_secret_version_ids(SecretId="app/db"),
}


@pytest.mark.parametrize("operation", REFUSED_WHILE_SCHEDULED)
def test_it_refuses_operations_on_a_secret_scheduled_for_deletion(client, operation):
    version = make_secret(client)["VersionId"]
    client.delete_secret(SecretId="app/db", RecoveryWindowInDays=7)
    before = client.describe_secret(SecretId="app/db")
    with pytest.raises(ClientError) as caught:
        REFUSED_WHILE_SCHEDULED[operation](client, version)
    error = caught.value.response["Error"]
    assert (error["Code"], error["Message"]) == MARKED_FOR_DELETION
    assert body(client.describe_secret(SecretId="app/db")) == body(before)


def test_batch_get_reports_a_secret_scheduled_for_deletion_as_an_error_entry(client):
    make_secret(client)
    client.create_secret(Name="alive", SecretString="ok")
    client.delete_secret(SecretId="app/db", RecoveryWindowInDays=7)
    batch = client.batch_get_secret_value(SecretIdList=["app/db", "alive"])
    assert [v["Name"] for v in batch["SecretValues"]] == ["alive"]
    assert batch["Errors"] == [
        {
            "SecretId": "app/db",
            "ErrorCode": MARKED_FOR_DELETION[0],
            "Message": MARKED_FOR_DELETION[1],
        }
    ]


def test_a_secret_scheduled_for_deletion_can_still_be_described(client):
    created = make_secret(client)
    client.delete_secret(SecretId="app/db", RecoveryWindowInDays=7)
    described = client.describe_secret(SecretId="app/db")
    assert described["ARN"] == created["ARN"]
    assert described["Tags"] == [{"Key": "env", "Value": "prod"}]
    assert described["VersionIdsToStages"] == {created["VersionId"]: ["AWSCURRENT"]}


def test_list_secrets_hides_a_secret_scheduled_for_deletion_unless_asked(client):
    make_secret(client)
    make_secret(client, "kept")
    deleted = client.delete_secret(SecretId="app/db", RecoveryWindowInDays=7)
    assert listed_names(client, include_planned_deletion=False) == ["kept"]
    listed = client.list_secrets(IncludePlannedDeletion=True)["SecretList"]
    assert sorted(entry["Name"] for entry in listed) == ["app/db", "kept"]
    (entry,) = [entry for entry in listed if entry["Name"] == "app/db"]
    assert entry["DeletedDate"] == deleted["DeletionDate"]


# -- after the recovery window ---------------------------------------------------------------------


def test_a_secret_is_gone_once_its_recovery_window_has_passed(client, clock):
    old = make_secret(client)
    client.delete_secret(SecretId="app/db", RecoveryWindowInDays=7)
    clock.advance(7 * DAY - 60)
    assert "DeletedDate" in client.describe_secret(SecretId="app/db")
    clock.advance(61)
    assert refusal(client.describe_secret, SecretId="app/db") == NOT_FOUND
    assert refusal(client.get_secret_value, SecretId="app/db") == NOT_FOUND
    assert refusal(client.describe_secret, SecretId=old["ARN"]) == NOT_FOUND
    assert refusal(client.restore_secret, SecretId="app/db") == NOT_FOUND
    assert refusal(client.delete_secret, SecretId="app/db") == NOT_FOUND


def test_a_secret_past_its_window_is_not_listed_even_with_planned_deletions(client, clock):
    make_secret(client)
    client.delete_secret(SecretId="app/db", RecoveryWindowInDays=7)
    clock.advance(7 * DAY + 1)
    assert listed_names(client, include_planned_deletion=True) == []


def test_the_name_is_free_again_once_the_recovery_window_has_passed(client, clock):
    old = make_secret(client)
    client.delete_secret(SecretId="app/db", RecoveryWindowInDays=7)
    clock.advance(7 * DAY + 1)
    new = client.create_secret(Name="app/db", SecretString="reborn")
    assert new["ARN"] != old["ARN"]
    assert client.get_secret_value(SecretId="app/db")["SecretString"] == "reborn"
    described = client.describe_secret(SecretId="app/db")
    assert list(described["VersionIdsToStages"]) == [new["VersionId"]]
    assert "Tags" not in described


# -- the background purge (worker.Worker) ----------------------------------------------------------


def child_rows(server, pk: int) -> dict[str, int]:
    """How many rows the secret with this pk has in each table that hangs off it."""
    with server.installation.store.engine.connect() as conn:
        return {
            table.name: conn.execute(
                sa.select(sa.func.count()).where(table.c.secret_pk == pk)
            ).scalar_one()
            for table in CHILD_TABLES
        }


def secret_row_exists(server, arn: str) -> bool:
    with server.installation.store.read() as tx:
        return tx.secret_by_arn(arn) is not None


def pk_of(server, arn: str) -> int:
    with server.installation.store.read() as tx:
        return tx.secret_by_arn(arn).pk


def due_at(server, now: float) -> int:
    with server.installation.store.read() as tx:
        return len(tx.secrets_due_for_purge(now, 100_000))


def test_the_worker_purges_every_row_of_a_secret_past_its_recovery_window(server, client, clock):
    arn = make_secret(client)["ARN"]
    client.put_secret_value(SecretId="app/db", SecretString="second")
    client.delete_secret(SecretId="app/db", RecoveryWindowInDays=7)
    pk = pk_of(server, arn)
    assert all(child_rows(server, pk).values())  # versions, labels, tags and words exist
    clock.advance(7 * DAY + 1)
    Worker(server.installation.store, clock=clock).purge_due()
    assert not secret_row_exists(server, arn)
    assert child_rows(server, pk) == dict.fromkeys((t.name for t in CHILD_TABLES), 0)


def test_the_worker_leaves_secrets_whose_window_has_not_passed(server, client, clock):
    scheduled = make_secret(client, "scheduled")["ARN"]
    alive = make_secret(client, "alive")["ARN"]
    client.delete_secret(SecretId="scheduled", RecoveryWindowInDays=7)
    clock.advance(7 * DAY - 60)
    Worker(server.installation.store, clock=clock).purge_due()
    assert secret_row_exists(server, scheduled)
    assert secret_row_exists(server, alive)
    client.restore_secret(SecretId="scheduled")
    assert client.get_secret_value(SecretId="scheduled")["SecretString"] == "s3cr3t"


def test_the_worker_answers_how_many_secrets_it_purged(server, client):
    arns = []
    for name in ("a", "b", "c"):
        arns.append(make_secret(client, name)["ARN"])
        client.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    # A clock of the worker's own: the server's worker, on the real clock, sees none of these
    # as due, so it cannot purge them first. Secrets other tests left scheduled may be due too.
    later = time.time() + 7 * DAY + 1
    due = due_at(server, later)
    assert due >= 3
    worker = Worker(server.installation.store, clock=lambda: later)
    assert worker.purge_due() == due
    assert worker.purge_due() == 0
    assert not any(secret_row_exists(server, arn) for arn in arns)


def test_the_worker_purges_more_secrets_than_fit_in_one_batch(server, client, clock, monkeypatch):
    monkeypatch.setattr(worker_module, "PURGE_BATCH", 2)
    arns = []
    for i in range(5):
        arns.append(make_secret(client, f"s{i}")["ARN"])
        client.delete_secret(SecretId=f"s{i}", RecoveryWindowInDays=7)
    clock.advance(7 * DAY + 1)
    Worker(server.installation.store, clock=clock).purge_due()
    assert not any(secret_row_exists(server, arn) for arn in arns)
    assert due_at(server, clock()) == 0


def test_the_worker_loop_purges_until_told_to_stop(server, client, clock):
    arn = make_secret(client)["ARN"]
    client.delete_secret(SecretId="app/db", RecoveryWindowInDays=7)
    clock.advance(7 * DAY + 1)
    stop = threading.Event()
    loop = threading.Thread(
        target=Worker(server.installation.store, clock=clock, interval=0.01).run_forever,
        args=(stop,),
    )
    loop.start()
    try:
        deadline = time.monotonic() + 10
        while secret_row_exists(server, arn) and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        loop.join(timeout=10)
    assert not secret_row_exists(server, arn)
    assert not loop.is_alive()


def test_a_secret_that_cannot_be_purged_does_not_hold_up_the_others(server, client, region, caplog):
    if server.installation.store.engine.dialect.name != "sqlite":
        pytest.skip("the failure is made with an SQLite trigger")
    stuck = make_secret(client, "stuck")["ARN"]
    free = make_secret(client, "free")["ARN"]
    for name in ("stuck", "free"):
        client.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    later = time.time() + 7 * DAY + 1
    # A real failure inside the database, not a fake store: SQLite refuses this one delete.
    trigger = f"refuse_purge_{region.replace('-', '_')}"
    with server.installation.store.engine.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE TRIGGER {trigger} BEFORE DELETE ON secrets "
            f"WHEN OLD.arn = '{stuck}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
    try:
        with caplog.at_level("ERROR", logger="strongroom.worker"):
            Worker(server.installation.store, clock=lambda: later).purge_due()
        assert not secret_row_exists(server, free)
        assert secret_row_exists(server, stuck)
        assert all(child_rows(server, pk_of(server, stuck)).values())  # rolled back whole
        assert f"purging secret {stuck} failed" in caplog.text
    finally:
        with server.installation.store.engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TRIGGER {trigger}")
    Worker(server.installation.store, clock=lambda: later).purge_due()
    assert not secret_row_exists(server, stuck)


def test_a_restore_that_wins_the_race_with_the_purge_is_not_undone(server, client):
    arn = make_secret(client)["ARN"]
    client.delete_secret(SecretId="app/db", RecoveryWindowInDays=7)
    later = time.time() + 7 * DAY + 1
    with server.installation.store.read() as tx:
        (seen,) = [row for row in tx.secrets_due_for_purge(later, 100_000) if row.arn == arn]
    # The worker saw the secret as due; the owner restores it before the purge runs.
    client.restore_secret(SecretId="app/db")
    worker = Worker(server.installation.store, clock=lambda: later)
    assert worker._purge(seen, later) == 0
    assert client.get_secret_value(SecretId="app/db")["SecretString"] == "s3cr3t"
