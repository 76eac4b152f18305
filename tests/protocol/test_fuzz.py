"""Fuzzing the HTTP front end with signed raw requests built from botocore's service model.

Every operation in the model gets malformed JSON, truncated bodies, JSON of the wrong type
(at the top level and deep inside), nulls, unknown members, huge strings, unicode, oversized
bodies and random X-Amz-Target values. Whatever arrives, the server must:

* never answer 5xx;
* answer every error with a JSON body of ``__type`` and ``Message`` (AWS leaves ``Message``
  out only for an unparsable body and an unknown operation, see ``protocol.model.error_body``);
* put ``x-amzn-RequestId`` and the JSON 1.1 content type on every response;
* change nothing when a request fails (checked against a snapshot of a fixture secret).

Requests are signed with botocore's own SigV4 signer (the one every SDK uses) and sent with
httpx, so the body bytes are exactly what the strategy made.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import string
import uuid
from collections.abc import Callable
from typing import Any

import botocore.auth
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.model import Shape
from botocore.session import get_session
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import ROOT_KEY_ID, ROOT_SECRET

MODEL = get_session().get_service_model("secretsmanager")
OPERATIONS = sorted(MODEL.operation_names)
PREFIX = MODEL.metadata["targetPrefix"] + "."
MAX_BODY = 512 * 1024

# Errors AWS JSON front ends send with no Message (Athena, measured; protocol.model.error_body).
BARE_ERRORS = frozenset({"SerializationException", "UnknownOperationException"})

# The fixture secret every request aims at, so failures have something to corrupt.
TARGET = "fuzz/target"
OTHER = "fuzz/other"  # scheduled for deletion: only ListSecrets(IncludePlannedDeletion) shows it
V1 = "00000000-0000-4000-8000-000000000001"
V2 = "00000000-0000-4000-8000-000000000002"
V3 = "00000000-0000-4000-8000-000000000003"
V_NEW = "00000000-0000-4000-8000-0000000000ff"

# FUZZ_EXAMPLES=2000 pytest tests/protocol/test_fuzz.py fuzzes for longer (the default keeps
# the suite quick).
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "50"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def fresh_region() -> str:
    return f"fz{uuid.uuid4().hex[:8]}-west-1"


# -- sending --------------------------------------------------------------------------------


def sign(
    url: str,
    target: str | None,
    body: bytes,
    region: str,
    *,
    key_id: str = ROOT_KEY_ID,
    secret: str = ROOT_SECRET,
) -> dict[str, str]:
    headers = {"Content-Type": "application/x-amz-json-1.1"}
    if target is not None:
        headers["X-Amz-Target"] = target
    request = AWSRequest("POST", url + "/", data=body, headers=headers)
    SigV4Auth(Credentials(key_id, secret), "secretsmanager", region).add_auth(request)
    return dict(request.headers.items())


def send(http: httpx.Client, url: str, target: str | None, body: bytes, region: str) -> Any:
    response = http.post(url + "/", content=body, headers=sign(url, target, body, region))
    check_response(response)
    return response


def call(http: httpx.Client, url: str, operation: str, request: dict[str, Any], region: str):
    return send(http, url, PREFIX + operation, json.dumps(request).encode(), region)


def check_response(response: httpx.Response) -> None:
    """The invariants every response keeps, whatever the request was."""
    assert response.status_code < 500, response.text
    assert response.headers.get("x-amzn-RequestId"), response.headers
    assert response.headers.get("content-type") == "application/x-amz-json-1.1"
    body = response.json()  # always JSON, never an HTML or text error page
    assert isinstance(body, dict)
    if response.status_code == 200:
        assert "__type" not in body
        return
    assert 400 <= response.status_code < 500
    code = body.get("__type")
    assert isinstance(code, str)
    assert code
    if set(body) == {"__type"}:
        assert code in BARE_ERRORS, body
    else:
        assert set(body) == {"__type", "Message"}, body
        assert isinstance(body["Message"], str)


@pytest.fixture(scope="module")
def http():
    with httpx.Client(timeout=30) as client:
        yield client


# -- the fixture secret and its snapshot ---------------------------------------------------


def plant_fixture(http: httpx.Client, url: str, region: str) -> None:
    """TARGET with versions V1 (AWSPREVIOUS), V2 (AWSCURRENT), V3 ("custom"), and a tag;
    OTHER, a binary secret scheduled for deletion."""
    steps: list[tuple[str, dict[str, Any]]] = [
        (
            "CreateSecret",
            {
                "Name": TARGET,
                "SecretString": "first",
                "ClientRequestToken": V1,
                "Description": "fuzz target",
                "Tags": [{"Key": "team", "Value": "blue"}],
            },
        ),
        (
            "PutSecretValue",
            {"SecretId": TARGET, "SecretString": "second", "ClientRequestToken": V2},
        ),
        (
            "PutSecretValue",
            {
                "SecretId": TARGET,
                "SecretBinary": base64.b64encode(b"\x00third").decode(),
                "ClientRequestToken": V3,
                "VersionStages": ["custom"],
            },
        ),
        ("CreateSecret", {"Name": OTHER, "SecretBinary": "AAEC", "ClientRequestToken": V1}),
        ("DeleteSecret", {"SecretId": OTHER, "RecoveryWindowInDays": 7}),
    ]
    for operation, request in steps:
        response = call(http, url, operation, request, region)
        assert response.status_code == 200, response.text


def snapshot(http: httpx.Client, url: str, region: str) -> dict[str, Any]:
    listed = call(http, url, "ListSecrets", {"IncludePlannedDeletion": True}, region)
    described = call(http, url, "DescribeSecret", {"SecretId": TARGET}, region)
    versions = call(
        http, url, "ListSecretVersionIds", {"SecretId": TARGET, "IncludeDeprecated": True}, region
    )
    return {"list": listed.json(), "describe": described.json(), "versions": versions.json()}


@pytest.fixture(scope="module")
def fuzz_region(server, http) -> str:
    """One region for the invariant-only tests; requests there may succeed and change it."""
    region = fresh_region()
    plant_fixture(http, server.url, region)
    return region


# -- strategies -----------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_junk = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
unicode_text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=60
)
huge_text = st.sampled_from(["x", "é", "\U0001f510", "a/b"]).map(lambda c: c * 70_000)

# Non-null JSON values by JSON type, with nested junk inside the containers.
_BY_JSON_TYPE: dict[str, st.SearchStrategy[Any]] = {
    "string": st.text(max_size=30),
    "number": st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False),
    "boolean": st.booleans(),
    "array": st.lists(json_junk, min_size=0, max_size=4),
    "object": st.dictionaries(st.text(max_size=8), json_junk, max_size=4),
}
_EXPECTED_JSON_TYPE = {
    "string": "string",
    "blob": "string",
    "boolean": "boolean",
    "integer": "number",
    "long": "number",
    "double": "number",
    "float": "number",
    "timestamp": "number",
    "structure": "object",
    "map": "object",
    "list": "array",
}


def wrong_type(shape: Shape) -> st.SearchStrategy[Any]:
    """A non-null JSON value whose type is not the one the shape expects."""
    expected = _EXPECTED_JSON_TYPE[shape.type_name]
    return st.one_of([s for kind, s in _BY_JSON_TYPE.items() if kind != expected])


_STAGES = st.sampled_from(["AWSCURRENT", "AWSPREVIOUS", "AWSPENDING", "custom"])
_VERSIONS = st.sampled_from([V1, V2, V3, V_NEW])
_SECRETS = st.sampled_from([TARGET, TARGET, OTHER, "fuzz/missing", "arn:aws:secretsmanager:x"])
# Values that mean something to the fixture, so requests get past validation and into the
# rules of the operation; list elements are hinted by the list's name.
_STRING_HINTS = {
    "SecretId": _SECRETS,
    "SecretIdList": _SECRETS,
    "Name": st.sampled_from([TARGET, OTHER, "fuzz/new"]),
    "ClientRequestToken": st.sampled_from([V1, V2, V3, V_NEW, "short"]),
    "VersionId": _VERSIONS,
    "RemoveFromVersionId": _VERSIONS,
    "MoveToVersionId": _VERSIONS,
    "VersionStage": _STAGES,
    "VersionStages": _STAGES,
    "TagKeys": st.sampled_from(["team", "other"]),
    "Key": st.sampled_from(["team", "other", "name", "description", "all"]),
}


_NUMBERS = st.integers(min_value=-(2**40), max_value=2**40) | st.integers(0, 120)
_SCALARS: dict[str, st.SearchStrategy[Any]] = {
    "blob": st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode()),
    "boolean": st.booleans(),
    "integer": _NUMBERS,
    "long": _NUMBERS,
    "double": st.floats(allow_nan=False, allow_infinity=False, width=32),
    "float": st.floats(allow_nan=False, allow_infinity=False, width=32),
    "timestamp": st.floats(min_value=0, max_value=2e9),
}


def well_typed(  # noqa: PLR0911 - one return per kind of shape
    shape: Shape, name: str = "", depth: int = 0
) -> st.SearchStrategy[Any]:
    """A JSON value of the right type for the shape (not necessarily a valid one)."""
    kind = shape.type_name
    if kind == "string":
        plain = st.text(max_size=40) | unicode_text
        if shape.enum:
            return st.sampled_from(shape.enum) | plain
        hint = _STRING_HINTS.get(name)
        if hint is None:
            return plain
        return st.integers(0, 3).flatmap(lambda n: plain if n == 0 else hint)
    if kind in _SCALARS:
        return _SCALARS[kind]
    if depth > 3:
        return st.nothing()
    if kind == "list":
        return st.lists(well_typed(shape.member, name, depth + 1), max_size=3)
    if kind == "map":
        return st.dictionaries(st.text(max_size=8), well_typed(shape.value, name, depth + 1))
    members = {m: well_typed(s, m, depth + 1) for m, s in shape.members.items()}
    required = {m: members.pop(m) for m in shape.required_members if m in members}
    return st.fixed_dictionaries(required, optional=members)


def input_shape(operation: str) -> Shape:
    shape = MODEL.operation_model(operation).input_shape
    assert shape is not None
    return shape


@st.composite
def mutated(
    draw: st.DrawFn,
    value: Any,
    shape: Shape,
    mutation: Callable[[Shape], st.SearchStrategy[Any]],
) -> Any:
    """``value`` with one place, at any depth, replaced by a draw from ``mutation(shape)``."""
    if shape.type_name == "structure" and isinstance(value, dict) and value and draw(st.booleans()):
        member = draw(st.sampled_from(sorted(value)))
        inner = draw(mutated(value[member], shape.members[member], mutation))
        return {**value, member: inner}
    if shape.type_name == "list" and isinstance(value, list) and value and draw(st.booleans()):
        index = draw(st.integers(0, len(value) - 1))
        inner = draw(mutated(value[index], shape.member, mutation))
        return [*value[:index], inner, *value[index + 1 :]]
    return draw(mutation(shape))


@st.composite
def wrongly_typed_requests(draw: st.DrawFn) -> tuple[str, bytes]:
    """A request of the right overall shape with one member, somewhere, of the wrong type."""
    operation = draw(st.sampled_from(OPERATIONS))
    shape = input_shape(operation)
    base = draw(well_typed(shape))
    if not base:  # nothing to corrupt inside: corrupt a model member that is absent
        member = draw(st.sampled_from(sorted(shape.members)))
        base = {member: draw(well_typed(shape.members[member], member))}
    request = draw(mutated(base, shape, wrong_type))
    return operation, json.dumps(request).encode()


def _is_json_object(body: bytes) -> bool:
    if not body.strip():
        return True  # an empty body counts as {} (curl users send nothing)
    try:
        return isinstance(json.loads(body), dict)
    except ValueError:
        return False


@st.composite
def malformed_bodies(draw: st.DrawFn) -> tuple[str, bytes]:
    """Bodies that are not a JSON object: truncated, not JSON at all, bad UTF-8, scalars."""
    operation = draw(st.sampled_from(OPERATIONS))
    valid = json.dumps(draw(well_typed(input_shape(operation)))).encode()
    body = draw(
        st.one_of(
            st.integers(1, len(valid) - 1).map(lambda cut: valid[:cut]),  # truncated
            st.binary(min_size=1, max_size=200).filter(lambda b: not _is_json_object(b)),
            json_junk.filter(lambda v: not isinstance(v, dict)).map(
                lambda v: json.dumps(v).encode()
            ),
            st.sampled_from(
                [
                    b'{"SecretId": "\xff\xfe"}',  # invalid UTF-8 inside a string
                    b"\xef\xbb\xbf{}",  # a UTF-8 byte order mark
                    b'{"SecretId": "a",}',
                    b"{'SecretId': 'a'}",
                    b'{"MaxResults": NaN}',
                    b'{"MaxResults": Infinity}',
                    b"[" * 50_000,
                    b'{"a":' * 50_000,
                    b"null",
                ]
            ),
        )
    )
    return operation, body


@st.composite
def odd_requests(draw: st.DrawFn) -> tuple[str, bytes]:
    """Right types, odd contents: nulls, unknown members, huge strings, unicode."""
    operation = draw(st.sampled_from(OPERATIONS))
    shape = input_shape(operation)
    request = dict(draw(well_typed(shape)))
    for member in draw(st.lists(st.sampled_from(sorted(shape.members)), max_size=3)):
        request[member] = None
    request.update(draw(st.dictionaries(st.text(max_size=12), json_junk, max_size=3)))
    strings = [m for m, s in shape.members.items() if s.type_name == "string"]
    if strings:
        member = draw(st.sampled_from(strings))
        request[member] = draw(huge_text | unicode_text)
    return operation, json.dumps(request).encode()


random_targets = st.one_of(
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60),
    st.text(string.ascii_letters, max_size=30).map(lambda t: PREFIX + t),
    st.sampled_from(OPERATIONS).map(lambda op: PREFIX + op.lower()),
    st.sampled_from(OPERATIONS).map(lambda op: PREFIX.upper() + op),
    st.sampled_from(OPERATIONS).map(lambda op: "secretsmanager_" + op),
    st.sampled_from(OPERATIONS).map(lambda op: "AmazonSecretsManager." + op),
).filter(lambda t: t.strip() == t and t.removeprefix(PREFIX) not in OPERATIONS)


# -- invariants: never 5xx, always a well-formed answer ------------------------------------


@pytest.mark.slow
@FUZZ
@given(case=malformed_bodies())
def test_it_answers_malformed_bodies_with_a_client_error(server, http, fuzz_region, case):
    operation, body = case
    response = send(http, server.url, PREFIX + operation, body, fuzz_region)
    assert response.status_code == 400
    assert response.json()["__type"] == "SerializationException"


@pytest.mark.slow
@FUZZ
@given(case=wrongly_typed_requests())
def test_it_answers_members_of_the_wrong_type_with_a_serialization_error(
    server, http, fuzz_region, case
):
    operation, body = case
    response = send(http, server.url, PREFIX + operation, body, fuzz_region)
    assert response.status_code == 400
    assert response.json()["__type"] == "SerializationException", response.text


@pytest.mark.slow
@FUZZ
@given(case=odd_requests())
def test_it_survives_nulls_unknown_members_huge_strings_and_unicode(
    server, http, fuzz_region, case
):
    operation, body = case
    send(http, server.url, PREFIX + operation, body, fuzz_region)


@pytest.mark.slow
@FUZZ
@given(target=random_targets, body=st.sampled_from([b"{}", b'{"SecretId": "fuzz/target"}']))
def test_it_answers_unknown_targets_with_unknown_operation(server, http, fuzz_region, target, body):
    response = send(http, server.url, target, body, fuzz_region)
    assert response.status_code == 400
    assert response.json() == {"__type": "UnknownOperationException"}


_WRONG_VALUE = {"object": [], "array": {}, "string": 7, "number": "7", "boolean": "true"}


@pytest.mark.parametrize("operation", OPERATIONS)
def test_every_member_of_every_operation_refuses_a_value_of_the_wrong_json_type(
    server, http, fuzz_region, operation
):
    # The systematic sweep behind the random one: each member of the model, one at a time.
    shape = input_shape(operation)
    for member, member_shape in shape.members.items():
        wrong = _WRONG_VALUE[_EXPECTED_JSON_TYPE[member_shape.type_name]]
        response = call(http, server.url, operation, {member: wrong}, fuzz_region)
        assert response.status_code == 400, (member, response.text)
        assert response.json()["__type"] == "SerializationException", (member, response.text)
    for body in (b"[]", b'"x"', b"7", b"true", b"null", b'{"SecretId": "fuzz/tar'):
        response = send(http, server.url, PREFIX + operation, body, fuzz_region)
        assert response.json()["__type"] == "SerializationException", (body, response.text)


@pytest.mark.parametrize(
    ("operation", "body"),
    [
        ("ListSecrets", b'{"MaxResults": 1e400}'),
        ("ListSecrets", b'{"MaxResults": -1e400}'),
        ("GetRandomPassword", b'{"PasswordLength": 1e400}'),
        ("DeleteSecret", b'{"SecretId": "fuzz/target", "RecoveryWindowInDays": 1e400}'),
    ],
)
def test_it_refuses_numbers_that_overflow_to_infinity(server, http, fuzz_region, operation, body):
    # Valid JSON, but no number type holds it; Python would read it as inf.
    response = send(http, server.url, PREFIX + operation, body, fuzz_region)
    assert response.status_code == 400
    assert response.json()["__type"] == "SerializationException"


def test_it_answers_a_request_without_a_target_with_unknown_operation(server, http, fuzz_region):
    response = send(http, server.url, None, b"{}", fuzz_region)
    assert response.status_code == 400
    assert response.json()["__type"] == "UnknownOperationException"


# -- failed requests change nothing -----------------------------------------------------------

failing_cases = st.one_of(
    malformed_bodies().map(lambda case: (PREFIX + case[0], case[1])),
    wrongly_typed_requests().map(lambda case: (PREFIX + case[0], case[1])),
    random_targets.map(lambda target: (target, json.dumps({"SecretId": TARGET}).encode())),
    st.sampled_from(OPERATIONS).map(lambda op: (PREFIX + op, b" " * (MAX_BODY + 1))),
)
# Well-typed requests aimed at the fixture: most fail on validation or on a rule of the
# operation (a used token with another value, a label moved without RemoveFromVersionId...),
# some succeed; only the failures are held to "nothing changed".
aimed_cases = st.sampled_from(OPERATIONS).flatmap(
    lambda op: well_typed(input_shape(op)).map(
        lambda request: (PREFIX + op, json.dumps({"SecretId": TARGET, **request}).encode())
    )
)


@pytest.mark.slow
@settings(FUZZ, max_examples=max(EXAMPLES // 2, 1))
@given(batch=st.lists(failing_cases | aimed_cases, min_size=1, max_size=8))
def test_a_failed_request_changes_nothing(server, http, batch):
    url, region = server.url, fresh_region()
    plant_fixture(http, url, region)
    before = snapshot(http, url, region)
    for target, body in batch:
        response = send(http, url, target, body, region)
        after = snapshot(http, url, region)
        if response.status_code != 200:
            assert after == before, (target, body[:300], response.text)
        before = after


# -- oversized bodies ---------------------------------------------------------------------------


@pytest.mark.parametrize("operation", ["CreateSecret", "PutSecretValue", "ListSecrets"])
def test_it_refuses_a_body_over_512_kib_before_parsing_it(server, http, fuzz_region, operation):
    # Valid JSON that only fails on size: the refusal must come from the size alone.
    body = json.dumps({"SecretId": TARGET, "SecretString": "x" * MAX_BODY}).encode()
    response = send(http, server.url, PREFIX + operation, body, fuzz_region)
    assert response.status_code in (400, 413)
    assert response.json()["__type"] == "RequestEntityTooLargeException"


def test_it_refuses_an_oversized_body_sent_without_a_content_length(server, http, fuzz_region):
    body = b"[" * (MAX_BODY + 10)
    headers = sign(server.url, PREFIX + "ListSecrets", body, fuzz_region)

    def chunks():  # a generator makes httpx send Transfer-Encoding: chunked
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    response = http.post(server.url + "/", content=chunks(), headers=headers)
    check_response(response)
    assert response.status_code in (400, 413)
    assert response.json()["__type"] == "RequestEntityTooLargeException"


def test_it_parses_a_body_of_exactly_512_kib(server, http, fuzz_region):
    # The limit is inclusive: this body is refused for being junk, not for its size.
    body = b"[" * MAX_BODY
    response = send(http, server.url, PREFIX + "ListSecrets", body, fuzz_region)
    assert response.json()["__type"] == "SerializationException"


# -- authentication -----------------------------------------------------------------------------


def test_it_refuses_an_unsigned_request_with_missing_authentication_token(server, http):
    response = http.post(
        server.url + "/",
        content=b"{}",
        headers={
            "X-Amz-Target": PREFIX + "ListSecrets",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )
    check_response(response)
    assert response.status_code in (400, 403)
    assert response.json()["__type"] == "MissingAuthenticationTokenException"


def test_it_refuses_a_wrong_secret_key_with_invalid_signature(server, http, fuzz_region):
    body = b"{}"
    headers = sign(server.url, PREFIX + "ListSecrets", body, fuzz_region, secret="not-the-key")
    response = http.post(server.url + "/", content=body, headers=headers)
    check_response(response)
    assert response.json()["__type"] == "InvalidSignatureException"


def test_it_refuses_an_unknown_access_key_with_unrecognized_client(server, http, fuzz_region):
    body = b"{}"
    headers = sign(
        server.url, PREFIX + "ListSecrets", body, fuzz_region, key_id="AKIAUNKNOWNKEY000000"
    )
    response = http.post(server.url + "/", content=body, headers=headers)
    check_response(response)
    assert response.json()["__type"] == "UnrecognizedClientException"


def test_it_refuses_a_request_signed_ten_minutes_ago_as_expired(
    server, http, fuzz_region, monkeypatch
):
    real_now = botocore.auth.get_current_datetime
    monkeypatch.setattr(
        botocore.auth,
        "get_current_datetime",
        lambda: real_now() - dt.timedelta(minutes=10),
    )
    body = b"{}"
    headers = sign(server.url, PREFIX + "ListSecrets", body, fuzz_region)
    monkeypatch.undo()
    response = http.post(server.url + "/", content=body, headers=headers)
    check_response(response)
    error = response.json()
    assert error["__type"] == "InvalidSignatureException"
    assert error["Message"].startswith("Signature expired: ")
    assert headers["X-Amz-Date"] in error["Message"]


def test_it_refuses_a_body_changed_after_signing(server, http, fuzz_region):
    headers = sign(server.url, PREFIX + "DescribeSecret", b'{"SecretId": "a"}', fuzz_region)
    response = http.post(server.url + "/", content=b'{"SecretId": "b"}', headers=headers)
    check_response(response)
    assert response.json()["__type"] == "InvalidSignatureException"


# -- lone surrogates --------------------------------------------------------------------------

LONE = "\ud800"  # valid JSON ("\ud800"), but no UTF-8 encoding exists for it


@pytest.mark.parametrize(
    ("operation", "request_body"),
    [
        pytest.param(op, body, id=name)
        for name, op, body in [
            ("create-string", "CreateSecret", {"Name": "lone/1", "SecretString": LONE}),
            ("create-description", "CreateSecret", {"Name": "lone/2", "Description": LONE}),
            ("create-kms-key", "CreateSecret", {"Name": "lone/3", "KmsKeyId": LONE}),
            (
                "create-tag",
                "CreateSecret",
                {"Name": "lone/4", "Tags": [{"Key": "k", "Value": LONE}]},
            ),
            ("put-string", "PutSecretValue", {"SecretId": TARGET, "SecretString": LONE}),
            (
                "put-token",
                "PutSecretValue",
                {"SecretId": TARGET, "SecretString": "x", "ClientRequestToken": "7" * 31 + LONE},
            ),
            ("update-description", "UpdateSecret", {"SecretId": TARGET, "Description": LONE}),
            ("tag-key", "TagResource", {"SecretId": TARGET, "Tags": [{"Key": LONE, "Value": "v"}]}),
            ("get-by-arn", "GetSecretValue", {"SecretId": "arn:" + LONE}),
            ("get-stage", "GetSecretValue", {"SecretId": TARGET, "VersionStage": LONE}),
            ("get-version", "GetSecretValue", {"SecretId": TARGET, "VersionId": LONE * 32}),
            (
                "move-stage",
                "UpdateSecretVersionStage",
                {"SecretId": TARGET, "VersionStage": LONE, "MoveToVersionId": V1},
            ),
            ("batch-get", "BatchGetSecretValue", {"SecretIdList": ["arn:" + LONE]}),
        ]
    ],
)
def test_it_refuses_lone_surrogates_with_a_client_error(server, http, operation, request_body):
    url, region = server.url, fresh_region()
    plant_fixture(http, url, region)
    before = snapshot(http, url, region)
    if operation in ("CreateSecret", "PutSecretValue", "UpdateSecret"):
        request_body = {"ClientRequestToken": V_NEW, "SecretString": "x", **request_body}
    response = call(http, url, operation, request_body, region)  # asserts "not a 5xx"
    assert response.status_code == 400
    assert snapshot(http, url, region) == before
