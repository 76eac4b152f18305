"""Server-side verification of AWS Signature Version 4, Authorization-header form.

Pure: the caller hands over the request pieces, the clock and a key lookup; nothing here does
I/O. Checks run in the order AWS JSON-protocol ("coral") services run them, and each failure
raises the error code and message text those services send (the constants below). Presigned
query-string auth is not supported: such a request is answered as one without credentials.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_tz
from functools import lru_cache
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar
from urllib.parse import quote_from_bytes, unquote_to_bytes

from strongroom.errors import (
    ExpiredTokenException,
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
MAX_SKEW_SECONDS = 300  # AWS's window, both ways; the messages below say "5 min."
SIGNING_KEY_CACHE_SIZE = 256

# Message texts as AWS JSON services send them, all with HTTP 400. Where they were found:
# replies quoted in SDK and tool issues (botocore #3587 for a Secrets Manager "Signature
# expired", aws-sdk-php-laravel #228 and spring-cloud-aws #492 for Secrets Manager's invalid
# token, aws-sdk-go #289 and #2194, aws-sdk-ruby #431/#508, amazonka #316, aws-sdk-php #2469,
# multicloudj #608), and the emulators dynalite (whose texts were recorded from DynamoDB) and
# scratchstack-aws-signature. "'X-Amz-Date' must be a 'SignedHeader'" is inferred from the
# pattern of the Host text; no capture of it was found.
MISSING_AUTH_TOKEN = "Request is missing Authentication Token"  # noqa: S105 (a message)
BOTH_AUTH_FORMS = (
    "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header."
)
UNSUPPORTED_ALGORITHM = "Unsupported AWS 'algorithm': '{}' (only AWS4-HMAC-SHA256 for now). "
NOT_KEY_VALUE = (
    "'{}' not a valid key=value pair (missing equal-sign) in Authorization header: '{}'."
)
REQUIRES_PARAMETER = "Authorization header requires '{}' parameter. "
REQUIRES_DATE = (
    "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
)
AUTHORIZATION_ECHO = "Authorization={}"
HOST_NOT_SIGNED = "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
HEADER_NOT_SIGNED = "'{}' must be a 'SignedHeader' in the AWS Authorization."
BAD_DATE = (
    "Date must be in ISO-8601 'basic format'. Got '{}'. See http://en.wikipedia.org/wiki/ISO_8601"
)
SIGNATURE_EXPIRED = "Signature expired: {} is now earlier than {} ({} - 5 min.)"
SIGNATURE_NOT_YET_CURRENT = "Signature not yet current: {} is still later than {} ({} + 5 min.)"
CREDENTIAL_PARTS = (
    "Credential must have exactly 5 slash-delimited elements, "
    "e.g. keyid/date/region/service/term, got '{}'"
)
SCOPE_REGION = "Credential should be scoped to a valid region, not '{}'. "
SCOPE_SERVICE = "Credential should be scoped to correct service: '{}'. "
SCOPE_TERMINATOR = "Credential should be scoped with a valid terminator: 'aws4_request', not '{}'. "
SCOPE_DATE = (
    "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
    "'{}' != '{}', from '{}'."
)
UNRECOGNIZED_CLIENT = "The security token included in the request is invalid."
# AWS drops the full stop when it is the X-Amz-Security-Token itself that fails.
INVALID_SESSION_TOKEN = "The security token included in the request is invalid"  # noqa: S105
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)
EXPIRED_TOKEN = "The security token included in the request is expired"  # noqa: S105

_CREDENTIAL_ELEMENTS = 5
_ISO_BASIC = re.compile(r"\d{8}T\d{6}Z")
# Any lower-case dash-separated name: one server answers for every region a client names,
# but the region ends up in ARNs, so refuse anything that could not be one.
_REGION = re.compile(r"[a-z0-9]{1,16}(?:-[a-z0-9]{1,16}){0,4}")


class SigningKey(Protocol):
    """What the key lookup returns (the caller's record of an access key)."""

    @property
    def secret_access_key(self) -> str: ...

    @property
    def session_token_sha256(self) -> str | None: ...  # hex; None for long-term keys

    @property
    def expires_at(self) -> float | None: ...  # epoch seconds; None = never


K = TypeVar("K", bound=SigningKey)


@dataclass(frozen=True, slots=True)
class Verified(Generic[K]):
    access_key_id: str
    region: str  # from the credential scope: the region the client addressed
    service: str
    key: K | None  # None only when verify_signature=False (dev mode)


def verify(
    *,
    method: str,
    raw_path: bytes,
    query_string: bytes,
    headers: Sequence[tuple[bytes, bytes]],
    body: bytes,
    now: float,
    lookup: Callable[[str], K | None],
    expected_service: str | None = None,
    verify_signature: bool = True,
) -> Verified[K]:
    """Check one request's SigV4 Authorization header; raise the AWS error if it fails.

    ``headers`` are ASGI-style: lower-case names, raw values, repeats allowed. With
    ``verify_signature=False`` (dev mode) only the header's form and credential scope are
    checked: no clock skew, key lookup, signature or session-token checks, and ``key`` is None.
    """
    hmap = _header_map(headers)
    raw_auth = hmap.get(b"authorization")
    auth = raw_auth.decode("latin-1").strip() if raw_auth is not None else ""
    if not auth.startswith("AWS4-"):
        raise MissingAuthenticationTokenException(MISSING_AUTH_TOKEN)
    if b"X-Amz-Algorithm" in query_string and _has_param(query_string, b"X-Amz-Algorithm"):
        raise InvalidSignatureException(BOTH_AUTH_FORMS)

    amz_date = hmap.get(b"x-amz-date", b"").strip()
    http_date = b"" if amz_date else hmap.get(b"date", b"").strip()
    credential, signed_headers, signature = _parse_authorization(
        auth, has_date=bool(amz_date or http_date)
    )
    _require_signed(signed_headers, "X-Amz-Date" if amz_date else "Date")
    stamp, request_time = _request_time(amz_date, http_date)
    if verify_signature:
        _check_skew(stamp, request_time, int(now))

    scope = credential.rstrip("/").split("/")
    if len(scope) != _CREDENTIAL_ELEMENTS:
        raise IncompleteSignatureException(CREDENTIAL_PARTS.format(credential))
    key_id, scope_date, region, service, _ = scope
    _check_scope(scope, stamp, expected_service)
    if not verify_signature:
        return Verified(key_id, region, service, None)

    key = lookup(key_id)
    if key is None:
        raise UnrecognizedClientException(UNRECOGNIZED_CLIENT)
    payload_hash = hashlib.sha256(body).hexdigest().encode()
    declared_hash = hmap.get(b"x-amz-content-sha256")
    if declared_hash is not None and declared_hash.strip() != payload_hash:
        raise InvalidSignatureException(SIGNATURE_MISMATCH)
    canonical = _canonical_request(
        method, raw_path, query_string, hmap, signed_headers=signed_headers, payload=payload_hash
    )
    string_to_sign = "\n".join(
        (ALGORITHM, stamp, "/".join(scope[1:]), hashlib.sha256(canonical).hexdigest())
    )
    signing_key = _signing_key(key.secret_access_key, scope_date, region, service)
    expected = hmac.digest(signing_key, string_to_sign.encode("latin-1"), hashlib.sha256).hex()
    if not hmac.compare_digest(expected.encode(), signature.encode("latin-1")):
        raise InvalidSignatureException(SIGNATURE_MISMATCH)
    _check_session_token(key, hmap.get(b"x-amz-security-token"), now)
    return Verified(key_id, region, service, key)


def _header_map(headers: Sequence[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    # Repeated headers become one value joined with ',' in arrival order, as SigV4 canonicalises.
    out: dict[bytes, bytes] = {}
    for name, value in headers:
        prev = out.get(name)
        out[name] = value if prev is None else prev.strip() + b"," + value.strip()
    return out


def _has_param(query: bytes, name: bytes) -> bool:
    return any(item.partition(b"=")[0] == name for item in query.split(b"&"))


def _parse_authorization(auth: str, *, has_date: bool) -> tuple[str, str, str]:
    algorithm, _, rest = auth.partition(" ")
    if algorithm != ALGORITHM:
        raise IncompleteSignatureException(UNSUPPORTED_ALGORITHM.format(algorithm))
    params: dict[str, str] = {}
    # AWS splits on commas and on whitespace alike, so a stray space inside the Credential
    # value surfaces as a piece without '=' (the error users see when a key id has a space).
    for part in rest.replace(",", " ").split():
        name, eq, value = part.partition("=")
        if not eq:
            raise IncompleteSignatureException(NOT_KEY_VALUE.format(part, auth))
        params[name] = value
    missing = [
        REQUIRES_PARAMETER.format(p) for p in ("Credential", "Signature") if not params.get(p)
    ]
    if "SignedHeaders" not in params:
        missing.append(REQUIRES_PARAMETER.format("SignedHeaders"))
    if not has_date:
        missing.append(REQUIRES_DATE)
    if missing:
        raise IncompleteSignatureException("".join(missing) + AUTHORIZATION_ECHO.format(auth))
    return params["Credential"], params["SignedHeaders"], params["Signature"]


def _require_signed(signed_headers: str, date_header: str) -> None:
    # AWS requires host to be signed, and the date header when one is used (SigV4 docs).
    names = signed_headers.lower().split(";")
    if "host" not in names:
        raise InvalidSignatureException(HOST_NOT_SIGNED)
    if date_header.lower() not in names:
        raise InvalidSignatureException(HEADER_NOT_SIGNED.format(date_header))


def _request_time(amz_date: bytes, http_date: bytes) -> tuple[str, int]:
    """The request's time as the ISO-8601 basic stamp the string to sign uses, and as epoch."""
    text = (amz_date or http_date).decode("latin-1")
    try:
        if amz_date:
            if _ISO_BASIC.fullmatch(text):
                return text, int(datetime.fromisoformat(text).timestamp())
        elif (parsed := parsedate_tz(text)) is not None:  # HTTP date; no zone/-0000 = UTC
            epoch = int(datetime(*parsed[:6], tzinfo=UTC).timestamp()) - (parsed[9] or 0)
            return _format(epoch), epoch
    except ValueError:  # well-shaped but out of range, e.g. month 13
        pass
    raise IncompleteSignatureException(BAD_DATE.format(text))


def _format(epoch: int) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(epoch))


def _check_skew(stamp: str, request_time: int, now: int) -> None:
    if request_time < now - MAX_SKEW_SECONDS:
        limit = _format(now - MAX_SKEW_SECONDS)
        raise InvalidSignatureException(SIGNATURE_EXPIRED.format(stamp, limit, _format(now)))
    if request_time > now + MAX_SKEW_SECONDS:
        limit = _format(now + MAX_SKEW_SECONDS)
        raise InvalidSignatureException(
            SIGNATURE_NOT_YET_CURRENT.format(stamp, limit, _format(now))
        )


def _check_scope(scope: list[str], stamp: str, expected_service: str | None) -> None:
    _, date, region, service, terminator = scope
    # AWS reports every scope problem at once, in this order, in one message.
    problems = ""
    if not _REGION.fullmatch(region):
        problems += SCOPE_REGION.format(region)
    if not service or (expected_service is not None and service != expected_service):
        problems += SCOPE_SERVICE.format(expected_service or service)
    if terminator != TERMINATOR:
        problems += SCOPE_TERMINATOR.format(terminator)
    if date != stamp[:8]:
        problems += SCOPE_DATE.format(date, stamp[:8], stamp)
    if problems:
        raise InvalidSignatureException(problems)


def _canonical_request(
    method: str,
    raw_path: bytes,
    query: bytes,
    hmap: Mapping[bytes, bytes],
    *,
    signed_headers: str,
    payload: bytes,
) -> bytes:
    header_lines = []
    for name in signed_headers.split(";"):
        raw_name = name.encode("latin-1")
        value = hmap.get(raw_name.lower(), b"")
        # Trim, and collapse inner runs of whitespace to one space (SigV4 "Trimall").
        header_lines.append(raw_name + b":" + b" ".join(value.split()) + b"\n")
    return b"\n".join(
        (
            method.encode("ascii"),
            _canonical_uri(raw_path),
            _canonical_query(query),
            b"".join(header_lines),
            signed_headers.encode("latin-1"),
            payload,
        )
    )


def _canonical_uri(raw_path: bytes) -> bytes:
    """Non-S3 rule: drop empty and dot segments, then URI-encode the path as sent.

    The path on the wire is already percent-encoded once, so encoding it again here gives the
    double encoding AWS specifies for every service but S3 (botocore signs the same way).
    """
    if raw_path == b"/":
        return raw_path
    segments: list[bytes] = []
    for segment in raw_path.split(b"/"):
        if segment == b"..":
            if segments:
                segments.pop()
        elif segment not in (b"", b"."):
            segments.append(segment)
    path = b"/" + b"/".join(segments)
    if segments and raw_path.endswith(b"/"):
        path += b"/"
    return quote_from_bytes(path, safe="/").encode("ascii")


def _canonical_query(query: bytes) -> bytes:
    if not query:
        return b""
    # Decode then re-encode each name and value, so any client's encoding choices
    # (raw UTF-8, lower-case hex, unescaped reserved characters) reach one canonical form.
    pairs = sorted(
        (_uri_encode(name), _uri_encode(value))
        for name, _, value in (item.partition(b"=") for item in query.split(b"&"))
    )
    return b"&".join(name + b"=" + value for name, value in pairs)


def _uri_encode(component: bytes) -> bytes:
    return quote_from_bytes(unquote_to_bytes(component), safe="").encode("ascii")


@lru_cache(maxsize=SIGNING_KEY_CACHE_SIZE)
def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    # kDate -> kRegion -> kService -> kSigning; four HMACs worth caching per (key, day, scope).
    key = hmac.digest(("AWS4" + secret).encode(), date.encode("latin-1"), hashlib.sha256)
    for part in (region, service, TERMINATOR):
        key = hmac.digest(key, part.encode("latin-1"), hashlib.sha256)
    return key


def _check_session_token(key: SigningKey, presented: bytes | None, now: float) -> None:
    # Only a hash of the token is kept (it is a bearer credential, like a password).
    expected = key.session_token_sha256
    if expected is None:
        if presented is not None:  # a token AWS cannot match to this long-term key
            raise UnrecognizedClientException(INVALID_SESSION_TOKEN)
    elif presented is None:  # temporary key ids mean nothing without their token
        raise UnrecognizedClientException(UNRECOGNIZED_CLIENT)
    elif not hmac.compare_digest(
        hashlib.sha256(presented.strip()).hexdigest().encode(), expected.encode()
    ):
        raise UnrecognizedClientException(INVALID_SESSION_TOKEN)
    if key.expires_at is not None and now >= key.expires_at:
        raise ExpiredTokenException(EXPIRED_TOKEN)
