"""CloudTrail records: one per API call (`cloudtrail_record`), one per server-caused event.

The format is CloudTrail's event record as AWS documents it ("CloudTrail record contents"
and "CloudTrail userIdentity element" in the CloudTrail user guide), so tools that read
CloudTrail read ours. What goes in `requestParameters` and `responseElements` is decided by
`redaction.py`; on top of it, this module leaves out whole responses where AWS does:

- responseElements is null for calls that fail and for read-only calls (AWS: it "is
  present in events for actions that make changes"), and always for GetSecretValue,
  BatchGetSecretValue and GetRandomPassword, whatever the caller claims about read_only;
- except for STS's credential-issuing calls, read-only yet recorded with their response by
  AWS; the credentials' secret key and session token are withheld by redaction (AWS
  records the session token; we are stricter).

Service events (`service_event`) are the ones Secrets Manager itself causes and CloudTrail
records as `AwsServiceEvent`, named as AWS names them ("Log AWS Secrets Manager events with
AWS CloudTrail"): RotationStarted, RotationSucceeded, RotationFailed, RotationAbandoned (a
new AWSCURRENT value put by hand ended a rotation), StartSecretVersionDelete (DeleteSecret
with a recovery window), CancelSecretVersionDelete (RestoreSecret) and
EndSecretVersionDelete (the secret removed when its recovery window ended).
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from strongroom.audit.redaction import (
    compact_json,
    iso_time,
    needs_scrub,
    redact,
    scrub,
    scrubbed_json,
    withheld_texts,
)
from strongroom.domain.principal import Principal

# The format version CloudTrail's user guide names as current. UNCONFIRMED that Secrets
# Manager's own records carry it today: recent published examples show 1.08 to 1.10; the
# fields we write all exist since 1.08 (tlsDetails since 1.08).
EVENT_VERSION: Final = "1.11"

SECRETS_MANAGER: Final = "secretsmanager.amazonaws.com"

SERVICE_EVENT_NAMES: Final = frozenset(
    {
        "RotationStarted",
        "RotationSucceeded",
        "RotationFailed",
        "RotationAbandoned",
        "StartSecretVersionDelete",
        "CancelSecretVersionDelete",
        "EndSecretVersionDelete",
    }
)

# Responses that never reach a record: their whole point is secret material.
_RESPONSE_NEVER_RECORDED: Final = frozenset(
    {"GetSecretValue", "BatchGetSecretValue", "GetRandomPassword"}
)
# Read-only calls whose response AWS records all the same (the credentials' key id, the
# assumed-role user). UNCONFIRMED for GetSessionToken and GetFederationToken.
_RESPONSE_RECORDED_THOUGH_READ_ONLY: Final = frozenset(
    {
        "AssumeRole",
        "AssumeRoleWithSAML",
        "AssumeRoleWithWebIdentity",
        "GetSessionToken",
        "GetFederationToken",
    }
)


@dataclass(frozen=True, slots=True)
class TlsDetails:
    """CloudTrail's tlsDetails: how the client's connection was protected."""

    tls_version: str  # "TLSv1.3"
    cipher_suite: str  # "TLS_AES_128_GCM_SHA256"
    client_provided_host_header: str | None = None


# Not frozen: one is made per call, and a frozen dataclass's __init__ (a setattr per field
# through object) costs several times more.
@dataclass(slots=True)
class CallFacts:
    """What the front end knows about one API call."""

    event_source: str  # "secretsmanager.amazonaws.com", "iam...", "sts...", "cloudtrail..."
    event_name: str  # the action, e.g. "GetSecretValue"
    region: str  # the request's region ("us-east-1" for IAM)
    account_id: str  # the installation's account (recipientAccountId)
    # None when authentication failed: the record keeps what is known, the access key id.
    principal: Principal | None
    access_key_id: str | None
    source_ip: str | None
    user_agent: str | None
    request_id: str
    event_time: float  # epoch seconds
    request: Mapping[str, Any] | None  # the parsed request members (model names)
    response: Mapping[str, Any] | None  # the result members, None on error
    error_code: str | None
    error_message: str | None
    read_only: bool
    tls: TlsDetails | None = None
    # When an assumed-role session was created (epoch seconds), for sessionContext.
    session_created: float | None = None


def cloudtrail_record(facts: CallFacts, *, event_id: str | None = None) -> dict[str, Any]:
    """One CloudTrail record (eventType AwsApiCall) for one call, without secret material."""
    record, withheld = _record(facts, event_id)
    scrubbed: dict[str, Any] = scrub(record, withheld)
    return scrubbed


def cloudtrail_text(facts: CallFacts, *, event_id: str) -> str:
    """``cloudtrail_record``'s compact JSON, the very text ``json.dumps`` makes of it, put
    together from its parts (the hot path: one per call). The caller's userIdentity, the same
    for all its calls, is rendered once; the tests compare every field against json.dumps."""
    request, withheld_in_request = redact(facts.request)
    response, withheld_in_response = _response_elements(facts)
    parts = [
        _HEAD,
        _identity_text(facts.principal, facts.access_key_id, facts.session_created),
        ',"eventTime":"',
        iso_time(facts.event_time),
        '","eventSource":',
        _quote_again(facts.event_source),
        ',"eventName":',
        _quote_again(facts.event_name),
        ',"awsRegion":',
        _quote_again(facts.region),
    ]
    if facts.source_ip is not None:
        parts += (',"sourceIPAddress":', _quote_again(facts.source_ip))
    if facts.user_agent is not None:
        parts += (',"userAgent":', _quote_again(facts.user_agent))
    if facts.error_code is not None:
        parts += (',"errorCode":', _quote_again(facts.error_code))
        if facts.error_message is not None:
            parts += (',"errorMessage":', _quote(facts.error_message))
    parts += (
        ',"requestParameters":',
        compact_json(request or None),
        ',"responseElements":',
        compact_json(response),
        ',"requestID":',
        _quote(facts.request_id),
        ',"eventID":',
        _quote(event_id),
        ',"readOnly":',
        "true" if facts.read_only else "false",
        _API_CALL,
        _quote_again(facts.account_id),
        _CATEGORY,
    )
    if facts.tls is not None:
        parts += (',"tlsDetails":', compact_json(_tls_details(facts.tls)))
    parts.append("}")
    text = "".join(parts)
    withheld = withheld_in_request | withheld_in_response
    if needs_scrub(text, withheld):  # a withheld text repeated elsewhere: the careful way
        return scrubbed_json(_record(facts, event_id)[0], withheld)[1]
    return text


def identity_access_key(principal: Principal | None, access_key_id: str | None) -> str | None:
    """The access key id a call's userIdentity names."""
    if principal is None:
        return access_key_id
    return principal.access_key_id or access_key_id


# json.dumps' own string encoder (ensure_ascii), so the parts join into json.dumps' text.
_quote = json.encoder.encode_basestring_ascii
# For the texts that repeat from call to call (a client's user agent and address, the
# action, the Region): quoting a user agent costs more than looking it up.
_quote_again = functools.lru_cache(maxsize=4096)(_quote)
_HEAD: Final = '{"eventVersion":' + _quote(EVENT_VERSION) + ',"userIdentity":'
_API_CALL: Final = ',"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":'
_CATEGORY: Final = ',"eventCategory":"Management"'


@functools.lru_cache(maxsize=1024)  # a server's callers are few; unknown keys just cycle out
def _identity_text(
    principal: Principal | None, access_key_id: str | None, session_created: float | None
) -> str:
    return compact_json(user_identity(principal, access_key_id, session_created=session_created))


def _record(facts: CallFacts, event_id: str | None) -> tuple[dict[str, Any], frozenset[str]]:
    request, withheld_in_request = redact(facts.request)
    response, withheld_in_response = _response_elements(facts)
    record: dict[str, Any] = {
        "eventVersion": EVENT_VERSION,
        "userIdentity": user_identity(
            facts.principal, facts.access_key_id, session_created=facts.session_created
        ),
        "eventTime": iso_time(facts.event_time),
        "eventSource": facts.event_source,
        "eventName": facts.event_name,
        "awsRegion": facts.region,
    }
    if facts.source_ip is not None:
        record["sourceIPAddress"] = facts.source_ip
    if facts.user_agent is not None:
        record["userAgent"] = facts.user_agent
    if facts.error_code is not None:
        record["errorCode"] = facts.error_code
        if facts.error_message is not None:
            record["errorMessage"] = facts.error_message
    record |= {
        "requestParameters": request or None,
        "responseElements": response,
        "requestID": facts.request_id,
        "eventID": event_id or str(uuid.uuid4()),
        "readOnly": facts.read_only,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": facts.account_id,
        "eventCategory": "Management",
    }
    if facts.tls is not None:
        record["tlsDetails"] = _tls_details(facts.tls)
    return record, withheld_in_request | withheld_in_response


def service_event(
    *,
    event_name: str,
    account_id: str,
    region: str,
    event_time: float,
    resources: list[dict[str, str]] | None = None,
    details: Mapping[str, Any] | None = None,
    error_message: str | None = None,
    request_id: str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """A record of something Strongroom did on its own (eventType AwsServiceEvent).

    `details` become additionalEventData under the names given (AWS writes
    `{"SecretId": "<arn>"}` there); `error_message` is RotationFailed's reason. Raises
    ValueError for a name AWS does not use, so a typo cannot start a new kind of event.
    """
    if event_name not in SERVICE_EVENT_NAMES:
        msg = f"not a Secrets Manager service event: {event_name!r}"
        raise ValueError(msg)
    additional, withheld = redact(details, rename=False)
    record: dict[str, Any] = {
        "eventVersion": EVENT_VERSION,
        "userIdentity": {"accountId": account_id, "invokedBy": SECRETS_MANAGER},
        "eventTime": iso_time(event_time),
        "eventSource": SECRETS_MANAGER,
        "eventName": event_name,
        "awsRegion": region,
        "sourceIPAddress": SECRETS_MANAGER,
        "userAgent": SECRETS_MANAGER,
    }
    if error_message is not None:
        record["errorMessage"] = error_message
    record |= {"requestParameters": None, "responseElements": None}
    if additional:
        record["additionalEventData"] = additional
    record |= {
        "requestID": request_id or str(uuid.uuid4()),
        "eventID": event_id or str(uuid.uuid4()),
        "readOnly": False,
    }
    if resources:
        record["resources"] = [dict(resource) for resource in resources]
    record |= {
        "eventType": "AwsServiceEvent",
        "managementEvent": True,
        "recipientAccountId": account_id,
        "eventCategory": "Management",
    }
    scrubbed: dict[str, Any] = scrub(record, withheld)
    return scrubbed


def user_identity(
    principal: Principal | None,
    access_key_id: str | None = None,
    *,
    session_created: float | None = None,
) -> dict[str, Any]:
    """CloudTrail's userIdentity for a caller: Root, IAMUser, AssumedRole, or Unknown.

    Unknown (CloudTrail's type for "an identity type that CloudTrail cannot determine") is
    a caller whose authentication failed: only the access key id it presented is known.
    """
    if principal is None:
        return _without_none({"type": "Unknown", "accessKeyId": access_key_id})
    identity: dict[str, Any] = {
        "type": principal.kind,
        "principalId": principal.account_id if principal.is_root else principal.user_id,
        "arn": principal.arn,
        "accountId": principal.account_id,
        "accessKeyId": identity_access_key(principal, access_key_id),
    }
    if principal.kind == "IAMUser":
        identity["userName"] = principal.user_name
    elif principal.kind == "AssumedRole":
        identity["sessionContext"] = _session_context(principal, session_created)
    return _without_none(identity)


def _session_context(principal: Principal, created: float | None) -> dict[str, Any]:
    role_arn = principal.role_arn or ""
    role_id = (principal.user_id or "").partition(":")[0]
    issuer = {
        "type": "Role",
        "principalId": role_id or None,
        "arn": role_arn,
        "accountId": principal.account_id,
        "userName": role_arn.rpartition("/")[2],  # a role's name is its ARN's last segment
    }
    attributes = {
        "creationDate": None if created is None else iso_time(created),
        # Strongroom has no MFA: no session is ever MFA-authenticated.
        "mfaAuthenticated": "false",
    }
    return {
        "sessionIssuer": _without_none(issuer),
        "webIdFederationData": {},
        "attributes": _without_none(attributes),
    }


def _response_elements(facts: CallFacts) -> tuple[dict[str, Any] | None, frozenset[str]]:
    """(responseElements, withheld texts); the texts are gathered even when nothing is kept."""
    recorded = (
        facts.error_code is None
        and facts.event_name not in _RESPONSE_NEVER_RECORDED
        and (not facts.read_only or facts.event_name in _RESPONSE_RECORDED_THOUGH_READ_ONLY)
    )
    if not recorded:
        return None, withheld_texts(facts.response)
    dates = java_date if facts.event_source in _JAVA_DATES else None
    cleaned, withheld = redact(facts.response, dates=dates)
    return (cleaned or None), withheld


# IAM and STS write the dates of their responseElements as Java's default date text in
# English, in UTC: "createDate": "Jul 30, 2024 9:53:13 PM" in CreateAccessKey, CreateUser and
# CreateRole records as delivered. (AWS's IAM guide shows STS's "expiration" both so and as
# "Oct 2, 2019, 11:12:29 PM"; the delivered records seen have no comma before the time.)
_JAVA_DATES: Final = frozenset({"iam.amazonaws.com", "sts.amazonaws.com"})
_MONTHS: Final = (
    *("Jan", "Feb", "Mar", "Apr", "May", "Jun"),
    *("Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
)


def java_date(moment: datetime) -> str:
    """``moment`` as IAM's records write dates: "Jul 30, 2024 9:53:13 PM" (UTC, English)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # naive datetimes in Strongroom are UTC
    moment = moment.astimezone(UTC)
    hour = moment.hour % 12 or 12
    half = "AM" if moment.hour < 12 else "PM"  # noqa: PLR2004 - noon
    return (
        f"{_MONTHS[moment.month - 1]} {moment.day}, {moment.year} "
        f"{hour}:{moment.minute:02d}:{moment.second:02d} {half}"
    )


def _tls_details(tls: TlsDetails) -> dict[str, str]:
    details = {"tlsVersion": tls.tls_version, "cipherSuite": tls.cipher_suite}
    if tls.client_provided_host_header is not None:
        details["clientProvidedHostHeader"] = tls.client_provided_host_header
    return details


def _without_none(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}
