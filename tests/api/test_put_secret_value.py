"""PutSecretValue: new versions, how labels move (spec §3.2), idempotency (§4), version
retention (§2.5) and the errors of §15.4."""

from __future__ import annotations

import base64
import uuid

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from tests.api.helpers import error_of, token
from tests.api.rawhttp import signed_call

CURRENT, PREVIOUS, PENDING = "AWSCURRENT", "AWSPREVIOUS", "AWSPENDING"
DAY = 86_400


def labels(client, secret_id: str) -> dict[str, list[str]]:
    return client.describe_secret(SecretId=secret_id).get("VersionIdsToStages", {})


def all_versions(client, secret_id: str) -> list[dict]:
    versions: list[dict] = []
    kwargs: dict = {}
    while True:
        page = client.list_secret_version_ids(SecretId=secret_id, IncludeDeprecated=True, **kwargs)
        versions += page["Versions"]
        if "NextToken" not in page:
            return versions
        kwargs = {"NextToken": page["NextToken"]}


def put(client, secret_id: str, value: str, stages: list[str] | None = None, **kwargs) -> dict:
    if stages is not None:
        kwargs["VersionStages"] = stages
    kwargs.setdefault("ClientRequestToken", token())
    return client.put_secret_value(SecretId=secret_id, SecretString=value, **kwargs)


@pytest.fixture
def v1(client) -> str:
    return client.create_secret(Name="app", SecretString="one", ClientRequestToken=token())[
        "VersionId"
    ]


# --- labels (§3.2) ---------------------------------------------------------------------------


def test_it_answers_with_the_new_version_and_its_labels(client, v1):  # rule 6
    arn = client.describe_secret(SecretId="app")["ARN"]
    request_token = token()
    response = put(client, "app", "two", ClientRequestToken=request_token)
    response.pop("ResponseMetadata")
    assert response == {
        "ARN": arn,
        "Name": "app",
        "VersionId": request_token,
        "VersionStages": [CURRENT],
    }


def test_without_stages_the_new_value_becomes_current(client, v1):  # rule 1, rule 3
    v2 = put(client, "app", "two")["VersionId"]
    assert labels(client, "app") == {v1: [PREVIOUS], v2: [CURRENT]}
    assert client.get_secret_value(SecretId="app")["SecretString"] == "two"
    assert client.get_secret_value(SecretId="app", VersionStage=PREVIOUS)["SecretString"] == "one"


def test_requested_labels_move_and_the_old_holder_keeps_the_rest(client, v1):  # rule 2
    v2 = put(client, "app", "two", ["one", "two", "three"])["VersionId"]
    v3 = put(client, "app", "three", ["one", "two", "four"])["VersionId"]
    assert labels(client, "app") == {
        v1: [CURRENT],
        v2: ["three"],
        v3: ["four", "one", "two"],
    }


def test_a_version_whose_labels_all_moved_away_is_deprecated(client, v1):  # rule 2
    v2 = put(client, "app", "two", ["one", "two", "three"])["VersionId"]
    v3 = put(client, "app", "three", ["one", "two", "three", "four"])["VersionId"]
    assert labels(client, "app") == {v1: [CURRENT], v3: ["four", "one", "three", "two"]}
    listed = client.list_secret_version_ids(SecretId="app")["Versions"]
    assert {v["VersionId"] for v in listed} == {v1, v3}
    deprecated = [v for v in all_versions(client, "app") if v["VersionId"] == v2]
    assert len(deprecated) == 1
    assert "VersionStages" not in deprecated[0]


def test_the_old_previous_version_is_deprecated_when_current_moves(client, v1):  # rule 3
    v2 = put(client, "app", "two")["VersionId"]
    v3 = put(client, "app", "three")["VersionId"]
    assert labels(client, "app") == {v2: [PREVIOUS], v3: [CURRENT]}
    assert v1 in {v["VersionId"] for v in all_versions(client, "app")}


def test_the_old_previous_version_keeps_its_other_labels(client, v1):  # rule 3
    v2 = put(client, "app", "two")["VersionId"]
    client.update_secret_version_stage(SecretId="app", VersionStage="keep", MoveToVersionId=v1)
    v3 = put(client, "app", "three")["VersionId"]
    assert labels(client, "app") == {v1: ["keep"], v2: [PREVIOUS], v3: [CURRENT]}


def test_the_old_current_version_loses_pending_and_becomes_exactly_previous(client, v1):  # rule 3
    # current_pending snapshot: [AWSCURRENT, AWSPENDING] then a plain put -> [AWSPREVIOUS].
    client.update_secret_version_stage(SecretId="app", VersionStage=PENDING, MoveToVersionId=v1)
    assert labels(client, "app") == {v1: [CURRENT, PENDING]}
    v2 = put(client, "app", "two")["VersionId"]
    assert labels(client, "app") == {v1: [PREVIOUS], v2: [CURRENT]}


def test_the_old_current_version_loses_its_custom_labels(client, v1):  # rule 3
    # UNCONFIRMED against AWS; the spec's recommendation, consistent with every observation.
    client.update_secret_version_stage(SecretId="app", VersionStage="mine", MoveToVersionId=v1)
    v2 = put(client, "app", "two")["VersionId"]
    assert labels(client, "app") == {v1: [PREVIOUS], v2: [CURRENT]}


def test_labels_without_current_leave_current_and_previous_alone(client, v1):  # rule 4
    v2 = put(client, "app", "two")["VersionId"]
    v3 = put(client, "app", "three", ["SAMPLESTAGE1", "SAMPLESTAGE0"])
    assert v3["VersionStages"] == ["SAMPLESTAGE0", "SAMPLESTAGE1"]
    v4 = put(client, "app", "four", [PENDING])
    assert v4["VersionStages"] == [PENDING]
    assert labels(client, "app") == {
        v1: [PREVIOUS],
        v2: [CURRENT],
        v3["VersionId"]: ["SAMPLESTAGE0", "SAMPLESTAGE1"],
        v4["VersionId"]: [PENDING],
    }
    assert client.get_secret_value(SecretId="app")["SecretString"] == "two"


def test_the_first_value_of_an_empty_secret_becomes_current(client):  # rule 5
    client.create_secret(Name="empty", ClientRequestToken=token())
    assert "VersionIdsToStages" not in client.describe_secret(SecretId="empty")
    response = put(client, "empty", "first")
    assert response["VersionStages"] == [CURRENT]
    assert labels(client, "empty") == {response["VersionId"]: [CURRENT]}


def test_the_first_value_gets_current_even_when_other_labels_are_asked_for(client):  # rule 5
    client.create_secret(Name="empty", ClientRequestToken=token())
    response = put(client, "empty", "first", [PENDING])
    assert response["VersionStages"] == [CURRENT, PENDING]
    assert client.get_secret_value(SecretId="empty")["SecretString"] == "first"


def test_putting_pending_moves_it_off_the_current_version(client, v1):  # rule 7
    client.update_secret_version_stage(SecretId="app", VersionStage=PENDING, MoveToVersionId=v1)
    v2 = put(client, "app", "two", [PENDING, "extra"])["VersionId"]
    assert labels(client, "app") == {v1: [CURRENT], v2: [PENDING, "extra"]}
    v3 = put(client, "app", "three", [PENDING])["VersionId"]
    assert labels(client, "app") == {v1: [CURRENT], v2: ["extra"], v3: [PENDING]}


def test_it_allows_twenty_labels_and_refuses_the_twenty_first(client, v1):  # §2.5
    first = put(client, "app", "two", [f"L{i}" for i in range(19)])["VersionId"]
    assert len(labels(client, "app")[first]) == 19
    before = all_versions(client, "app")
    with pytest.raises(ClientError) as info:
        put(client, "app", "three", ["L0", "L20"])
    assert error_of(info)[0] == "LimitExceededException"
    assert all_versions(client, "app") == before  # no version was stored


def test_a_put_that_moves_current_frees_the_labels_it_strips(client, v1):
    # v1's 19 custom labels go when AWSCURRENT leaves it, so the total stays under 20.
    for i in range(19):
        client.update_secret_version_stage(SecretId="app", VersionStage=f"L{i}", MoveToVersionId=v1)
    v2 = put(client, "app", "two", [CURRENT, "new"])["VersionId"]
    assert labels(client, "app") == {v1: [PREVIOUS], v2: [CURRENT, "new"]}


# --- idempotency (§4) --------------------------------------------------------------------------


def test_the_same_token_and_value_store_nothing_new(client, v1):
    request_token = token()
    first = put(client, "app", "two", ClientRequestToken=request_token)
    before = all_versions(client, "app")
    again = put(client, "app", "two", ClientRequestToken=request_token)
    for response in (first, again):
        response.pop("ResponseMetadata")
    assert again == first
    assert all_versions(client, "app") == before


def test_a_retry_answers_with_the_labels_the_version_has_now(client, v1):
    request_token = token()
    put(client, "app", "two", ClientRequestToken=request_token)
    v3 = put(client, "app", "three")["VersionId"]
    retry = put(client, "app", "two", ClientRequestToken=request_token)
    assert retry["VersionStages"] == [PREVIOUS]
    # ... and moves nothing: AWSCURRENT stays on the newer version.
    assert labels(client, "app") == {request_token: [PREVIOUS], v3: [CURRENT]}


def test_a_retry_for_a_deprecated_version_answers_without_labels(client, v1):
    request_token = token()
    put(client, "app", "two", ClientRequestToken=request_token)
    put(client, "app", "three")
    put(client, "app", "four")  # request_token's version is deprecated now
    retry = put(client, "app", "two", ClientRequestToken=request_token)
    assert retry["VersionId"] == request_token
    assert "VersionStages" not in retry
    assert client.get_secret_value(SecretId="app")["SecretString"] == "four"


def test_reusing_the_create_token_with_the_same_value_is_a_no_op(client, v1):
    response = put(client, "app", "one", ClientRequestToken=v1)
    assert (response["VersionId"], response["VersionStages"]) == (v1, [CURRENT])
    assert len(all_versions(client, "app")) == 1


def test_the_same_token_with_another_value_is_refused(client, v1):
    arn = client.describe_secret(SecretId="app")["ARN"]
    with pytest.raises(ClientError) as info:
        put(client, "app", "changed", ClientRequestToken=v1)
    assert error_of(info) == (
        "ResourceExistsException",
        (
            f"You can't use ClientRequestToken {v1} because that value is already in use for a "
            f"version of secret {arn}."
        ),
    )
    assert client.get_secret_value(SecretId="app")["SecretString"] == "one"


def test_a_binary_value_with_the_same_bytes_as_the_string_counts_as_different(client, v1):
    with pytest.raises(ClientError) as info:
        client.put_secret_value(SecretId="app", SecretBinary=b"one", ClientRequestToken=v1)
    assert error_of(info)[0] == "ResourceExistsException"


def test_the_same_token_with_the_same_bytes_is_a_no_op(client, v1):
    request_token = token()
    for _ in range(2):
        response = client.put_secret_value(
            SecretId="app", SecretBinary=b"\x00\xff", ClientRequestToken=request_token
        )
        assert response["VersionStages"] == [CURRENT]
    assert len(all_versions(client, "app")) == 2


def test_the_same_token_may_be_used_on_another_secret(client, v1):
    client.create_secret(Name="other", SecretString="x", ClientRequestToken=token())
    response = put(client, "other", "y", ClientRequestToken=v1)
    assert response["VersionId"] == v1
    assert client.get_secret_value(SecretId="other")["SecretString"] == "y"


# --- values ----------------------------------------------------------------------------------


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(value=st.binary(min_size=1, max_size=2048))
@example(value=b"\x00")
@example(value=b"\xff")
@example(value=b"\x00\x01\x02\xff")
@example(value=bytes(range(256)))
def test_a_binary_value_round_trips_byte_for_byte(client, value):
    name = f"bin-{uuid.uuid4().hex}"
    client.create_secret(Name=name, ClientRequestToken=token())
    put_response = client.put_secret_value(
        SecretId=name, SecretBinary=value, ClientRequestToken=token()
    )
    got = client.get_secret_value(SecretId=name)
    assert got["SecretBinary"] == value
    assert "SecretString" not in got
    assert got["VersionId"] == put_response["VersionId"]


def test_a_binary_value_travels_as_base64_on_the_wire(server, region, client):
    client.create_secret(Name="bin", ClientRequestToken=token())
    client.put_secret_value(SecretId="bin", SecretBinary=b"footest", ClientRequestToken=token())
    raw = signed_call(server.url, region, "GetSecretValue", {"SecretId": "bin"})
    assert raw.status == 200
    assert raw.body["SecretBinary"] == "Zm9vdGVzdA=="
    assert "SecretString" not in raw.body


def test_a_secret_may_alternate_between_string_and_binary(client, v1):
    client.put_secret_value(SecretId="app", SecretBinary=b"\x01\x02", ClientRequestToken=token())
    got = client.get_secret_value(SecretId="app")
    assert (got.get("SecretString"), got["SecretBinary"]) == (None, b"\x01\x02")
    previous = client.get_secret_value(SecretId="app", VersionStage=PREVIOUS)
    assert (previous["SecretString"], previous.get("SecretBinary")) == ("one", None)
    put(client, "app", "three")
    got = client.get_secret_value(SecretId="app")
    assert (got["SecretString"], got.get("SecretBinary")) == ("three", None)


def test_a_string_value_round_trips_unicode(client, v1):
    value = "pässwörd 🔑 \u0000 end"
    put(client, "app", value)
    assert client.get_secret_value(SecretId="app")["SecretString"] == value


# --- errors (§15.4) ----------------------------------------------------------------------------


def test_it_refuses_a_raw_request_without_a_token(server, region, client, v1):
    raw = signed_call(
        server.url, region, "PutSecretValue", {"SecretId": "app", "SecretString": "two"}
    )
    assert raw.status == 400
    assert raw.body == {
        "__type": "InvalidRequestException",
        "Message": "You must provide a ClientRequestToken value. We recommend a UUID-type value.",
    }
    assert len(all_versions(client, "app")) == 1


def test_it_checks_the_token_before_looking_the_secret_up(server, region):
    raw = signed_call(
        server.url, region, "PutSecretValue", {"SecretId": "missing", "SecretString": "x"}
    )
    assert raw.body["__type"] == "InvalidRequestException"
    assert raw.body["Message"].startswith("You must provide a ClientRequestToken value.")


def test_it_refuses_a_put_with_neither_value(server, region, client, v1):
    # Text UNCONFIRMED (spec §16.2); boto3 sends such a request, but it is checked raw too.
    raw = signed_call(
        server.url, region, "PutSecretValue", {"SecretId": "app", "ClientRequestToken": token()}
    )
    assert raw.status == 400
    assert raw.body == {
        "__type": "InvalidRequestException",
        "Message": "You must provide either SecretString or SecretBinary.",
    }
    with pytest.raises(ClientError) as info:
        client.put_secret_value(SecretId="app", ClientRequestToken=token())
    assert error_of(info) == (
        "InvalidRequestException",
        "You must provide either SecretString or SecretBinary.",
    )
    assert len(all_versions(client, "app")) == 1


def test_it_refuses_both_a_string_and_a_binary_value(client, v1):
    with pytest.raises(ClientError) as info:
        client.put_secret_value(
            SecretId="app", SecretString="s", SecretBinary=b"b", ClientRequestToken=token()
        )
    assert error_of(info) == (
        "InvalidParameterException",
        (
            "You can't specify both a binary secret value and a string secret value in the same "
            "secret."
        ),
    )


def test_it_refuses_a_token_longer_than_64_characters(client, v1):
    with pytest.raises(ClientError) as info:
        put(client, "app", "two", ClientRequestToken="x" * 65)
    assert error_of(info) == (
        "InvalidParameterException",
        "ClientRequestToken must be 32-64 characters long.",
    )


def test_it_returns_resource_not_found_for_an_unknown_secret(client):
    with pytest.raises(ClientError) as info:
        put(client, "missing", "x")
    assert error_of(info) == (
        "ResourceNotFoundException",
        "Secrets Manager can't find the specified secret.",
    )
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_it_refuses_a_secret_scheduled_for_deletion(client, v1):
    client.delete_secret(SecretId="app", RecoveryWindowInDays=7)
    with pytest.raises(ClientError) as info:
        put(client, "app", "two")
    assert error_of(info) == (
        "InvalidRequestException",
        "You can't perform this operation on the secret because it was marked for deletion.",
    )
    client.restore_secret(SecretId="app")
    assert len(all_versions(client, "app")) == 1


def test_it_refuses_an_invalid_secret_id(client):
    with pytest.raises(ClientError) as info:
        put(client, "not valid", "x")
    assert error_of(info) == (
        "ValidationException",
        (
            "Invalid name. Must be a valid name containing alphanumeric characters, or any of the "
            "following: -/_+=.@!"
        ),
    )


# --- version retention (§2.5) ----------------------------------------------------------------


def fill_to(client, count: int) -> list[str]:
    """Put values until "app" has ``count`` versions; returns all ids, oldest first."""
    ids = [v["VersionId"] for v in reversed(all_versions(client, "app"))]
    while len(ids) < count:
        ids.append(put(client, "app", f"value {len(ids)}")["VersionId"])
    return ids


def test_over_a_hundred_versions_the_oldest_deprecated_ones_over_a_day_old_go(client, clock, v1):
    ids = fill_to(client, 3)
    clock.advance(DAY + 1)  # v1..v3 are now more than 24 hours old, the rest will be young
    ids = fill_to(client, 100)
    newest = []
    for n in range(3):
        newest.append(put(client, "app", f"new {n}")["VersionId"])
        remaining = [v["VersionId"] for v in all_versions(client, "app")]
        # Each put past 100 removes the oldest deprecated version, and only that one.
        assert len(remaining) == 100
        assert set(remaining) == set(ids[n + 1 :]) | set(newest)
    assert labels(client, "app") == {newest[1]: [PREVIOUS], newest[2]: [CURRENT]}
    with pytest.raises(ClientError) as info:
        client.get_secret_value(SecretId="app", VersionId=ids[0])
    assert error_of(info)[0] == "ResourceNotFoundException"
    # Every deprecated version left is younger than a day: the next put cannot make room.
    before = all_versions(client, "app")
    with pytest.raises(ClientError) as info:
        put(client, "app", "one too many")
    assert error_of(info)[0] == "LimitExceededException"
    assert all_versions(client, "app") == before
    assert client.get_secret_value(SecretId="app")["VersionId"] == newest[2]
    # A day later the oldest of them may go, and the put succeeds.
    clock.advance(DAY)
    added = put(client, "app", "finally")["VersionId"]
    remaining = {v["VersionId"] for v in all_versions(client, "app")}
    assert added in remaining
    assert ids[3] not in remaining
    assert len(remaining) == 100


def test_labelled_old_versions_are_never_pruned(client, clock, v1):
    # v1 keeps a custom label, so although it is the oldest it must survive; the pruned one
    # is the oldest *deprecated* version.
    v2 = put(client, "app", "two")["VersionId"]
    client.update_secret_version_stage(SecretId="app", VersionStage="pinned", MoveToVersionId=v1)
    fill_to(client, 100)
    clock.advance(DAY + 1)
    put(client, "app", "101")
    remaining = {v["VersionId"] for v in all_versions(client, "app")}
    assert labels(client, "app")[v1] == ["pinned"]
    assert v1 in remaining
    assert v2 not in remaining  # the oldest version without labels
    assert len(remaining) == 100


def test_it_answers_the_payload_as_base64_when_binary(server, region, client):
    # The raw request path as an SDK sends it: SecretBinary is base64 text in the JSON body.
    body = {
        "SecretId": "raw",
        "SecretBinary": base64.b64encode(b"\x00\x01\x02\xff").decode(),
        "ClientRequestToken": token(),
    }
    client.create_secret(Name="raw", ClientRequestToken=token())
    raw = signed_call(server.url, region, "PutSecretValue", body)
    assert raw.status == 200
    assert raw.body["VersionStages"] == [CURRENT]
    assert client.get_secret_value(SecretId="raw")["SecretBinary"] == b"\x00\x01\x02\xff"
