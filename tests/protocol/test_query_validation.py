"""Query-protocol input checks: the model's constraints, AWS's texts, and form decoding."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.model import ServiceModel
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from strongroom.errors import MalformedQueryString, ValidationError
from strongroom.protocol.query import QueryService, decode_form

ONE = "1 validation error detected: "
NAME_PATTERN = r"[\w+=,.@-]+"
TAG_KEY_PATTERN = r"[\p{L}\p{Z}\p{N}_.:/=+\-@]+"
TAG_VALUE_PATTERN = r"[\p{L}\p{Z}\p{N}_.:/=+\-@]*"


def parse(service: str, action: str, form: dict[str, str]) -> dict[str, Any]:
    op = QueryService.load(service).operation(action)
    assert op is not None
    return op.parse_input(form)


def refusal(service: str, action: str, form: dict[str, str]) -> str:
    with pytest.raises(ValidationError) as caught:
        parse(service, action, form)
    assert caught.value.code == "ValidationError"
    assert caught.value.status == 400
    return caught.value.message


@pytest.mark.parametrize(
    ("action", "form", "message"),
    [
        (
            "CreateUser",
            {},
            "Value null at 'userName' failed to satisfy constraint: Member must not be null",
        ),
        (
            "CreateRole",
            {"RoleName": "charon-" + "x" * 60, "AssumeRolePolicyDocument": "{}"},
            (
                f"Value 'charon-{'x' * 60}' at 'roleName' failed to satisfy constraint: "
                "Member must have length less than or equal to 64"
            ),
        ),
        (
            "CreateUser",
            {"UserName": ""},
            (
                "Value '' at 'userName' failed to satisfy constraint: "
                "Member must have length greater than or equal to 1; "
                "Value '' at 'userName' failed to satisfy constraint: "
                f"Member must satisfy regular expression pattern: {NAME_PATTERN}"
            ),
        ),
        (
            "CreateUser",
            {"UserName": "alice smith"},
            (
                "Value 'alice smith' at 'userName' failed to satisfy constraint: "
                f"Member must satisfy regular expression pattern: {NAME_PATTERN}"
            ),
        ),
        (
            "UpdateAccessKey",
            {"UserName": "alice", "AccessKeyId": "AKIAIOSFODNN7EXAMPLE", "Status": "Enabled"},
            (
                "Value 'Enabled' at 'status' failed to satisfy constraint: "
                "Member must satisfy enum value set: [Active, Inactive, Expired]"
            ),
        ),
        (
            "ListUsers",
            {"MaxItems": "0"},
            (
                "Value '0' at 'maxItems' failed to satisfy constraint: "
                "Member must have value greater than or equal to 1"
            ),
        ),
        (
            "ListUsers",
            {"MaxItems": "1001"},
            (
                "Value '1001' at 'maxItems' failed to satisfy constraint: "
                "Member must have value less than or equal to 1000"
            ),
        ),
        (
            "CreateUser",
            {"UserName": "alice", "Tags.member.1.Key": "team"},
            (
                "Value null at 'tags.1.member.value' failed to satisfy constraint: "
                "Member must not be null"
            ),
        ),
        (
            "TagUser",
            {
                "UserName": "alice",
                "Tags.member.1.Key": "ok",
                "Tags.member.1.Value": "ok",
                "Tags.member.2.Key": "team",
                "Tags.member.2.Value": "<script>",
            },
            (
                "Value '<script>' at 'tags.2.member.value' failed to satisfy constraint: "
                f"Member must satisfy regular expression pattern: {TAG_VALUE_PATTERN}"
            ),
        ),
        (
            # a sensitive value is never echoed
            "CreateLoginProfile",
            {"UserName": "alice", "Password": "p" * 129},
            (
                "Value at 'password' failed to satisfy constraint: "
                "Member must have length less than or equal to 128"
            ),
        ),
        (
            # scalar list elements are reported once, on the list, with every constraint
            "UntagUser",
            {"UserName": "alice", "TagKeys.member.1": "ok", "TagKeys.member.2": "k" * 129},
            (
                f"Value '[ok, {'k' * 129}]' at 'tagKeys' failed to satisfy constraint: "
                "Member must satisfy constraint: [Member must have length less than or equal to "
                "128, Member must have length greater than or equal to 1, Member must satisfy "
                f"regular expression pattern: {TAG_KEY_PATTERN}]"
            ),
        ),
        (
            # UNCONFIRMED text for a value that is not of the member's type
            "ListUsers",
            {"MaxItems": "ten"},
            "Value 'ten' at 'maxItems' failed to satisfy constraint: Member must be an Integer",
        ),
        (
            "ListPolicies",
            {"OnlyAttached": "yes"},
            "Value 'yes' at 'onlyAttached' failed to satisfy constraint: Member must be a Boolean",
        ),
    ],
)
def test_it_refuses_what_the_model_forbids_with_awss_text(
    action: str, form: dict[str, str], message: str
) -> None:
    head = "2 validation errors detected: " if "; " in message else ONE
    assert refusal("iam", action, form) == head + message


def test_tag_lists_longer_than_fifty_are_refused() -> None:
    form = {"UserName": "alice"}
    for index in range(1, 52):
        form[f"Tags.member.{index}.Key"] = f"k{index}"
        form[f"Tags.member.{index}.Value"] = "v"
    assert refusal("iam", "TagUser", form) == (
        ONE + "Value at 'tags' failed to satisfy constraint: "
        "Member must have length less than or equal to 50"
    )


def test_several_violations_are_counted_and_joined() -> None:
    message = refusal("sts", "AssumeRole", {"RoleSessionName": "x", "DurationSeconds": "60"})
    assert message == (
        "3 validation errors detected: "
        "Value null at 'roleArn' failed to satisfy constraint: Member must not be null; "
        "Value 'x' at 'roleSessionName' failed to satisfy constraint: "
        "Member must have length greater than or equal to 2; "
        "Value '60' at 'durationSeconds' failed to satisfy constraint: "
        "Member must have value greater than or equal to 900"
    )


def test_no_more_than_ten_violations_are_listed() -> None:
    form = {"UserName": "alice"}
    for index in range(1, 13):
        form[f"Tags.member.{index}.Key"] = "bad key!"
        form[f"Tags.member.{index}.Value"] = "v"
    assert refusal("iam", "TagUser", form).startswith("10 validation errors detected: ")


def test_a_sensitive_value_is_not_echoed_by_its_pattern_failure_either() -> None:
    message = refusal("iam", "CreateLoginProfile", {"UserName": "a", "Password": "\u20ac"})
    assert message == (
        ONE + "Value at 'password' failed to satisfy constraint: Member must satisfy regular "
        "expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u00FF]+"
    )


def test_unicode_letters_pass_the_java_property_classes_of_tags() -> None:
    form = {"UserName": "alice", "Tags.member.1.Key": "Zoë 日本", "Tags.member.1.Value": ""}
    assert parse("iam", "TagUser", form)["Tags"] == [{"Key": "Zoë 日本", "Value": ""}]


def test_length_counts_utf16_units_as_aws_does() -> None:
    key = "\U0001f511"  # not a letter, so the pattern fails too; only the length text matters
    message = refusal("iam", "UntagUser", {"UserName": "a", "TagKeys.member.1": key * 65})
    assert "Member must have length less than or equal to 128" in message


def test_unknown_parameters_are_ignored() -> None:
    form = {"UserName": "alice", "Bogus": "1", "Tags.member.1.Colour": "red", "Path.x": "y"}
    assert parse("iam", "GetUser", form) == {"UserName": "alice"}


def test_an_empty_list_is_a_bare_key() -> None:
    assert parse("iam", "TagUser", {"UserName": "a", "Tags": ""}) == {"UserName": "a", "Tags": []}


def test_list_elements_follow_their_index_not_the_form_order() -> None:
    form = {
        "UserName": "a",
        "TagKeys.member.10": "ten",
        "TagKeys.member.2": "two",
        "TagKeys.member.1": "one",
        "TagKeys.member.x": "not an element",
    }
    assert parse("iam", "UntagUser", form)["TagKeys"] == ["one", "two", "ten"]


def test_types_are_converted() -> None:
    form = {"OnlyAttached": "TRUE", "MaxItems": "+7", "Scope": "AWS"}
    assert parse("iam", "ListPolicies", form) == {
        "OnlyAttached": True,
        "MaxItems": 7,
        "Scope": "AWS",
    }
    form = {"UserName": "a", "AccessKeyId": "AKIAIOSFODNN7EXAMPLE", "Status": "Active"}
    assert parse("iam", "UpdateAccessKey", form)["Status"] == "Active"


# IAM and STS have no timestamp, blob, double or flattened input; a small model of our own has.
TOY = {
    "metadata": {
        "apiVersion": "2020-01-01",
        "endpointPrefix": "toy",
        "protocol": "query",
        "serviceId": "Toy",
        "signatureVersion": "v4",
        "xmlNamespace": "https://toy.example/doc/2020-01-01/",
    },
    "operations": {
        "Echo": {
            "name": "Echo",
            "http": {"method": "POST", "requestUri": "/"},
            "input": {"shape": "EchoShape"},
            "output": {"shape": "EchoShape", "resultWrapper": "EchoResult"},
        },
        "Strict": {
            "name": "Strict",
            "http": {"method": "POST", "requestUri": "/"},
            "input": {"shape": "StrictShape"},
        },
    },
    "shapes": {
        "EchoShape": {
            "type": "structure",
            "members": {
                "When": {"shape": "Time"},
                "Data": {"shape": "Bytes"},
                "Ratio": {"shape": "Ratio"},
                "Big": {"shape": "Big"},
                "Labels": {"shape": "Labels"},
                "Flat": {"shape": "Flat", "locationName": "Item"},
                "Attributes": {"shape": "Attributes"},
                "Counts": {"shape": "Counts"},
                "Next": {"shape": "EchoShape"},
            },
        },
        "StrictShape": {
            "type": "structure",
            "required": ["When"],
            "members": {"When": {"shape": "Time"}},
        },
        "Time": {"type": "timestamp"},
        "Bytes": {"type": "blob"},
        "Ratio": {"type": "double", "min": 0, "max": 1},
        "Big": {"type": "long"},
        "Text": {"type": "string", "max": 5},
        "Labels": {"type": "list", "member": {"shape": "Text", "locationName": "Label"}},
        "Flat": {"type": "list", "member": {"shape": "Text"}, "flattened": True},
        "Attributes": {
            "type": "map",
            "key": {"shape": "Text", "locationName": "Name"},
            "value": {"shape": "Text", "locationName": "Value"},
        },
        "Counts": {
            "type": "map",
            "key": {"shape": "Text"},
            "value": {"shape": "Big"},
            "flattened": True,
        },
    },
}
TOY_MODEL = ServiceModel(TOY, service_name="toy")
TOY_SERVICE = QueryService(TOY_MODEL)
TOY_PARAMS = {
    "When": datetime(2026, 11, 28, 11, 27, 19, 500000, tzinfo=UTC),
    "Data": b"\x00\xffbinary",
    "Ratio": 0.25,
    "Big": 2**40,
    "Labels": ["a", "b"],
    "Flat": ["x", "y"],
    "Attributes": {"k1": "v1", "k2": ""},
    "Counts": {"c": 3},
    "Next": {"Labels": ["nest"], "Next": {"Big": -1}},
}


def test_a_model_with_every_shape_kind_round_trips_both_ways() -> None:
    operation = TOY_MODEL.operation_model("Echo")
    request = create_serializer("query").serialize_to_request(TOY_PARAMS, operation)
    form = {key: str(value) for key, value in request["body"].items()}
    assert form["Item.1"] == "x"  # flattened, under the member's locationName
    assert form["Labels.Label.2"] == "b"
    assert form["Attributes.entry.1.Name"] == "k1"
    op = TOY_SERVICE.operation("Echo")
    assert op is not None
    assert op.parse_input(form) == TOY_PARAMS
    body = op.serialize_output(TOY_PARAMS, "r")
    response = {"body": body, "status_code": 200, "headers": {}}
    parsed = create_parser("query").parse(response, operation.output_shape)
    parsed.pop("ResponseMetadata")
    assert parsed == TOY_PARAMS


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"When": "yesterday"}, "Value 'yesterday' at 'when' failed to satisfy constraint: "),
        ({"Data": "not base64!"}, "Value at 'data' failed to satisfy constraint: "),
        ({"Ratio": "1.5"}, "Value '1.5' at 'ratio' failed to satisfy constraint: "),
        ({"Big": str(2**63)}, f"Value '{2**63}' at 'big' failed to satisfy constraint: "),
        (
            {"Attributes.entry.1.Name": "toolong", "Attributes.entry.1.Value": "v"},
            (
                "Value '[toolong]' at 'attributes' failed to satisfy constraint: Map keys must "
                "satisfy constraint: [Member must have length less than or equal to 5]"
            ),
        ),
        (
            {"Next.Next.Labels.Label.1": "toolong"},
            (
                "Value '[toolong]' at 'next.next.labels' failed to satisfy constraint: "
                "Member must satisfy constraint: [Member must have length less than or equal to 5]"
            ),
        ),
    ],
)
def test_values_that_are_not_of_their_type_are_refused(form: dict[str, str], message: str) -> None:
    op = TOY_SERVICE.operation("Echo")
    assert op is not None
    with pytest.raises(ValidationError) as caught:
        op.parse_input(form)
    assert caught.value.message.startswith(ONE + message)


def test_a_malformed_required_value_is_not_also_reported_missing() -> None:
    op = TOY_SERVICE.operation("Strict")
    assert op is not None
    with pytest.raises(ValidationError) as caught:
        op.parse_input({"When": "soon"})
    assert caught.value.message == (
        ONE + "Value 'soon' at 'when' failed to satisfy constraint: Member must be a Timestamp"
    )
    with pytest.raises(ValidationError) as caught:
        op.parse_input({})
    assert caught.value.message == (
        ONE + "Value null at 'when' failed to satisfy constraint: Member must not be null"
    )


def test_the_error_status_defaults_to_400_without_error_shapes() -> None:
    assert TOY_SERVICE.error_status("Anything") == 400
    assert TOY_SERVICE.xmlns == "https://toy.example/doc/2020-01-01/"


def test_an_operation_without_input_takes_nothing() -> None:
    assert parse("sts", "GetCallerIdentity", {"Anything": "x"}) == {}


# --- decode_form ---------------------------------------------------------------------------


def test_the_form_is_percent_and_plus_decoded() -> None:
    body = b"Action=CreateUser&UserName=a%2Bb&Path=%2Fx+y%2F&Empty=&Euro=%E2%82%AC"
    assert decode_form(body, b"") == {
        "Action": "CreateUser",
        "UserName": "a+b",
        "Path": "/x y/",
        "Empty": "",
        "Euro": "\u20ac",
    }


def test_the_query_string_counts_too_and_a_repeated_key_keeps_its_first_value() -> None:
    form = decode_form(b"UserName=body&UserName=again", b"Action=GetUser&UserName=query")
    assert form == {"Action": "GetUser", "UserName": "query"}
    assert decode_form(b"", b"Action=GetUser") == {"Action": "GetUser"}
    assert decode_form(b"", b"") == {}


@pytest.mark.parametrize("body", [b"UserName=100%", b"UserName=%zz", b"UserName=%C3%28", b"\xff=1"])
def test_a_malformed_form_is_refused(body: bytes) -> None:
    with pytest.raises(MalformedQueryString) as caught:
        decode_form(body, b"")
    assert caught.value.status == 404
    assert caught.value.message == "The query string contains a syntax error."
