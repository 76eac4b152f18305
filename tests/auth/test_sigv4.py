"""SigV4 verifier: AWS's signing test vectors, botocore-signed requests, and every refusal.

Expected error texts are written out in full here (not taken from the module's constants), so
a typo in a constant fails a test.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from strongroom.auth import sigv4
from strongroom.auth.sigv4 import Verified, verify
from strongroom.errors import (
    AuthError,
    ExpiredTokenException,
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    ServiceError,
    UnrecognizedClientException,
)

if TYPE_CHECKING:
    from collections.abc import Callable

SUITE = Path(__file__).parents[3] / "shared" / "testdata" / "sigv4-test-suite"
IN_CI = os.environ.get("CI", "").lower() == "true"

# Header-form vectors a non-S3 verifier must refuse. They were signed with "normalize": false,
# S3's rule: the path goes into the canonical request as sent ("/./", "//example//", ...).
# Every other service removes dot segments and empty segments first (the "-normalized" twin of
# each case is the same request and passes), so for these the signature cannot match.
S3_ONLY = {
    "get-relative-relative-unnormalized": "S3 rule: '/example1/example2/../..' left as sent",
    "get-relative-unnormalized": "S3 rule: '/example/..' left as sent",
    "get-slash-dot-slash-unnormalized": "S3 rule: '/./' left as sent",
    "get-slash-pointless-dot-unnormalized": "S3 rule: '/./example' left as sent",
    "get-slash-unnormalized": "S3 rule: '//' left as sent",
    "get-slashes-unnormalized": "S3 rule: '//example//' left as sent",
}


@dataclass(frozen=True, slots=True)
class Key:
    secret_access_key: str
    session_token: str | None = None
    expires_at: float | None = None

    @property
    def session_token_sha256(self) -> str | None:
        if self.session_token is None:
            return None
        return hashlib.sha256(self.session_token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Request:
    """One request as the ASGI layer hands it over, plus the time it was signed."""

    method: str
    raw_path: bytes
    query_string: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    signed_at: float

    def header(self, name: bytes) -> bytes:
        return next(value for n, value in self.headers if n == name)

    def with_header(self, name: bytes, value: bytes | None) -> Request:
        """Replace every ``name`` header by one ``value`` (None: remove it)."""
        kept = tuple(h for h in self.headers if h[0] != name)
        return replace(self, headers=kept if value is None else (*kept, (name, value)))

    def with_auth(self, old: str, new: str) -> Request:
        auth = self.header(b"authorization").decode()
        assert old in auth
        return self.with_header(b"authorization", auth.replace(old, new).encode())

    def verify(
        self,
        keys: dict[str, Key] | Callable[[str], Key | None],
        *,
        now: float | None = None,
        **options: Any,
    ) -> Verified[Key]:
        return verify(
            method=self.method,
            raw_path=self.raw_path,
            query_string=self.query_string,
            headers=self.headers,
            body=self.body,
            now=self.signed_at if now is None else now,
            lookup=keys.get if isinstance(keys, dict) else keys,
            **options,
        )


def flip(value: bytes, at: int = 0) -> bytes:
    """``value`` with its first letter or digit from ``at`` on changed."""
    i = next(i for i in range(at, len(value)) if chr(value[i]).isalnum())
    return value[:i] + (b"1" if value[i : i + 1] == b"0" else b"0") + value[i + 1 :]


# --- the AWS SigV4 test suite (aws-c-auth's copy) -------------------------------------------


@dataclass(frozen=True, slots=True)
class Vector:
    name: str
    request: Request
    keys: dict[str, Key]
    region: str
    context: dict[str, Any]


def load_vector(folder: Path) -> Vector:
    context = json.loads((folder / "context.json").read_text())
    head, _, body = (folder / "header-signed-request.txt").read_bytes().partition(b"\n\n")
    request_line, *lines = head.split(b"\n")
    method, _, rest = request_line.partition(b" ")
    target = rest.rpartition(b" ")[0]  # the path may hold spaces ("/example space/")
    path, _, query = target.partition(b"?")
    headers: list[tuple[bytes, bytes]] = []
    for line in lines:
        if line[:1] in {b" ", b"\t"}:  # obs-fold: a continuation joins the value with a space
            name, value = headers[-1]
            headers[-1] = (name, value + b" " + line.strip())
        else:
            name, _, value = line.partition(b":")
            headers.append((name.lower(), value))  # value left raw: the verifier trims
    creds = context["credentials"]
    signed_at = calendar.timegm(time.strptime(context["timestamp"], "%Y-%m-%dT%H:%M:%SZ"))
    request = Request(method.decode(), path, query, tuple(headers), body, signed_at)
    key = Key(creds["secret_access_key"], session_token=creds.get("token"))
    return Vector(folder.name, request, {creds["access_key_id"]: key}, context["region"], context)


def suite_cases() -> list[str]:
    if not SUITE.is_dir():
        return []
    return sorted(p.name for p in SUITE.iterdir() if (p / "header-signed-request.txt").is_file())


CASES = suite_cases()
PASSING = [name for name in CASES if name not in S3_ONLY]


def test_suite_is_present() -> None:
    if CASES:
        return
    message = f"SigV4 test suite not found at {SUITE}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.mark.parametrize("name", PASSING)
def test_vector_verifies(name: str) -> None:
    vector = load_vector(SUITE / name)
    verified = vector.request.verify(vector.keys)
    assert verified.region == vector.region == "us-east-1"
    assert verified.service == "service"
    assert verified.access_key_id == "AKIDEXAMPLE"
    assert verified.key is vector.keys["AKIDEXAMPLE"]


@pytest.mark.parametrize("name", sorted(S3_ONLY))
def test_s3_style_vector_is_refused(name: str) -> None:
    if name not in CASES:
        pytest.skip(f"SigV4 test suite not found at {SUITE}")  # test_suite_is_present fails in CI
    vector = load_vector(SUITE / name)
    assert vector.context["normalize"] is False
    twin = load_vector(SUITE / name.replace("-unnormalized", "-normalized"))
    assert twin.request.raw_path == vector.request.raw_path
    twin.request.verify(twin.keys)
    with pytest.raises(InvalidSignatureException):
        vector.request.verify(vector.keys)


def test_every_case_is_accounted_for() -> None:
    if not CASES:
        pytest.skip(f"SigV4 test suite not found at {SUITE}")
    assert set(S3_ONLY) <= set(CASES)
    assert len(CASES) == 38  # the suite's header-form cases; a new one should be looked at


@pytest.mark.parametrize("name", PASSING)
def test_vector_with_flipped_signature_fails(name: str) -> None:
    vector = load_vector(SUITE / name)
    auth = vector.request.header(b"authorization")
    tampered = vector.request.with_header(
        b"authorization", flip(auth, auth.index(b"Signature=") + len(b"Signature="))
    )
    with pytest.raises(InvalidSignatureException, match="does not match"):
        tampered.verify(vector.keys)


@pytest.mark.parametrize("name", PASSING)
def test_vector_with_flipped_body_fails(name: str) -> None:
    vector = load_vector(SUITE / name)
    body = vector.request.body
    tampered = replace(vector.request, body=flip(body) if body else b"x")
    with pytest.raises(InvalidSignatureException, match="does not match"):
        tampered.verify(vector.keys)


@pytest.mark.parametrize("name", PASSING)
def test_vector_with_flipped_signed_header_fails(name: str) -> None:
    vector = load_vector(SUITE / name)
    auth = vector.request.header(b"authorization").decode()
    signed_names = auth.partition("SignedHeaders=")[2].partition(",")[0].split(";")
    assert "host" in signed_names
    for header in signed_names:
        index = next(i for i, (n, _) in enumerate(vector.request.headers) if n == header.encode())
        raw_name, value = vector.request.headers[index]
        # x-amz-date: change the last digit of the seconds, so only the signature can object.
        new = value[:-2] + b"9Z" if header == "x-amz-date" else flip(value)
        headers = list(vector.request.headers)
        headers[index] = (raw_name, new)
        with pytest.raises(InvalidSignatureException, match="does not match"):
            replace(vector.request, headers=tuple(headers)).verify(vector.keys)


def test_unsigned_session_token_is_still_checked() -> None:
    # post-sts-header-after adds X-Amz-Security-Token after signing (some services want that).
    if "post-sts-header-after" not in CASES:
        pytest.skip(f"SigV4 test suite not found at {SUITE}")
    vector = load_vector(SUITE / "post-sts-header-after")
    token = vector.request.header(b"x-amz-security-token")
    vector.request.verify(vector.keys)
    tampered = vector.request.with_header(b"x-amz-security-token", flip(token))
    with pytest.raises(UnrecognizedClientException) as caught:
        tampered.verify(vector.keys)
    assert caught.value.message == "The security token included in the request is invalid"


# --- requests signed by botocore ---------------------------------------------------------------

AKID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
HOST = "secretsmanager.us-east-1.amazonaws.com"
KEYS = {AKID: Key(SECRET)}


def signed(
    body: bytes = b'{"SecretId": "prod/db"}',
    *,
    path: str = "/",
    query: str = "",
    credentials: Credentials | None = None,
    service: str = "secretsmanager",
    region: str = "us-east-1",
    headers: dict[str, str] | None = None,
) -> Request:
    """Sign a Secrets Manager call with botocore, then present it as the ASGI layer would."""
    url = f"https://{HOST}{path}" + (f"?{query}" if query else "")
    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "secretsmanager.GetSecretValue",
            "User-Agent": "Boto3/1.34.0 md/Botocore#1.34.0 os/linux",
            **(headers or {}),
        },
    )
    SigV4Auth(credentials or Credentials(AKID, SECRET), service, region).add_auth(request)
    wire = [(b"host", HOST.encode()), (b"content-length", str(len(body)).encode())]
    wire += [(k.lower().encode(), v.encode()) for k, v in request.headers.items()]
    stamp = request.context["timestamp"]
    signed_at = calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ"))
    return Request("POST", path.encode(), query.encode(), tuple(wire), body, signed_at)


def stamp_of(request: Request) -> str:
    return request.header(b"x-amz-date").decode()


def fmt(epoch: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(epoch))


def test_botocore_request_with_non_ascii_body_on_root_path() -> None:
    body = json.dumps({"SecretId": "ключ/秘密", "SecretString": "pässwörd ✓"}, ensure_ascii=False)
    request = signed(body.encode())
    assert request.raw_path == b"/"
    verified = request.verify(KEYS, expected_service="secretsmanager")
    assert verified == Verified(AKID, "us-east-1", "secretsmanager", KEYS[AKID])


def test_botocore_request_in_another_region_reports_that_region() -> None:
    verified = signed(region="t3f9a1c2-east-7").verify(KEYS)
    assert verified.region == "t3f9a1c2-east-7"


def test_botocore_request_with_session_token() -> None:
    key = Key("temporary-secret", session_token="FwoGZXIvYXdzEJr//////////token==", expires_at=None)
    credentials = Credentials("ASIAEXAMPLE", key.secret_access_key, key.session_token)
    request = signed(credentials=credentials)
    assert b"x-amz-security-token" in request.header(b"authorization")
    verified = request.verify({"ASIAEXAMPLE": key})
    assert verified.key is key
    later = replace(key, expires_at=request.signed_at + 3600)
    assert request.verify({"ASIAEXAMPLE": later}).key is later


def test_botocore_request_with_encoded_path_and_query() -> None:
    # On the wire the path is percent-encoded once; non-S3 signing encodes it again.
    request = signed(path="/a%20b/./c~d/%E2%9C%93//", query="b=2&a=%E2%9C%93&a=1&empty=")
    request.verify(KEYS)
    with pytest.raises(InvalidSignatureException):
        replace(request, raw_path=b"/a b/c~d/%E2%9C%93/").verify(KEYS)


def test_botocore_request_dated_by_date_header() -> None:
    request = signed(headers={"Date": "placeholder; botocore rewrites it"})
    assert b"x-amz-date" not in dict(request.headers)
    assert request.header(b"date").endswith(b"-0000")  # RFC 2822, as botocore writes it
    assert request.verify(KEYS).region == "us-east-1"
    gmt = request.header(b"date").replace(b"-0000", b"GMT")
    with pytest.raises(InvalidSignatureException, match="does not match"):
        request.with_header(b"date", gmt).verify(KEYS)  # same instant, but it was signed as sent


def test_repeated_headers_are_joined_in_order() -> None:
    request = signed(headers={"X-Amz-Meta": "a"})
    # botocore signed "x-amz-meta:a"; two ASGI headers "a" and "b" canonicalise to "a,b".
    with pytest.raises(InvalidSignatureException):
        replace(request, headers=(*request.headers, (b"x-amz-meta", b"b"))).verify(KEYS)


def test_declared_payload_hash_must_match_the_body() -> None:
    request = signed()
    with pytest.raises(InvalidSignatureException, match="does not match"):
        request.with_header(b"x-amz-content-sha256", b"UNSIGNED-PAYLOAD").verify(KEYS)


def test_signing_keys_are_cached_and_bounded() -> None:
    sigv4._signing_key.cache_clear()
    request = signed()
    request.verify(KEYS)
    request.verify(KEYS)
    info = sigv4._signing_key.cache_info()
    assert (info.hits, info.misses, info.maxsize) == (1, 1, 256)


# --- refusals, with AWS's codes, statuses and texts -----------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        MissingAuthenticationTokenException,
        IncompleteSignatureException,
        InvalidSignatureException,
        UnrecognizedClientException,
        ExpiredTokenException,
    ],
)
def test_auth_errors_are_400_with_their_aws_code(error: type[AuthError]) -> None:
    assert error.status == 400
    assert error.code == error.__name__


def refused(request: Request, error: type[ServiceError], **options: Any) -> str:
    with pytest.raises(error) as caught:
        request.verify(options.pop("keys", KEYS), **options)
    assert SECRET not in caught.value.message
    return caught.value.message


@pytest.mark.parametrize(
    "auth",
    [None, b"", b"Basic dXNlcjpwYXNz", b"AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg="],
)
def test_no_sigv4_header_is_missing_authentication_token(auth: bytes | None) -> None:
    request = signed().with_header(b"authorization", auth)
    message = refused(request, MissingAuthenticationTokenException)
    assert message == "Request is missing Authentication Token"


def test_presigned_query_alone_is_missing_authentication_token() -> None:
    query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=x&X-Amz-Signature=y"
    request = replace(signed(), query_string=query.encode()).with_header(b"authorization", None)
    refused(request, MissingAuthenticationTokenException)


def test_header_and_query_auth_together() -> None:
    request = replace(signed(), query_string=b"X-Amz-Algorithm=AWS4-HMAC-SHA256")
    assert refused(request, InvalidSignatureException) == (
        "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header."
    )


def test_unsupported_algorithm() -> None:
    request = signed().with_auth("AWS4-HMAC-SHA256 ", "AWS4-ECDSA-P256-SHA256 ")
    assert refused(request, IncompleteSignatureException) == (
        "Unsupported AWS 'algorithm': 'AWS4-ECDSA-P256-SHA256' (only AWS4-HMAC-SHA256 for now). "
    )


def test_piece_without_equal_sign() -> None:
    request = signed().with_auth(f"Credential={AKID}/", f"Credential={AKID} /")
    auth = request.header(b"authorization").decode()
    piece = auth.partition(" /")[2].partition(",")[0]
    assert refused(request, IncompleteSignatureException) == (
        f"'/{piece}' not a valid key=value pair (missing equal-sign) in Authorization header: "
        f"'{auth}'."
    )


def test_missing_pieces_are_all_named_and_the_header_echoed() -> None:
    auth = f"AWS4-HMAC-SHA256 Credential={AKID}/20150830/us-east-1/secretsmanager/aws4_request"
    request = signed().with_header(b"authorization", auth.encode())
    request = request.with_header(b"x-amz-date", None)
    assert refused(request, IncompleteSignatureException) == (
        "Authorization header requires 'Signature' parameter. "
        "Authorization header requires 'SignedHeaders' parameter. "
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
        f"Authorization={auth}"
    )
    bare = signed().with_header(b"authorization", b"AWS4-HMAC-SHA256")
    assert refused(bare, IncompleteSignatureException) == (
        "Authorization header requires 'Credential' parameter. "
        "Authorization header requires 'Signature' parameter. "
        "Authorization header requires 'SignedHeaders' parameter. "
        "Authorization=AWS4-HMAC-SHA256"
    )


def test_host_must_be_signed() -> None:
    request = signed().with_auth("SignedHeaders=content-type;host;", "SignedHeaders=content-type;")
    assert refused(request, InvalidSignatureException) == (
        "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
    )


def test_date_header_in_use_must_be_signed() -> None:
    request = signed().with_auth(";x-amz-date;", ";")
    assert refused(request, InvalidSignatureException) == (
        "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization."
    )


@pytest.mark.parametrize("value", ["2015-08-30T12:36:00Z", "20151330T123600Z", "yesterday"])
def test_malformed_date(value: str) -> None:
    request = signed().with_header(b"x-amz-date", value.encode())
    assert refused(request, IncompleteSignatureException) == (
        f"Date must be in ISO-8601 'basic format'. Got '{value}'. "
        "See http://en.wikipedia.org/wiki/ISO_8601"
    )


def test_signature_expired() -> None:
    request = signed()
    now = request.signed_at + 301
    assert refused(request, InvalidSignatureException, now=now) == (
        f"Signature expired: {stamp_of(request)} is now earlier than {fmt(now - 300)} "
        f"({fmt(now)} - 5 min.)"
    )
    request.verify(KEYS, now=request.signed_at + 300)


def test_signature_not_yet_current() -> None:
    request = signed()
    now = request.signed_at - 301
    assert refused(request, InvalidSignatureException, now=now) == (
        f"Signature not yet current: {stamp_of(request)} is still later than {fmt(now + 300)} "
        f"({fmt(now)} + 5 min.)"
    )
    request.verify(KEYS, now=request.signed_at - 300)


def test_credential_needs_five_elements() -> None:
    request = signed().with_auth("/us-east-1/secretsmanager/", "/us-east-1/")
    credential = f"{AKID}/{stamp_of(request)[:8]}/us-east-1/aws4_request"
    assert refused(request, IncompleteSignatureException) == (
        "Credential must have exactly 5 slash-delimited elements, "
        f"e.g. keyid/date/region/service/term, got '{credential}'"
    )


def test_scope_problems_are_reported_together() -> None:
    request = signed().with_auth("/us-east-1/secretsmanager/aws4_request", "/US_East/kms/aws5_req")
    assert refused(request, InvalidSignatureException, expected_service="secretsmanager") == (
        "Credential should be scoped to a valid region, not 'US_East'. "
        "Credential should be scoped to correct service: 'secretsmanager'. "
        "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_req'. "
    )


def test_wrong_service_when_one_is_expected() -> None:
    request = signed(service="kms")
    assert request.verify(KEYS).service == "kms"  # no expectation: any service is accepted
    message = refused(request, InvalidSignatureException, expected_service="secretsmanager")
    assert message == "Credential should be scoped to correct service: 'secretsmanager'. "


def test_scope_date_must_be_the_request_date() -> None:
    request = signed()
    next_day = request.signed_at + 86400
    moved = request.with_header(b"x-amz-date", fmt(next_day).encode())
    day = stamp_of(request)[:8]
    assert refused(moved, InvalidSignatureException, now=next_day) == (
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
        f"HTTP: '{day}' != '{fmt(next_day)[:8]}', from '{fmt(next_day)}'."
    )


def test_unknown_access_key() -> None:
    message = refused(signed(), UnrecognizedClientException, keys={})
    assert message == "The security token included in the request is invalid."


def test_wrong_secret() -> None:
    message = refused(signed(), InvalidSignatureException, keys={AKID: Key("not-the-secret")})
    assert message == (
        "The request signature we calculated does not match the signature you provided. "
        "Check your AWS Secret Access Key and signing method. "
        "Consult the service documentation for details."
    )


def test_temporary_key_without_its_session_token() -> None:
    message = refused(signed(), UnrecognizedClientException, keys={AKID: Key(SECRET, "token")})
    assert message == "The security token included in the request is invalid."


def test_wrong_session_token() -> None:
    request = signed(credentials=Credentials(AKID, SECRET, "token-a"))
    message = refused(request, UnrecognizedClientException, keys={AKID: Key(SECRET, "token-b")})
    assert message == "The security token included in the request is invalid"


def test_session_token_sent_with_a_long_term_key() -> None:
    request = signed(credentials=Credentials(AKID, SECRET, "token-a"))
    message = refused(request, UnrecognizedClientException)
    assert message == "The security token included in the request is invalid"


def test_expired_temporary_credentials() -> None:
    request = signed(credentials=Credentials(AKID, SECRET, "token"))
    key = Key(SECRET, "token", expires_at=request.signed_at - 1)
    message = refused(request, ExpiredTokenException, keys={AKID: key})
    assert message == "The security token included in the request is expired"


# --- dev mode (verify_signature=False) ---------------------------------------------------------


def test_dev_mode_accepts_any_signature_key_and_time() -> None:
    request = signed(region="eu-west-3").with_auth("Signature=", "Signature=00")

    def no_lookup(key_id: str) -> Key | None:
        raise AssertionError(key_id)

    verified = request.verify(no_lookup, now=0, verify_signature=False)
    assert verified == Verified(AKID, "eu-west-3", "secretsmanager", None)


def test_dev_mode_still_refuses_malformed_requests() -> None:
    def dev(request: Request, error: type[ServiceError]) -> None:
        refused(request, error, verify_signature=False, expected_service="secretsmanager")

    dev(signed().with_header(b"authorization", None), MissingAuthenticationTokenException)
    dev(signed().with_auth("Signature=", "Sig="), IncompleteSignatureException)
    dev(signed().with_auth("/us-east-1/", "/"), IncompleteSignatureException)
    dev(signed().with_header(b"x-amz-date", b"soon"), IncompleteSignatureException)
    dev(signed(service="kms"), InvalidSignatureException)
