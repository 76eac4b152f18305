"""GetSecretValue: selecting a version, resolving SecretId (spec §2.4), the errors of §15.2 /
§16.1 rows 6-8, and LastAccessedDate (§1.4, §14)."""

from __future__ import annotations

import math
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError
from tests.api.helpers import error_of, token
from tests.api.rawhttp import signed_call
from tests.conftest import ACCOUNT_ID

CURRENT, PREVIOUS, PENDING = "AWSCURRENT", "AWSPREVIOUS", "AWSPENDING"
DAY = 86_400
NOT_FOUND = ("ResourceNotFoundException", "Secrets Manager can't find the specified secret.")


def stage_missing(stage: str) -> tuple[str, str]:
    return (
        "ResourceNotFoundException",
        f"Secrets Manager can't find the specified secret value for staging label: {stage}",
    )


@pytest.fixture
def created(client) -> dict:
    return client.create_secret(Name="app", SecretString="one", ClientRequestToken=token())


def put(client, value: str, stages: list[str] | None = None) -> str:
    kwargs = {"VersionStages": stages} if stages is not None else {}
    return client.put_secret_value(
        SecretId="app", SecretString=value, ClientRequestToken=token(), **kwargs
    )["VersionId"]


# --- selecting a version -------------------------------------------------------------------


def test_it_returns_the_current_version_with_all_members(client, created):
    got = client.get_secret_value(SecretId="app")
    metadata = got.pop("ResponseMetadata")
    created_date = got.pop("CreatedDate")
    assert got == {
        "ARN": created["ARN"],
        "Name": "app",
        "VersionId": created["VersionId"],
        "SecretString": "one",
        "VersionStages": [CURRENT],
    }
    assert metadata["HTTPStatusCode"] == 200
    versions = client.list_secret_version_ids(SecretId="app")["Versions"]
    assert created_date == versions[0]["CreatedDate"]


def test_it_returns_the_versions_own_creation_date(client, clock, created):
    clock.advance(3600)
    v2 = put(client, "two")
    current = client.get_secret_value(SecretId="app")
    previous = client.get_secret_value(SecretId="app", VersionStage=PREVIOUS)
    assert current["VersionId"] == v2
    gap = (current["CreatedDate"] - previous["CreatedDate"]).total_seconds()
    assert 3600 <= gap < 3700


def test_it_reads_a_version_by_stage(client, created):
    v2 = put(client, "two", [PENDING, "blue"])
    for stage in (PENDING, "blue"):
        got = client.get_secret_value(SecretId="app", VersionStage=stage)
        assert (got["VersionId"], got["SecretString"]) == (v2, "two")
        assert got["VersionStages"] == [PENDING, "blue"]


def test_it_reads_a_version_by_id_and_by_id_with_its_stage(client, created):
    v1 = created["VersionId"]
    put(client, "two")
    by_id = client.get_secret_value(SecretId="app", VersionId=v1)
    assert (by_id["SecretString"], by_id["VersionStages"]) == ("one", [PREVIOUS])
    both = client.get_secret_value(SecretId="app", VersionId=v1, VersionStage=PREVIOUS)
    assert both["SecretString"] == "one"


def test_it_reads_a_deprecated_version_by_id(client, created):
    # UNCONFIRMED against AWS (spec §2.5: likely yes until it is purged).
    v1 = created["VersionId"]
    put(client, "two")
    put(client, "three")
    got = client.get_secret_value(SecretId="app", VersionId=v1)
    assert got["SecretString"] == "one"
    assert "VersionStages" not in got  # not an empty list: the model allows 1-20 labels


# --- errors of §16.1 rows 6-8 ----------------------------------------------------------------


@pytest.mark.parametrize("stage", [PREVIOUS, PENDING, "custom"])
def test_it_reports_a_stage_no_version_carries(client, created, stage):  # row 6
    with pytest.raises(ClientError) as info:
        client.get_secret_value(SecretId="app", VersionStage=stage)
    assert error_of(info) == stage_missing(stage)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_it_reports_current_missing_for_a_secret_without_a_value(client):  # row 6
    client.create_secret(Name="empty", ClientRequestToken=token())
    with pytest.raises(ClientError) as info:
        client.get_secret_value(SecretId="empty")
    assert error_of(info) == stage_missing(CURRENT)


def test_it_reports_a_stage_that_was_removed(client, created):  # row 6
    v2 = put(client, "two", ["blue"])
    client.update_secret_version_stage(SecretId="app", VersionStage="blue", RemoveFromVersionId=v2)
    with pytest.raises(ClientError) as info:
        client.get_secret_value(SecretId="app", VersionStage="blue")
    assert error_of(info) == stage_missing("blue")


def test_it_reports_an_unknown_version_id(client, created):  # row 7
    unknown = "0123456789abcdef0123456789abcdef"
    with pytest.raises(ClientError) as info:
        client.get_secret_value(SecretId="app", VersionId=unknown)
    assert error_of(info) == (
        "ResourceNotFoundException",
        f"Secrets Manager can't find the specified secret value for VersionId: {unknown}",
    )


def test_it_does_not_read_a_version_of_another_secret(client, created):  # row 7
    other = client.create_secret(Name="other", SecretString="x", ClientRequestToken=token())
    with pytest.raises(ClientError) as info:
        client.get_secret_value(SecretId="app", VersionId=other["VersionId"])
    assert error_of(info)[0] == "ResourceNotFoundException"


@pytest.mark.parametrize("stage", [PREVIOUS, PENDING, "nowhere"])
def test_it_refuses_a_stage_the_given_version_does_not_carry(client, created, stage):  # row 8
    put(client, "two", [PENDING])
    # the stage may be on another version, or on none at all: the same error either way
    with pytest.raises(ClientError) as info:
        client.get_secret_value(SecretId="app", VersionId=created["VersionId"], VersionStage=stage)
    assert error_of(info) == (
        "InvalidRequestException",
        "You provided a VersionStage that is not associated to the provided VersionId.",
    )


def test_it_refuses_a_secret_scheduled_for_deletion(client, created):
    client.delete_secret(SecretId="app", RecoveryWindowInDays=7)
    with pytest.raises(ClientError) as info:
        client.get_secret_value(SecretId="app")
    assert error_of(info) == (
        "InvalidRequestException",
        "You can't perform this operation on the secret because it was marked for deletion.",
    )
    client.restore_secret(SecretId="app")
    assert client.get_secret_value(SecretId="app")["SecretString"] == "one"


def test_a_secret_past_its_recovery_window_is_gone(client, clock, created):
    client.delete_secret(SecretId="app", RecoveryWindowInDays=7)
    clock.advance(7 * DAY + 1)
    with pytest.raises(ClientError) as info:
        client.get_secret_value(SecretId="app")
    assert error_of(info) == NOT_FOUND


def test_it_returns_resource_not_found_for_an_unknown_secret(client):
    with pytest.raises(ClientError) as info:
        client.get_secret_value(SecretId="missing")
    assert error_of(info) == NOT_FOUND
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize("secret_id", ["has space", "star*", "what?", "back\\slash", "br]acket"])
def test_it_refuses_an_invalid_name_before_looking_it_up(client, secret_id):
    with pytest.raises(ClientError) as info:
        client.get_secret_value(SecretId=secret_id)
    assert error_of(info) == (
        "ValidationException",
        (
            "Invalid name. Must be a valid name containing alphanumeric characters, or any of the "
            "following: -/_+=.@!"
        ),
    )
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_the_raw_error_body_has_type_and_message(server, region):
    raw = signed_call(server.url, region, "GetSecretValue", {"SecretId": "missing"})
    assert raw.status == 400
    assert raw.body == {"__type": NOT_FOUND[0], "Message": NOT_FOUND[1]}
    assert raw.headers["content-type"] == "application/x-amz-json-1.1"


# --- resolving SecretId (§2.4) ---------------------------------------------------------------


def partial_arn(region: str, name: str) -> str:
    return f"arn:aws:secretsmanager:{region}:{ACCOUNT_ID}:secret:{name}"


def test_it_finds_a_secret_by_full_arn(client, created):
    assert client.get_secret_value(SecretId=created["ARN"])["SecretString"] == "one"


def test_a_full_arn_with_another_suffix_does_not_match(client, created):
    suffix = created["ARN"][-6:]
    wrong = created["ARN"][:-6] + ("AAAAAA" if suffix != "AAAAAA" else "BBBBBB")
    with pytest.raises(ClientError) as info:
        client.get_secret_value(SecretId=wrong)
    assert error_of(info) == NOT_FOUND


@pytest.mark.parametrize(
    "name",
    ["s-c64bdc03", "Valid/_+=.@-Name", "Valid/_+=.@-Name-a1b2", "Valid/_+=.@-Name-a1b2c3-"],
)
def test_it_finds_a_secret_by_partial_arn(client, region, name):
    created = client.create_secret(Name=name, SecretString="v", ClientRequestToken=token())
    got = client.get_secret_value(SecretId=partial_arn(region, name))
    assert (got["ARN"], got["Name"]) == (created["ARN"], name)
    assert got["ARN"].startswith(partial_arn(region, name) + "-")
    assert client.get_secret_value(SecretId=created["ARN"])["Name"] == name


def test_a_partial_arn_ending_like_a_suffix_is_read_as_a_full_arn(client, region):
    # A name ending in "-" and six characters: its partial ARN cannot be told from a full one.
    name = "Invalid/_+=.@-Name-a1b2c3"
    created = client.create_secret(Name=name, SecretString="v", ClientRequestToken=token())
    with pytest.raises(ClientError) as info:
        client.get_secret_value(SecretId=partial_arn(region, name))
    assert error_of(info) == NOT_FOUND
    # ... while its name and its full ARN still work.
    assert client.get_secret_value(SecretId=name)["SecretString"] == "v"
    assert client.get_secret_value(SecretId=created["ARN"])["SecretString"] == "v"


def test_names_are_case_sensitive(client, created):
    with pytest.raises(ClientError) as info:
        client.get_secret_value(SecretId="APP")
    assert error_of(info) == NOT_FOUND


def test_it_does_not_see_a_secret_of_another_region_by_name(server, client, created):
    other = server.client(f"t{uuid.uuid4().hex[:7]}-west-1")
    with pytest.raises(ClientError) as info:
        other.get_secret_value(SecretId="app")
    assert error_of(info) == NOT_FOUND


def test_a_partial_arn_of_another_region_and_account_is_not_found(client, region):
    # The ARN names its own region and account: it does not resolve to the local "plain".
    client.create_secret(Name="plain", SecretString="v", ClientRequestToken=token())
    with pytest.raises(ClientError) as info:
        client.get_secret_value(SecretId="arn:aws:secretsmanager:nowhere:1:secret:plain")
    assert error_of(info) == NOT_FOUND


# --- LastAccessedDate (§1.4, §14) ------------------------------------------------------------


def move_to_noon_of_next_day(clock) -> float:
    """Move the server clock to 12:00 UTC tomorrow; returns that day's midnight."""
    now = clock()
    midnight = math.floor(now / DAY) * DAY + DAY
    clock.advance(midnight + DAY / 2 - now)
    return midnight


def accessed(client, name: str = "app") -> tuple[float | None, dict[str, float | None]]:
    """LastAccessedDate of the secret and of each listed version, as epoch seconds."""

    def seconds(entry: dict) -> float | None:
        date = entry.get("LastAccessedDate")
        return None if date is None else date.timestamp()

    described = client.describe_secret(SecretId=name)
    versions = client.list_secret_version_ids(SecretId=name)["Versions"]
    return seconds(described), {v["VersionId"]: seconds(v) for v in versions}


def test_last_accessed_date_is_absent_until_the_first_read(client, created):
    client.describe_secret(SecretId="app")
    client.list_secret_version_ids(SecretId="app")
    assert accessed(client) == (None, {created["VersionId"]: None})


def test_a_read_sets_midnight_utc_of_the_day_on_the_secret_and_the_version(client, clock, created):
    v1 = created["VersionId"]
    v2 = put(client, "two")
    midnight = move_to_noon_of_next_day(clock)
    client.get_secret_value(SecretId="app")
    assert accessed(client) == (midnight, {v1: None, v2: midnight})
    # Only GetSecretValue counts: the version read by stage gets its own date.
    client.get_secret_value(SecretId="app", VersionStage=PREVIOUS)
    assert accessed(client) == (midnight, {v1: midnight, v2: midnight})


def test_describing_does_not_count_as_an_access(client, clock, created):
    move_to_noon_of_next_day(clock)
    for _ in range(2):
        client.describe_secret(SecretId="app")
        client.list_secret_version_ids(SecretId="app")
        client.list_secrets()
    assert accessed(client) == (None, {created["VersionId"]: None})


def test_reads_on_the_same_day_give_the_same_date_and_the_next_day_moves_it(client, clock, created):
    v1 = created["VersionId"]
    midnight = move_to_noon_of_next_day(clock)
    client.get_secret_value(SecretId="app")
    clock.advance(DAY / 4)  # 18:00, still the same day
    client.get_secret_value(SecretId="app")
    assert accessed(client) == (midnight, {v1: midnight})
    clock.advance(DAY)
    client.get_secret_value(SecretId="app")
    assert accessed(client) == (midnight + DAY, {v1: midnight + DAY})


def test_a_failed_read_does_not_count_as_an_access(client, clock, created):
    move_to_noon_of_next_day(clock)
    with pytest.raises(ClientError):
        client.get_secret_value(SecretId="app", VersionStage=PENDING)
    assert accessed(client) == (None, {created["VersionId"]: None})


def test_last_accessed_date_is_a_whole_day_on_the_wire(server, region, client, clock, created):
    midnight = move_to_noon_of_next_day(clock)
    client.get_secret_value(SecretId="app")
    raw = signed_call(server.url, region, "DescribeSecret", {"SecretId": "app"})
    assert raw.body["LastAccessedDate"] == midnight
    assert midnight % DAY == 0


# --- many calls at once ----------------------------------------------------------------------


def test_concurrent_reads_each_get_their_own_secrets_value(client):
    """On PostgreSQL the lookups of concurrent calls share statements
    (storage/batched_reads.py): no call may get another's answer, whether it names its
    secret by name, full ARN or partial ARN, or asks for another label."""
    names = [f"many/{n}" for n in range(24)]
    arns = {n: client.create_secret(Name=n, SecretString=f"first-{n}")["ARN"] for n in names}
    for name in names[::2]:
        client.put_secret_value(
            SecretId=name, SecretString=f"second-{name}", ClientRequestToken=token()
        )

    def read(n: int) -> tuple[str, str, str]:
        name = names[n % len(names)]
        secret_id = (name, arns[name], arns[name][: -len("-AbC123")])[n % 3]
        previous = n % 4 == 0 and names.index(name) % 2 == 0
        kwargs = {"VersionStage": PREVIOUS} if previous else {}
        got = client.get_secret_value(SecretId=secret_id, **kwargs)
        expected = (
            f"second-{name}" if names.index(name) % 2 == 0 and not previous else f"first-{name}"
        )
        return got["SecretString"], expected, got["ARN"]

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(read, range(288)))
    assert [(value, arn) for value, _, arn in answers] == [
        (expected, arns[names[n % len(names)]]) for n, (_, expected, _) in enumerate(answers)
    ]
