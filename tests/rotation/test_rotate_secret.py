"""RotateSecret and CancelRotateSecret end to end: boto3 against the running server, rotation
functions registered with ``strongroom functions add`` and run by the server's rotation engine
in processes of their own, calling back into the server with their temporary credentials."""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from tests.api.helpers import refusal
from tests.conftest import ACCOUNT_ID, Server
from tests.rotation.helpers import function_arn, register_function, rotation_row, wait_for

from strongroom.cli.main import main as cli
from strongroom.operations.rotation import CANNOT_INVOKE, NO_FUNCTION, PREVIOUS_INCOMPLETE
from strongroom.rotation.engine import BACKOFF
from strongroom.storage.base import AuditQuery

pytestmark = pytest.mark.slow

# A rotation function as users write them for AWS: the four steps, boto3 pointed at the
# endpoint the server hands over. CONTROL is a directory through which the test steers it.
FUNCTION = textwrap.dedent(
    """
    import json, os, pathlib, time
    import boto3

    CONTROL = pathlib.Path(os.environ["CONTROL"])

    def wait_for(name):
        deadline = time.monotonic() + 60
        while not (CONTROL / name).exists():
            if time.monotonic() > deadline:
                raise TimeoutError(name)
            time.sleep(0.05)

    def lambda_handler(event, context):
        step, arn, token = event["Step"], event["SecretId"], event["ClientRequestToken"]
        (CONTROL / f"{step}.pid").write_text(str(os.getpid()))
        sm = boto3.client("secretsmanager", endpoint_url=os.environ["SECRETS_MANAGER_ENDPOINT"])
        if (CONTROL / f"block-{step}").exists():
            wait_for(f"release-{step}")
        if (CONTROL / f"fail-{step}").exists():
            raise RuntimeError(f"{step} was told to fail")
        if step == "createSecret":
            try:
                sm.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")
            except sm.exceptions.ResourceNotFoundException:
                password = sm.get_random_password(PasswordLength=24)["RandomPassword"]
                sm.put_secret_value(SecretId=arn, ClientRequestToken=token,
                                    SecretString=json.dumps({"password": password}),
                                    VersionStages=["AWSPENDING"])
            try:
                sm.get_secret_value(SecretId=os.environ["OTHER_SECRET"])
                (CONTROL / "other").write_text("read")
            except sm.exceptions.ClientError as exc:
                (CONTROL / "other").write_text(exc.response["Error"]["Code"])
        elif step == "testSecret":
            seen = sm.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")
            (CONTROL / "tested").write_text(seen["SecretString"])
        elif step == "finishSecret":
            described = sm.describe_secret(SecretId=arn)
            current = next(v for v, s in described["VersionIdsToStages"].items()
                           if "AWSCURRENT" in s)
            if current != token:
                sm.update_secret_version_stage(SecretId=arn, VersionStage="AWSCURRENT",
                                               MoveToVersionId=token, RemoveFromVersionId=current)
        print(f"{step} done")
    """
)


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
    name = f"fn-{uuid.uuid4().hex[:8]}"
    printed = register_function(
        server, name,
        "--handler", f"{handler}:lambda_handler",
        "--env", f"CONTROL={control}",
        "--env", f"OTHER_SECRET=other-{name}",
        "--timeout", "60",
        "--python", sys.executable,
    )  # fmt: skip
    assert printed == f"arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:{name}"
    return function_arn(name, region)


def _stages(client: Any, secret_id: str) -> dict[str, list[str]]:
    return client.describe_secret(SecretId=secret_id)["VersionIdsToStages"]


def _settled(server: Server, version_id: str) -> Any:
    row = rotation_row(server, version_id)
    ended = {"succeeded", "failed", "cancelled", "abandoned"}
    return row if row is not None and row.state in ended else None


def _engine(server: Server) -> Any:
    return server.app.services["rotations"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_rotation_runs_the_four_steps_and_moves_the_labels(client, server, function, control):
    created = client.create_secret(Name="db/app", SecretString='{"password": "initial"}')
    (control / "block-createSecret").touch()
    rotated = client.rotate_secret(SecretId="db/app", RotationLambdaARN=function)
    token = rotated["VersionId"]
    assert rotated["ARN"] == created["ARN"]
    # Before the function runs: rotation on, the empty AWSPENDING version there, no value.
    described = client.describe_secret(SecretId="db/app")
    assert described["RotationEnabled"] is True
    assert described["RotationLambdaARN"] == function
    assert described["VersionIdsToStages"][token] == ["AWSPENDING"]
    code, _ = refusal(client.get_secret_value, SecretId="db/app", VersionStage="AWSPENDING")
    assert code == "ResourceNotFoundException"
    (control / "release-createSecret").touch()

    row = wait_for(lambda: _settled(server, token), "the rotation")
    assert (row.state, row.attempts, row.error) == ("succeeded", 1, None)
    stages = _stages(client, "db/app")
    assert stages[token] == ["AWSCURRENT"]  # AWSPENDING taken off by the server
    assert stages[created["VersionId"]] == ["AWSPREVIOUS"]
    value = json.loads(client.get_secret_value(SecretId="db/app")["SecretString"])
    assert value["password"] != "initial"
    assert (control / "tested").read_text() == json.dumps(value)
    described = client.describe_secret(SecretId="db/app")
    assert "LastRotatedDate" in described
    # The function's credentials reach only the secret being rotated.
    assert (control / "other").read_text() == "AccessDeniedException"
    with server.installation.store.read() as tx:
        steps = tx.rotation_steps(row.pk)
    assert [(s.step, s.ok) for s in steps] == [
        ("createSecret", True),
        ("setSecret", True),
        ("testSecret", True),
        ("finishSecret", True),
    ]
    assert steps[0].output.strip() == "createSecret done"
    # The step that printed the new value shows it masked.
    assert value["password"] not in "".join(s.output or "" for s in steps)


def test_a_second_rotate_reuses_the_stored_function(client, server, function):
    client.create_secret(Name="db/again", SecretString="v0")
    first = client.rotate_secret(SecretId="db/again", RotationLambdaARN=function)
    wait_for(lambda: _settled(server, first["VersionId"]), "the first rotation")
    second = client.rotate_secret(SecretId="db/again")
    row = wait_for(lambda: _settled(server, second["VersionId"]), "the second rotation")
    assert row.state == "succeeded"
    stages = _stages(client, "db/again")
    assert stages[second["VersionId"]] == ["AWSCURRENT"]
    assert stages[first["VersionId"]] == ["AWSPREVIOUS"]


def test_refusals_store_nothing(client, server, function):
    client.create_secret(Name="db/none", SecretString="v0")
    assert refusal(client.rotate_secret, SecretId="db/none") == (
        "InvalidRequestException",
        NO_FUNCTION,
    )
    unknown = function.rsplit(":", 1)[0] + ":no-such-function"
    assert refusal(client.rotate_secret, SecretId="db/none", RotationLambdaARN=unknown) == (
        "AccessDeniedException",
        CANNOT_INVOKE,
    )
    described = client.describe_secret(SecretId="db/none")
    assert "RotationEnabled" not in described
    assert "RotationLambdaARN" not in described
    assert len(described["VersionIdsToStages"]) == 1
    client.delete_secret(SecretId="db/none")
    code, _ = refusal(client.rotate_secret, SecretId="db/none", RotationLambdaARN=function)
    assert code == "InvalidRequestException"


def test_cancel_stops_a_rotation_in_progress(client, server, function, control):
    created = client.create_secret(Name="db/cancel", SecretString="v0")
    (control / "block-setSecret").touch()
    token = client.rotate_secret(SecretId="db/cancel", RotationLambdaARN=function)["VersionId"]
    pid = int(wait_for(lambda: _read(control / "setSecret.pid"), "setSecret to start"))
    assert _alive(pid)

    cancelled = client.cancel_rotate_secret(SecretId="db/cancel")
    assert cancelled["VersionId"] == token
    assert cancelled["Name"] == "db/cancel"
    wait_for(lambda: not _alive(pid), "the function's process to be killed", timeout=10)
    assert rotation_row(server, token).state == "cancelled"
    described = client.describe_secret(SecretId="db/cancel")
    assert described["RotationEnabled"] is False
    assert described["RotationLambdaARN"] == function  # kept, as the seed says
    assert "NextRotationDate" not in described
    stages = described["VersionIdsToStages"]
    assert stages[token] == ["AWSPENDING"]  # left where it is
    assert stages[created["VersionId"]] == ["AWSCURRENT"]
    assert not (control / "testSecret.pid").exists()

    # Blocked until the user removes AWSPENDING, as AWS.
    assert refusal(client.rotate_secret, SecretId="db/cancel") == (
        "InvalidRequestException",
        PREVIOUS_INCOMPLETE,
    )
    client.update_secret_version_stage(
        SecretId="db/cancel", VersionStage="AWSPENDING", RemoveFromVersionId=token
    )
    (control / "block-setSecret").unlink()
    again = client.rotate_secret(SecretId="db/cancel")
    row = wait_for(lambda: _settled(server, again["VersionId"]), "the rotation after cancelling")
    assert row.state == "succeeded"


def _service_events(server: Server, name: str) -> list[dict[str, Any]]:
    """The service events recorded about secret ``name``, oldest first."""
    query = AuditQuery(equals=(("resource_name", name),), newest_first=False, limit=1000)
    with server.installation.store.read() as tx:
        records = [json.loads(row.record) for row in tx.audit_events(query)]
    return [r for r in records if r["eventType"] == "AwsServiceEvent"]


def test_a_value_put_by_hand_abandons_a_rotation_in_progress(client, server, function, control):
    created = client.create_secret(Name="db/abandon", SecretString="v0")
    (control / "block-setSecret").touch()
    token = client.rotate_secret(SecretId="db/abandon", RotationLambdaARN=function)["VersionId"]
    pid = int(wait_for(lambda: _read(control / "setSecret.pid"), "setSecret to start"))

    put = client.put_secret_value(SecretId="db/abandon", SecretString="set by hand")
    wait_for(lambda: not _alive(pid), "the function's process to be stopped", timeout=10)
    assert rotation_row(server, token).state == "abandoned"
    # AWSPENDING is off the rotation's version (now unlabelled, hence deprecated), so the
    # next rotation may start: AWS does the same and records RotationAbandoned.
    assert _stages(client, "db/abandon") == {
        put["VersionId"]: ["AWSCURRENT"],
        created["VersionId"]: ["AWSPREVIOUS"],
    }
    assert client.get_secret_value(SecretId="db/abandon")["SecretString"] == "set by hand"
    events = _service_events(server, "db/abandon")
    assert [e["eventName"] for e in events] == ["RotationStarted", "RotationAbandoned"]
    arn = created["ARN"]
    assert events[1]["requestID"] == f"Rotation-{arn}-{token}"  # the rotation it ends
    assert events[1]["additionalEventData"] == {"SecretId": arn}

    (control / "block-setSecret").unlink()
    again = client.rotate_secret(SecretId="db/abandon")  # not "A previous rotation isn't complete"
    row = wait_for(lambda: _settled(server, again["VersionId"]), "the next rotation")
    assert row.state == "succeeded"
    assert rotation_row(server, token).state == "abandoned"  # its engine left it so
    names = [e["eventName"] for e in _service_events(server, "db/abandon")]
    assert names == ["RotationStarted", "RotationAbandoned", "RotationStarted", "RotationSucceeded"]


def test_a_value_put_under_another_label_abandons_nothing(client, server, function, control):
    created = client.create_secret(Name="db/keep-going", SecretString="v0")
    (control / "block-setSecret").touch()
    token = client.rotate_secret(SecretId="db/keep-going", RotationLambdaARN=function)["VersionId"]
    wait_for(lambda: _read(control / "setSecret.pid"), "setSecret to start")
    staged = client.put_secret_value(
        SecretId="db/keep-going", SecretString="staged", VersionStages=["NEXT"]
    )
    assert _stages(client, "db/keep-going")[token] == ["AWSPENDING"]
    (control / "release-setSecret").touch()
    row = wait_for(lambda: _settled(server, token), "the rotation")
    assert row.state == "succeeded"
    assert _stages(client, "db/keep-going") == {
        token: ["AWSCURRENT"],
        created["VersionId"]: ["AWSPREVIOUS"],
        staged["VersionId"]: ["NEXT"],
    }
    names = [e["eventName"] for e in _service_events(server, "db/keep-going")]
    assert names == ["RotationStarted", "RotationSucceeded"]


def test_a_value_put_by_hand_clears_what_a_cancelled_rotation_left(
    client, server, function, control
):
    client.create_secret(Name="db/left", SecretString="v0")
    (control / "block-setSecret").touch()
    token = client.rotate_secret(SecretId="db/left", RotationLambdaARN=function)["VersionId"]
    wait_for(lambda: _read(control / "setSecret.pid"), "setSecret to start")
    client.cancel_rotate_secret(SecretId="db/left")
    wait_for(lambda: _settled(server, token), "the cancellation")
    assert _stages(client, "db/left")[token] == ["AWSPENDING"]

    updated = client.update_secret(SecretId="db/left", SecretString="set by hand")
    assert token not in _stages(client, "db/left")
    assert rotation_row(server, token).state == "cancelled"  # ended already: stays as it was
    events = _service_events(server, "db/left")
    assert [e["eventName"] for e in events] == ["RotationStarted", "RotationAbandoned"]
    assert events[1]["requestID"] == f"Rotation-{updated['ARN']}-{token}"
    (control / "block-setSecret").unlink()
    again = client.rotate_secret(SecretId="db/left", RotationLambdaARN=function)
    assert wait_for(lambda: _settled(server, again["VersionId"]), "a new rotation").state == (
        "succeeded"
    )


def test_a_failing_step_is_retried_with_backoff_then_given_up(
    client, server, function, control, clock
):
    created = client.create_secret(Name="db/fails", SecretString="v0")
    (control / "fail-testSecret").touch()
    token = client.rotate_secret(SecretId="db/fails", RotationLambdaARN=function)["VersionId"]
    engine = _engine(server)
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
        assert "testSecret failed: RuntimeError: testSecret was told to fail" in row.error
        stages = _stages(client, "db/fails")
        assert stages[created["VersionId"]] == ["AWSCURRENT"]  # untouched
        assert stages[token] == ["AWSPENDING"]  # stays
        if delay is None:
            assert row.state == "failed"
            break
        assert row.state == "pending"
        clock.advance(delay)
        engine.wake()
    with server.installation.store.read() as tx:
        steps = tx.rotation_steps(row.pk)
    assert [(s.attempt, s.step, s.ok) for s in steps if s.step == "testSecret"] == [
        (1, "testSecret", False),
        (2, "testSecret", False),
        (3, "testSecret", False),
    ]


def test_rotate_immediately_false_only_tests_a_copy(client, server, function, control):
    created = client.create_secret(Name="db/test-only", SecretString="keep-me")
    token = client.rotate_secret(
        SecretId="db/test-only", RotationLambdaARN=function, RotateImmediately=False
    )["VersionId"]
    row = wait_for(lambda: _settled(server, token), "the test-only rotation")
    assert row.state == "succeeded"
    assert (control / "tested").read_text() == "keep-me"
    assert not (control / "createSecret.pid").exists()
    stages = _stages(client, "db/test-only")
    assert stages == {created["VersionId"]: ["AWSCURRENT"]}
    described = client.describe_secret(SecretId="db/test-only")
    assert described["RotationEnabled"] is True
    assert "LastRotatedDate" not in described


def test_a_timed_out_step_is_killed(server, client, tmp_path, region):
    handler = tmp_path / "slow.py"
    handler.write_text("import time\ndef lambda_handler(event, context):\n    time.sleep(60)\n")
    name = f"slow-{uuid.uuid4().hex[:8]}"
    register_function(server, name, "--handler", f"{handler}:lambda_handler", "--timeout", "1")
    client.create_secret(Name="db/slow", SecretString="v0")
    arn = function_arn(name, region)
    token = client.rotate_secret(SecretId="db/slow", RotationLambdaARN=arn)["VersionId"]
    row = wait_for(lambda: (r := rotation_row(server, token)) and r.attempts == 1 and r.error and r,
                "the first attempt to time out")  # fmt: skip
    assert "timed out" in row.error


def test_schedule_starts_rotations_when_due(client, server, function, clock):
    client.create_secret(Name="db/scheduled", SecretString="v0")
    first = client.rotate_secret(
        SecretId="db/scheduled",
        RotationLambdaARN=function,
        RotationRules={"AutomaticallyAfterDays": 2},
    )
    wait_for(lambda: _settled(server, first["VersionId"]), "the first rotation")
    described = client.describe_secret(SecretId="db/scheduled")
    assert described["RotationRules"] == {"AutomaticallyAfterDays": 2}
    next_date = described["NextRotationDate"].timestamp()
    assert 86_400 < next_date - time.time() <= 3 * 86_400

    clock.advance(3 * 86_400)
    _engine(server).wake()
    later = wait_for(
        lambda: (
            (v := client.describe_secret(SecretId="db/scheduled"))["LastRotatedDate"]
            > described["LastRotatedDate"]
            and v
        ),
        "the scheduled rotation",
    )
    current = [v for v, s in later["VersionIdsToStages"].items() if "AWSCURRENT" in s]
    assert current != [first["VersionId"]]
    assert later["NextRotationDate"] > described["NextRotationDate"]


def test_functions_cli_lists_and_removes(server, function):
    name = function.rsplit(":", 1)[1]
    runner = CliRunner()
    listed = runner.invoke(cli, ["functions", "list", *server.cli_args])
    assert listed.exit_code == 0
    assert name in listed.output
    removed = runner.invoke(cli, ["functions", "remove", name, *server.cli_args])
    assert removed.exit_code == 0
    again = runner.invoke(cli, ["functions", "remove", name, *server.cli_args])
    assert again.exit_code != 0


def test_rotations_cli_shows_attempts_and_errors(client, server, function, control, region):
    client.create_secret(Name="db/listed", SecretString="v0")
    (control / "fail-setSecret").touch()
    token = client.rotate_secret(SecretId="db/listed", RotationLambdaARN=function)["VersionId"]
    wait_for(
        lambda: (r := rotation_row(server, token)) and r.attempts == 1 and r.error, "a failure"
    )
    result = CliRunner().invoke(
        cli,
        ["rotations", "list", "--secret", "db/listed", "--region", region, "--output", "json",
         *server.cli_args],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    record = json.loads(result.output.splitlines()[0])
    assert record["version_id"] == token
    assert [(s["step"], s["ok"]) for s in record["steps"]] == [
        ("createSecret", True),
        ("setSecret", False),
    ]
    assert "setSecret was told to fail" in record["steps"][1]["error"]


def _read(path: Path) -> str | None:
    try:
        return path.read_text() or None
    except FileNotFoundError:
        return None


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ({"AutomaticallyAfterDays": 5, "ScheduleExpression": "rate(10 days)"}, "InvalidParameter"),
        ({"ScheduleExpression": "rate(2 hours)"}, "InvalidParameter"),
        ({"ScheduleExpression": "cron(15 10 * * ? *)"}, "InvalidParameter"),
        ({"AutomaticallyAfterDays": 1001}, "Validation"),  # the model's range, checked first
    ],
)
def test_invalid_rules_are_refused_and_store_nothing(client, function, rules, expected):
    client.create_secret(Name="db/rules", SecretString="v0")
    code, _ = refusal(
        client.rotate_secret, SecretId="db/rules", RotationLambdaARN=function, RotationRules=rules
    )
    assert code == f"{expected}Exception"
    described = client.describe_secret(SecretId="db/rules")
    assert "RotationEnabled" not in described
    assert len(described["VersionIdsToStages"]) == 1


def test_a_manual_update_counts_as_a_rotation_for_automatically_after_days(
    client, server, function, clock
):
    client.create_secret(Name="db/manual", SecretString="v0")
    first = client.rotate_secret(
        SecretId="db/manual",
        RotationLambdaARN=function,
        RotationRules={"AutomaticallyAfterDays": 3},
    )
    wait_for(lambda: _settled(server, first["VersionId"]), "the rotation")
    before = client.describe_secret(SecretId="db/manual")["NextRotationDate"]
    clock.advance(2 * 86_400)
    client.put_secret_value(SecretId="db/manual", SecretString="set by hand")
    after = client.describe_secret(SecretId="db/manual")["NextRotationDate"]
    assert (after - before).total_seconds() >= 86_400  # three days from the manual update


def test_an_http_function_rotates(client, server, region):
    """A rotation function in another language is an HTTP endpoint: POST the event, 2xx."""
    import http.server  # noqa: PLC0415
    import threading  # noqa: PLC0415

    import boto3  # noqa: PLC0415
    from tests.conftest import ROOT_KEY_ID, ROOT_SECRET  # noqa: PLC0415

    sm = boto3.client(
        "secretsmanager",
        endpoint_url=server.url,
        region_name=region,
        aws_access_key_id=ROOT_KEY_ID,
        aws_secret_access_key=ROOT_SECRET,
    )
    seen: list[str] = []

    class Rotator(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            event = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append(event["Step"])
            arn, token = event["SecretId"], event["ClientRequestToken"]
            if event["Step"] == "createSecret":
                sm.put_secret_value(
                    SecretId=arn,
                    ClientRequestToken=token,
                    SecretString="from-http",
                    VersionStages=["AWSPENDING"],
                )
            elif event["Step"] == "finishSecret":
                stages = sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
                current = next(v for v, s in stages.items() if "AWSCURRENT" in s)
                sm.update_secret_version_stage(
                    SecretId=arn,
                    VersionStage="AWSCURRENT",
                    MoveToVersionId=token,
                    RemoveFromVersionId=current,
                )
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Rotator)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        name = f"http-{uuid.uuid4().hex[:8]}"
        url = f"http://127.0.0.1:{httpd.server_address[1]}/rotate"
        register_function(server, name, "--url", url)
        client.create_secret(Name="db/http", SecretString="v0")
        arn = function_arn(name, region)
        token = client.rotate_secret(SecretId="db/http", RotationLambdaARN=arn)["VersionId"]
        row = wait_for(lambda: _settled(server, token), "the HTTP rotation")
    finally:
        httpd.shutdown()
    assert row.state == "succeeded"
    assert seen == ["createSecret", "setSecret", "testSecret", "finishSecret"]
    assert client.get_secret_value(SecretId="db/http")["SecretString"] == "from-http"


def test_a_token_naming_an_existing_version_is_refused(client, function):
    created = client.create_secret(Name="db/token", SecretString="v0")
    code, _ = refusal(
        client.rotate_secret,
        SecretId="db/token",
        RotationLambdaARN=function,
        ClientRequestToken=created["VersionId"],
    )
    assert code == "ResourceExistsException"
    assert _stages(client, "db/token") == {created["VersionId"]: ["AWSCURRENT"]}
