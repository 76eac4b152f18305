"""The audit trail end to end: real boto3 clients against the running server, then the
``audit_events`` table read back through the store.

What must hold (strongroom.audit.trail, protocol.asgi, app._audited):
- every call, refused or not, leaves exactly one CloudTrail record naming it, whose
  requestID is the x-amzn-RequestId the client saw;
- no secret material reaches the table, the sealed log files or the data dir (canaries
  sent through every operation that carries some);
- a record that cannot be written fails the call with a 500 and changes nothing;
- writes commit together with their record; other records are group-committed;
- with the audit off nothing is recorded.

The server is shared by the session (tests/conftest.py): each test reads only the records
after the newest one that existed when it started (``Trail.mark``).
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from botocore import UNSIGNED
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from tests.api.rawhttp import signed_call
from tests.conftest import ACCOUNT_ID, ROOT_KEY_ID, ROOT_SECRET, Server, start_server
from tests.postgres import fresh_postgres_database
from tests.test_no_plaintext import forms

from strongroom.audit.records import java_date
from strongroom.storage import schema
from strongroom.storage.base import AuditQuery

SM, IAM, STS = "secretsmanager.amazonaws.com", "iam.amazonaws.com", "sts.amazonaws.com"
ROOT_IDENTITY = {
    "type": "Root",
    "principalId": ACCOUNT_ID,
    "arn": f"arn:aws:iam::{ACCOUNT_ID}:root",
    "accountId": ACCOUNT_ID,
    "accessKeyId": ROOT_KEY_ID,
}


# -- reading the trail ----------------------------------------------------------------------


class Trail:
    """The records a test's calls left: those after the newest that existed at ``mark``."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.since = self._newest_seq()

    def _newest_seq(self) -> int:
        self.server.settle_audit()
        with self.server.installation.store.read() as tx:
            newest = tx.audit_events(AuditQuery(limit=1))
        return newest[0].seq if newest else 0

    def mark(self) -> None:
        self.since = self._newest_seq()

    def records(self) -> list[dict[str, Any]]:
        """Every record of an API call since the mark, oldest first. Service events (a
        rotation or purge the shared server's background threads run for other tests'
        secrets) are no call's record."""
        self.server.settle_audit()
        with self.server.installation.store.read() as tx:
            rows = tx.audit_events(
                AuditQuery(after_seq=self.since, newest_first=False, limit=1_000_000)
            )
        rows.sort(key=lambda row: (row.event_time, row.seq))  # the order the calls came in
        records = [json.loads(row.record) for row in rows]
        return [record for record in records if record["eventType"] == "AwsApiCall"]

    def of(self, request_id: str) -> dict[str, Any]:
        """The one record of the call the client knows by ``request_id``."""
        found = [r for r in self.records() if r["requestID"] == request_id]
        assert len(found) == 1, (request_id, found)
        return found[0]


@pytest.fixture
def trail(server: Server) -> Trail:
    return Trail(server)


def request_id(answer: dict[str, Any] | ClientError) -> str:
    """The x-amzn-RequestId header of a reply (and botocore's RequestId agrees with it)."""
    meta = (
        answer.response["ResponseMetadata"]
        if isinstance(answer, ClientError)
        else answer["ResponseMetadata"]
    )
    header = meta["HTTPHeaders"]["x-amzn-requestid"]
    assert meta["RequestId"] == header
    return str(header)


def failure(call: Callable[..., Any], **kwargs: Any) -> ClientError:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return caught.value


def make_client(
    server: Server,
    service: str,
    region: str,
    creds: dict[str, Any] | None = None,
    **config: Any,
) -> Any:
    return server.service_client(service, region, creds, **config)


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def assert_common(record: dict[str, Any], *, source: str, name: str, rid: str) -> None:
    """The fields every record of a boto3 call from this machine has, whoever called."""
    assert record["eventSource"] == source
    assert record["eventName"] == name
    assert record["requestID"] == rid
    assert record["recipientAccountId"] == ACCOUNT_ID
    assert record["sourceIPAddress"] == "127.0.0.1"
    assert "Boto3/" in record["userAgent"]
    assert "Botocore/" in record["userAgent"]
    assert record["eventType"] == "AwsApiCall"
    assert record["eventCategory"] == "Management"
    uuid.UUID(record["eventID"])


@pytest.fixture
def iam(server: Server, region: str) -> Any:
    return make_client(server, "iam", region)


class People:
    """IAM users and roles made through boto3's IAM client (account-wide: names are unique)."""

    def __init__(self, iam: Any) -> None:
        self.iam = iam

    def user(self, document: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
        """A user with ``document`` as its inline policy: (the User, its new access key)."""
        name = unique("auditee")
        user = self.iam.create_user(UserName=name)["User"]
        if document is not None:
            self.iam.put_user_policy(UserName=name, PolicyName="inline", PolicyDocument=document)
        return user, self.iam.create_access_key(UserName=name)["AccessKey"]

    def role(self, user_arn: str) -> dict[str, Any]:
        """A role that user may assume, allowed to read secret values."""
        name = unique("auditor")
        trust = policy(
            {"Effect": "Allow", "Principal": {"AWS": user_arn}, "Action": "sts:AssumeRole"}
        )
        role = self.iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]
        self.iam.put_role_policy(
            RoleName=name,
            PolicyName="read",
            PolicyDocument=policy(
                {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}
            ),
        )
        return dict(role)


@pytest.fixture
def people(iam: Any) -> People:
    return People(iam)


ASSUMER = policy({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"})


# -- one record per call, naming it ----------------------------------------------------------


def test_each_call_has_one_record_with_what_the_client_saw(server, client, region, trail):
    created = client.create_secret(Name="app/db", SecretString="v1", Description="first")
    calls: list[tuple[str, str, bool, dict[str, Any] | ClientError]] = [
        ("CreateSecret", "app/db", False, created),
        ("DescribeSecret", "app/db", True, client.describe_secret(SecretId="app/db")),
        ("GetSecretValue", "app/db", True, client.get_secret_value(SecretId="app/db")),
        (
            "PutSecretValue",
            "app/db",
            False,
            client.put_secret_value(SecretId="app/db", SecretString="v2"),
        ),
        ("ListSecrets", "", True, client.list_secrets()),
        ("GetRandomPassword", "", True, client.get_random_password(PasswordLength=20)),
        (
            "GetSecretValue",
            "app/nothing",
            True,
            failure(client.get_secret_value, SecretId="app/nothing"),
        ),
        (
            "CreateSecret",
            "app/db",
            False,
            failure(client.create_secret, Name="app/db", SecretString="again"),
        ),
    ]
    records = trail.records()
    assert len(records) == len(calls)  # exactly one each, and nothing else
    assert [r["requestID"] for r in records] == [request_id(answer) for *_, answer in calls]
    for (name, secret, read_only, answer), record in zip(calls, records, strict=True):
        assert_common(record, source=SM, name=name, rid=request_id(answer))
        assert record["userIdentity"] == ROOT_IDENTITY
        assert record["awsRegion"] == region
        assert record["readOnly"] is read_only
        if secret:
            assert (
                record["requestParameters"]["secretId" if name != "CreateSecret" else "name"]
                == secret
            )
        if isinstance(answer, ClientError):
            assert record["errorCode"] == answer.response["Error"]["Code"]
            assert record["errorMessage"] == answer.response["Error"]["Message"]
            assert record["responseElements"] is None
        else:
            assert "errorCode" not in record
            assert "errorMessage" not in record
        if read_only:
            assert record["responseElements"] is None  # AWS: only calls that change things
    assert [r.get("errorCode") for r in records[-2:]] == [
        "ResourceNotFoundException",
        "ResourceExistsException",
    ]
    create, put = records[0], records[3]
    assert create["responseElements"] == {
        "arn": created["ARN"],
        "name": "app/db",
        "versionId": created["VersionId"],
    }
    assert create["requestParameters"]["description"] == "first"
    assert put["responseElements"]["versionId"] == calls[3][3]["VersionId"]


def test_an_iam_user_is_recorded_as_itself(server, client, region, trail, people):
    client.create_secret(Name="team/db", SecretString="v1")
    reader = policy({"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"})
    user, key = people.user(reader)
    trail.mark()
    as_user = make_client(server, "secretsmanager", region, key)
    got = as_user.get_secret_value(SecretId="team/db")
    denied = failure(as_user.put_secret_value, SecretId="team/db", SecretString="v2")
    identity = {
        "type": "IAMUser",
        "principalId": user["UserId"],
        "arn": user["Arn"],
        "accountId": ACCOUNT_ID,
        "accessKeyId": key["AccessKeyId"],
        "userName": user["UserName"],
    }
    read, write = trail.of(request_id(got)), trail.of(request_id(denied))
    assert_common(read, source=SM, name="GetSecretValue", rid=request_id(got))
    assert read["userIdentity"] == identity
    assert read["readOnly"] is True
    assert_common(write, source=SM, name="PutSecretValue", rid=request_id(denied))
    assert write["userIdentity"] == identity
    assert write["readOnly"] is False
    assert write["errorCode"] == "AccessDeniedException"
    assert write["errorMessage"] == denied.response["Error"]["Message"]
    assert len(trail.records()) == 2


def test_an_assumed_role_is_recorded_with_its_session_context(
    server, client, region, trail, people
):
    client.create_secret(Name="ops/db", SecretString="v1")
    user, key = people.user(ASSUMER)
    role = people.role(user["Arn"])
    trail.mark()
    assumed = make_client(server, "sts", region, key).assume_role(
        RoleArn=role["Arn"], RoleSessionName="job-7", DurationSeconds=900
    )
    creds = assumed["Credentials"]
    as_role = make_client(server, "secretsmanager", region, creds)
    got = as_role.get_secret_value(SecretId="ops/db")
    who = make_client(server, "sts", region, creds).get_caller_identity()

    # AssumeRole: recorded with its response (AWS does, though it only reads), without the
    # session's secret key or token.
    record = trail.of(request_id(assumed))
    assert_common(record, source=STS, name="AssumeRole", rid=request_id(assumed))
    assert record["userIdentity"]["type"] == "IAMUser"
    assert record["userIdentity"]["accessKeyId"] == key["AccessKeyId"]
    assert record["requestParameters"]["roleArn"] == role["Arn"]
    assert record["requestParameters"]["roleSessionName"] == "job-7"
    assert record["responseElements"]["credentials"]["accessKeyId"] == creds["AccessKeyId"]
    assert (
        record["responseElements"]["assumedRoleUser"]["arn"] == (assumed["AssumedRoleUser"]["Arn"])
    )
    text = json.dumps(record)
    assert creds["SecretAccessKey"] not in text
    assert creds["SessionToken"] not in text

    # The session's own calls: AssumedRole, with the role that issued it.
    session_arn = f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role['RoleName']}/job-7"
    assert assumed["AssumedRoleUser"]["Arn"] == session_arn
    for answer, source, name in ((got, SM, "GetSecretValue"), (who, STS, "GetCallerIdentity")):
        record = trail.of(request_id(answer))
        assert_common(record, source=source, name=name, rid=request_id(answer))
        assert record["readOnly"] is True
        identity = record["userIdentity"]
        assert identity["type"] == "AssumedRole"
        assert identity["arn"] == session_arn
        assert identity["principalId"] == assumed["AssumedRoleUser"]["AssumedRoleId"]
        assert identity["principalId"] == f"{role['RoleId']}:job-7"
        assert identity["accountId"] == ACCOUNT_ID
        assert identity["accessKeyId"] == creds["AccessKeyId"]
        context = identity["sessionContext"]
        assert context["sessionIssuer"] == {
            "type": "Role",
            "principalId": role["RoleId"],
            "arn": role["Arn"],
            "accountId": ACCOUNT_ID,
            "userName": role["RoleName"],
        }
        assert context["attributes"]["mfaAuthenticated"] == "false"
        assert creds["SessionToken"] not in json.dumps(record)
    assert len(trail.records()) == 3


def test_an_assumed_role_record_says_when_its_session_was_created(server, region, trail, people):
    user, key = people.user(ASSUMER)
    role = people.role(user["Arn"])
    assumed = make_client(server, "sts", region, key).assume_role(
        RoleArn=role["Arn"], RoleSessionName="job-8"
    )
    who = make_client(server, "sts", region, assumed["Credentials"]).get_caller_identity()
    attributes = trail.of(request_id(who))["userIdentity"]["sessionContext"]["attributes"]
    # CloudTrail's userIdentity element: attributes hold creationDate and mfaAuthenticated.
    assert attributes["creationDate"].endswith("Z")


# -- calls refused before they ran ----------------------------------------------------------


def test_authentication_failures_are_recorded_with_the_key_presented(server, region, trail):
    unknown_key = "AKIAUNKNOWNAUDIT0001"
    unknown = failure(server.client(region, key_id=unknown_key).get_secret_value, SecretId="x")
    forged = failure(server.client(region, secret="not-the-secret").get_secret_value, SecretId="x")
    unsigned = failure(
        make_client(server, "secretsmanager", region, signature_version=UNSIGNED).list_secrets
    )
    iam_unknown = failure(
        make_client(
            server, "iam", region, {"AccessKeyId": unknown_key, "SecretAccessKey": "x"}
        ).list_users
    )
    cases = [
        (unknown, SM, "GetSecretValue", "UnrecognizedClientException", unknown_key),
        (forged, SM, "GetSecretValue", "InvalidSignatureException", ROOT_KEY_ID),
        (unsigned, SM, "ListSecrets", "MissingAuthenticationTokenException", None),
        (iam_unknown, IAM, "ListUsers", "InvalidClientTokenId", unknown_key),
    ]
    assert len(trail.records()) == len(cases)
    for answer, source, name, code, key_id in cases:
        assert answer.response["Error"]["Code"] == code
        record = trail.of(request_id(answer))
        assert_common(record, source=source, name=name, rid=request_id(answer))
        expected = {"type": "Unknown"} | ({} if key_id is None else {"accessKeyId": key_id})
        assert record["userIdentity"] == expected
        assert record["errorCode"] == code
        assert record["errorMessage"] == answer.response["Error"]["Message"]
        assert record["responseElements"] is None
    assert trail.of(request_id(iam_unknown))["awsRegion"] == "us-east-1"
    assert trail.of(request_id(unknown))["awsRegion"] == region  # from the credential scope
    assert trail.of(request_id(unsigned))["awsRegion"] == "us-east-1"  # no scope at all


def test_a_read_refused_by_authentication_is_still_read_only(server, region, trail):
    unknown = failure(
        server.client(region, key_id="AKIAUNKNOWNAUDIT0002").get_secret_value, SecretId="x"
    )
    assert trail.of(request_id(unknown))["readOnly"] is True


# -- IAM and STS (AWS Query protocol) -------------------------------------------------------


def test_iam_and_sts_calls_are_recorded(server, region, trail, iam):
    name = unique("recorded")
    created = iam.create_user(UserName=name)
    missing = failure(iam.get_user, UserName=unique("nobody"))
    sts = make_client(server, "sts", region)
    me = sts.get_caller_identity()
    assert len(trail.records()) == 3

    record = trail.of(request_id(created))
    assert_common(record, source=IAM, name="CreateUser", rid=request_id(created))
    assert record["awsRegion"] == "us-east-1"  # IAM is global, whatever the client's region
    assert record["userIdentity"] == ROOT_IDENTITY
    assert record["readOnly"] is False
    assert record["requestParameters"] == {"userName": name}
    assert record["responseElements"]["user"]["arn"] == created["User"]["Arn"]

    record = trail.of(request_id(missing))
    assert_common(record, source=IAM, name="GetUser", rid=request_id(missing))
    assert record["awsRegion"] == "us-east-1"
    assert record["readOnly"] is True
    assert record["errorCode"] == "NoSuchEntity" == missing.response["Error"]["Code"]
    assert record["errorMessage"] == missing.response["Error"]["Message"]

    record = trail.of(request_id(me))
    assert_common(record, source=STS, name="GetCallerIdentity", rid=request_id(me))
    assert record["awsRegion"] == region
    assert record["userIdentity"] == ROOT_IDENTITY
    assert record["readOnly"] is True
    assert record["responseElements"] is None


def test_create_access_key_is_recorded_without_the_secret_key(server, trail, iam):
    name = unique("keyholder")
    iam.create_user(UserName=name)
    trail.mark()
    made = iam.create_access_key(UserName=name)
    key = made["AccessKey"]
    record = trail.of(request_id(made))
    assert_common(record, source=IAM, name="CreateAccessKey", rid=request_id(made))
    assert record["responseElements"]["accessKey"]["accessKeyId"] == key["AccessKeyId"]
    assert "secretAccessKey" not in record["responseElements"]["accessKey"]
    assert key["SecretAccessKey"] not in json.dumps(record)
    # Its date as IAM's records write dates ("Jul 30, 2024 9:53:13 PM"), not epoch seconds.
    created = key["CreateDate"].astimezone(UTC)
    assert record["responseElements"]["accessKey"]["createDate"] == java_date(created)


# -- canaries: no secret material in the trail ----------------------------------------------


def signed_raw(server: Server, region: str, action: str, body: bytes) -> httpx.Response:
    """A signed JSON request with any body, even one that does not parse."""
    headers = {
        "X-Amz-Target": f"secretsmanager.{action}",
        "Content-Type": "application/x-amz-json-1.1",
    }
    request = AWSRequest("POST", server.url + "/", data=body, headers=headers)
    SigV4Auth(Credentials(ROOT_KEY_ID, ROOT_SECRET), "secretsmanager", region).add_auth(request)
    return httpx.post(server.url + "/", content=body, headers=dict(request.headers.items()))


def table_bytes(server: Server) -> bytes:
    """Every column of every row of audit_events, as text."""
    engine = server.installation.store.engine
    with engine.connect() as conn:
        rows = conn.execute(sa.select(schema.audit_events)).all()
    return "\n".join("\t".join(str(value) for value in row) for row in rows).encode()


def database_files(server: Server) -> set[Path]:
    url = server.installation.settings.resolved_database_url
    if not url.startswith("sqlite"):
        return set()
    database = Path(sa.engine.make_url(url).database or "")
    return {Path(f"{database}{suffix}") for suffix in ("", "-wal", "-shm", "-journal")}


def unpacked(data: bytes) -> bytes:
    """Gzip content (sealed log files and digests) as is and unpacked."""
    return data + b"\n" + gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def files_besides_the_database(server: Server) -> dict[str, bytes]:
    skipped = {path.resolve() for path in database_files(server)}
    return {
        str(path): unpacked(path.read_bytes())
        for path in sorted(server.data_dir.rglob("*"))
        if path.is_file() and path.resolve() not in skipped
    }


def sealed_files_bytes(server: Server) -> bytes:
    """Every sealed log file and digest in audit_files, unpacked."""
    with server.installation.store.engine.connect() as conn:
        rows = conn.execute(sa.select(schema.audit_files.c.content)).all()
    return b"\n".join(unpacked(bytes(content)) for (content,) in rows)


def found(canaries: dict[str, bytes], data: bytes) -> list[str]:
    return [
        f"{name} as {form}"
        for name, canary in canaries.items()
        for form, needle in forms(canary).items()
        if needle in data
    ]


def test_no_secret_material_reaches_the_trail(server, client, region, trail, people):
    tag = uuid.uuid4().hex[:12].upper()
    text = f"TRAILCANARY{tag}TEXT"
    binary = b"\x00\xff\x10" + f"TRAILBIN{tag}".encode() + b"\xfe\x01"
    marker = f"TRAILMARKER{tag}"  # not secret: it must be found, or the search is blind
    canaries: dict[str, bytes] = {
        "string value": text.encode(),
        "binary value": binary,
        "binary value core": f"TRAILBIN{tag}".encode(),
    }
    names = [unique("canary/string"), unique("canary/binary")]
    answers: list[Any] = [
        client.create_secret(Name=names[0], SecretString=f"{text}-create", Description=marker),
        client.create_secret(Name=names[1], SecretBinary=binary),
        client.put_secret_value(SecretId=names[0], SecretString=f"{text}-put"),
        client.put_secret_value(SecretId=names[1], SecretBinary=binary + b"-put"),
        client.update_secret(SecretId=names[0], SecretString=f"{text}-update"),
        client.update_secret(SecretId=names[1], SecretBinary=b"update" + binary),
        client.get_secret_value(SecretId=names[0]),
        client.get_secret_value(SecretId=names[1]),
        client.batch_get_secret_value(SecretIdList=names),
        failure(client.put_secret_value, SecretId=unique("canary/missing"), SecretString=text),
        failure(client.create_secret, Name="bad name!", SecretString=f"{text}-badname"),
        failure(client.update_secret, SecretId=unique("canary/missing"), SecretBinary=binary),
    ]
    assert answers[6]["SecretString"] == f"{text}-update"
    assert answers[7]["SecretBinary"] == b"update" + binary
    assert len(answers[8]["SecretValues"]) == 2
    password = client.get_random_password(PasswordLength=64)
    canaries["random password"] = password["RandomPassword"].encode()
    answers.append(password)
    user, key = people.user(ASSUMER)  # CreateAccessKey's response holds the secret key
    canaries["IAM secret access key"] = key["SecretAccessKey"].encode()
    role = people.role(user["Arn"])
    assumed = make_client(server, "sts", region, key).assume_role(
        RoleArn=role["Arn"], RoleSessionName="canary"
    )
    canaries["session secret key"] = assumed["Credentials"]["SecretAccessKey"].encode()
    canaries["session token"] = assumed["Credentials"]["SessionToken"].encode()
    answers.append(assumed)
    # A body that does not parse (the value is in it, truncated) and a value of a wrong type.
    truncated = signed_raw(server, region, "PutSecretValue", f'{{"SecretString": "{text}'.encode())
    wrong_type = signed_raw(
        server,
        region,
        "PutSecretValue",
        json.dumps({"SecretId": names[0], "SecretString": [text]}).encode(),
    )
    assert truncated.status_code == wrong_type.status_code == 400
    both = signed_call(
        server.url,
        region,
        "PutSecretValue",
        {
            "SecretId": names[1],
            "SecretString": text,
            "SecretBinary": base64.b64encode(binary).decode(),
            "ClientRequestToken": str(uuid.uuid4()),
        },
    )
    assert both.status == 400

    for answer in answers:  # the calls were recorded: the search below reads their records
        trail.of(request_id(answer))
    for raw in (truncated, wrong_type):
        trail.of(raw.headers["x-amzn-requestid"])
    trail.of(both.headers["x-amzn-requestid"])
    table = table_bytes(server)
    assert marker.encode() in table
    assert found(canaries, table) == []
    # Seal now (the server would within audit_seal_seconds): the records then also sit in
    # signed log files, in audit_files and copied into the data dir.
    while server.app.services["audit_sealer"].seal() is not None:
        pass
    sealed = sealed_files_bytes(server)
    assert marker.encode() in sealed
    assert found(canaries, sealed) == []
    files = files_besides_the_database(server)
    assert any(name.endswith("master.key") for name in files)  # the search sees the data dir
    assert any(marker.encode() in data for data in files.values())  # and the copied logs
    assert {name: hits for name, data in files.items() if (hits := found(canaries, data))} == {}


def test_the_canary_search_would_find_a_leak():
    canaries = {"c": b"TRAILCANARYSELFTEST"}
    assert "c as raw" in found(canaries, b'{"x":"TRAILCANARYSELFTEST"}')
    assert found(canaries, base64.b64encode(b"ab" + canaries["c"] + b"cd"))
    assert found(canaries, b"...TRAILCANARY") == []


# -- fail closed ----------------------------------------------------------------------------


def is_sqlite(server: Server) -> bool:
    return server.installation.settings.resolved_database_url.startswith("sqlite")


def run_sql(server: Server, *statements: str) -> None:
    with server.installation.store.engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)


def refuse_records(server: Server) -> None:
    """From now on every insert into audit_events fails (a trigger that raises)."""
    if is_sqlite(server):
        run_sql(
            server,
            "CREATE TRIGGER audit_refuse BEFORE INSERT ON audit_events "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END;",
        )
        return
    run_sql(
        server,
        "CREATE FUNCTION audit_refuse() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'refused'; END $$",
        "CREATE TRIGGER audit_refuse BEFORE INSERT ON audit_events "
        "FOR EACH ROW EXECUTE FUNCTION audit_refuse()",
    )


def accept_records(server: Server) -> None:
    if is_sqlite(server):
        run_sql(server, "DROP TRIGGER IF EXISTS audit_refuse")
        return
    run_sql(
        server,
        "DROP TRIGGER IF EXISTS audit_refuse ON audit_events",
        "DROP FUNCTION IF EXISTS audit_refuse()",
    )


class Refusal:
    """Turns the refusal of records on and off: in the database (``refuse_records``) and,
    on embedded SQLite, in the process's journal, whose file is swapped for /dev/full
    (every write then fails with ENOSPC, as on a full disk)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.on = False
        self._journal: tuple[int, int] | None = None  # (its descriptor, a copy of the file)

    def refuse(self) -> None:
        refuse_records(self.server)
        audit = self.server.app.audit
        fd = getattr(audit.committer, "file_descriptor", None) if audit else None
        if fd is not None:
            saved, full = os.dup(fd), os.open("/dev/full", os.O_WRONLY)
            os.dup2(full, fd)
            os.close(full)
            self._journal = fd, saved
        self.on = True

    def accept(self) -> None:
        accept_records(self.server)
        if self._journal is not None:
            fd, saved = self._journal
            os.dup2(saved, fd)
            os.close(saved)
            self._journal = None
        self.on = False


@pytest.fixture
def refusal(server: Server) -> Iterator[Refusal]:
    """The trigger goes at teardown even when the test fails: the server is shared by the
    whole session."""
    switch = Refusal(server)
    try:
        yield switch
    finally:
        if switch.on:
            switch.accept()


def internal_error(answer: ClientError) -> None:
    assert answer.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert answer.response["Error"]["Code"] in {"InternalServiceError", "ServiceFailure"}


def test_a_call_whose_record_cannot_be_written_fails_and_changes_nothing(
    server, client, region, trail, refusal
):
    iam = make_client(server, "iam", region)
    client.create_secret(Name="kept/db", SecretString="the-only-value")
    new_user = unique("never")
    trail.mark()
    refusal.refuse()

    put = failure(client.put_secret_value, SecretId="kept/db", SecretString="never-stored")
    internal_error(put)
    assert put.response["Error"]["Code"] == "InternalServiceError"
    created = failure(client.create_secret, Name="kept/new", SecretString="never-stored")
    assert created.response["Error"]["Code"] == "InternalServiceError"
    get = signed_call(server.url, region, "GetSecretValue", {"SecretId": "kept/db"})
    assert get.status == 500
    assert get.body["__type"] == "InternalServiceError"
    assert "the-only-value" not in json.dumps(get.body)
    assert get.headers["x-amzn-requestid"] in get.body["Message"]
    missing = failure(client.get_secret_value, SecretId="kept/nothing")
    assert missing.response["Error"]["Code"] == "InternalServiceError"  # not the 400 it was
    internal_error(missing)
    unknown = failure(server.client(region, key_id="AKIAUNKNOWNAUDIT0003").list_secrets)
    internal_error(unknown)
    user = failure(iam.create_user, UserName=new_user)
    internal_error(user)
    assert user.response["Error"]["Code"] == "ServiceFailure"
    for answer in (put, created, missing, unknown, user):
        assert "refused" not in json.dumps(answer.response["Error"])  # no internals
    assert trail.records() == []

    refusal.accept()  # nothing the refused calls did is there
    assert "LastAccessedDate" not in client.describe_secret(SecretId="kept/db")  # not even that
    versions = client.list_secret_version_ids(SecretId="kept/db")["Versions"]
    assert len(versions) == 1
    assert client.get_secret_value(SecretId="kept/db")["SecretString"] == "the-only-value"
    gone = failure(client.describe_secret, SecretId="kept/new")
    assert gone.response["Error"]["Code"] == "ResourceNotFoundException"
    nobody = failure(iam.get_user, UserName=new_user)
    assert nobody.response["Error"]["Code"] == "NoSuchEntity"
    assert [r["eventName"] for r in trail.records()] == [
        "DescribeSecret",
        "ListSecretVersionIds",
        "GetSecretValue",
        "DescribeSecret",
        "GetUser",
    ]


# -- writes commit with their record; everything else is group-committed ---------------------


def test_a_write_and_its_record_are_committed_together(server, client, trail):
    created = client.create_secret(Name="together/db", SecretString="v1")
    record = trail.of(request_id(created))
    assert record["responseElements"]["arn"] == created["ARN"]
    assert client.describe_secret(SecretId="together/db")["ARN"] == created["ARN"]


@pytest.fixture
def conflicts_first(server: Server) -> Iterator[Callable[[int], int]]:
    """PostgreSQL only: ``fail(n)`` makes the next n inserts into audit_events fail with a
    serialization failure (SQLSTATE 40001), as a lost race would; returns how many inserts
    were tried so far. The sequence is outside every transaction: a rollback keeps its count."""
    if is_sqlite(server):
        pytest.skip("SQLite serialises writers: its transactions never conflict")
    run_sql(
        server,
        "CREATE SEQUENCE audit_tries",
        "CREATE TABLE audit_failures (n integer NOT NULL)",
        "INSERT INTO audit_failures VALUES (0)",
        "CREATE FUNCTION audit_conflict() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF nextval('audit_tries') <= (SELECT n FROM audit_failures) THEN "
        "RAISE EXCEPTION 'lost a race' USING ERRCODE = '40001'; END IF; RETURN NEW; END $$",
        "CREATE TRIGGER audit_conflict BEFORE INSERT ON audit_events "
        "FOR EACH ROW EXECUTE FUNCTION audit_conflict()",
    )

    def fail(n: int) -> int:
        engine = server.installation.store.engine
        with engine.begin() as conn:
            tried = conn.execute(sa.text("SELECT last_value, is_called FROM audit_tries")).one()
            done = tried.last_value if tried.is_called else 0
            conn.execute(sa.text("UPDATE audit_failures SET n = :n"), {"n": done + n})
        return int(done)

    try:
        yield fail
    finally:
        run_sql(
            server,
            "DROP TRIGGER IF EXISTS audit_conflict ON audit_events",
            "DROP FUNCTION IF EXISTS audit_conflict()",
            "DROP TABLE IF EXISTS audit_failures",
            "DROP SEQUENCE IF EXISTS audit_tries",
        )


def secret_numbers_used(server: Server) -> int:
    """How many numbers the secrets' primary key sequence has handed out (PostgreSQL)."""
    query = "SELECT pg_sequence_last_value(pg_get_serial_sequence('secrets', 'pk')::regclass)"
    with server.installation.store.engine.connect() as conn:
        return int(conn.execute(sa.text(query)).scalar_one() or 0)  # NULL: none handed out


def test_a_retried_call_leaves_one_record_postgres(server, client, trail, conflicts_first):
    before, numbers = conflicts_first(2), secret_numbers_used(server)
    created = client.create_secret(Name="retried/db", SecretString="v1")
    # Its record was inserted three times (two lost races), and the whole write with it:
    # each rolled-back attempt used up a number of the secrets' sequence.
    assert conflicts_first(0) == before + 3
    assert secret_numbers_used(server) == numbers + 3
    record = trail.of(request_id(created))
    assert record["responseElements"]["versionId"] == created["VersionId"]
    assert len(client.list_secret_version_ids(SecretId="retried/db")["Versions"]) == 1

    before = conflicts_first(2)  # a read: its batch is tried again by the committer
    got = client.get_secret_value(SecretId="retried/db")
    assert conflicts_first(0) == before + 3
    trail.of(request_id(got))
    assert len(trail.records()) == 3  # CreateSecret, ListSecretVersionIds, GetSecretValue


def test_concurrent_reads_share_commits_and_each_has_one_record(server, client, region, trail):
    client.create_secret(Name="busy/db", SecretString="v1")
    client.get_secret_value(SecretId="busy/db")  # the once-a-day LastAccessedDate write
    threads, each = 32, 20
    clients = [server.client(region) for _ in range(threads)]
    committer = server.app.audit.committer
    trail.mark()
    batches = committer.batches
    ids: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def read(sm: Any) -> None:
        start.wait()
        try:
            mine = [request_id(sm.get_secret_value(SecretId="busy/db")) for _ in range(each)]
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
            return
        with lock:
            ids.extend(mine)

    workers = [threading.Thread(target=read, args=(sm,)) for sm in clients]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    calls = threads * each
    shared = committer.batches - batches
    assert 0 < shared < calls, (shared, calls)
    records = trail.records()
    assert len(records) == calls
    assert sorted(r["requestID"] for r in records) == sorted(ids)
    assert len(set(ids)) == calls
    assert {r["eventName"] for r in records} == {"GetSecretValue"}


# -- --audit false ---------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def unaudited(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    """A server of its own with the audit setting off."""
    with contextlib.ExitStack() as stack:
        settings: dict[str, Any] = {"audit": False}
        if request.param == "postgres":
            settings["database_url"] = stack.enter_context(fresh_postgres_database())
        srv = start_server(tmp_path / "data", **settings)
        yield srv
        srv.stop()


def test_with_the_audit_off_nothing_is_recorded(unaudited):
    server, region = unaudited, "eu-west-3"
    assert server.installation.settings.audit is False
    assert server.app.audit is None
    sm = server.client(region)
    sm.create_secret(Name="quiet/db", SecretString="v1")
    assert sm.get_secret_value(SecretId="quiet/db")["SecretString"] == "v1"
    failure(sm.get_secret_value, SecretId="quiet/nothing")
    failure(server.client(region, key_id="AKIAUNKNOWNAUDIT0004").list_secrets)
    make_client(server, "iam", region).create_user(UserName="quiet")
    make_client(server, "sts", region).get_caller_identity()
    with server.installation.store.engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(schema.audit_events))
        assert count.scalar_one() == 0
