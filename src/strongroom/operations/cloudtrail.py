"""CloudTrail's LookupEvents, answered from the audit trail (``audit_events``).

Only LookupEvents is served: the trail itself is configured by Strongroom's settings, not by
CreateTrail and friends, which answer UnsupportedOperationException (CloudTrail's own code
for "the requested operation is not supported", so the SDKs and the CLI know it).

Semantics follow the LookupEvents reference: at most one lookup attribute, an inclusive time
range, 1-50 events a page (50 by default), newest first, and a NextToken that is only good
with the parameters it was issued for (the reference: "a token that was previously used in a
request with different parameters" is InvalidNextTokenException). Tokens carry the position
(``seq``) of the last event returned, so pages neither skip nor repeat events while new ones
are recorded, and are signed like ListSecrets' (``operations.paging``).

As CloudTrail's event history, a lookup sees the events of the Region the request is signed
for (IAM's, being global, are in us-east-1). Not AWS: events are kept for as long as the
installation keeps them (``--audit-retention-days``) rather than 90 days.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, Final

from botocore.loaders import Loader
from botocore.model import ServiceModel as BotocoreServiceModel

from strongroom.audit.trail import SOURCES, resource_name
from strongroom.errors import ClientError, InvalidNextTokenException
from strongroom.operations import paging
from strongroom.operations.context import Context
from strongroom.protocol.model import ServiceModel
from strongroom.storage.base import AuditEventRow, AuditQuery, Transaction

ACTION: Final = "cloudtrail:LookupEvents"
SECRET_TYPE: Final = "AWS::SecretsManager::Secret"  # noqa: S105 - a resource type
MAX_RESULTS: Final = 50
_TOKEN_KIND: Final = "LookupEvents"  # noqa: S105 - a NextToken kind
# LookupAttributes keys -> the audit_events column each is looked up in. ResourceType has no
# column: it is answered from the event source (only secrets have a type here).
_COLUMNS: Final = {
    "EventId": "event_id",
    "EventName": "event_name",
    "Username": "user_name",
    "EventSource": "event_source",
    "AccessKeyId": "access_key_id",
    "ResourceName": "resource_name",
    "ReadOnly": "read_only",
}
_READ_ONLY_VALUES: Final = {"true": True, "false": False}
# A filter the database cannot apply (ResourceType) is applied to batches of rows; one call
# reads at most _SCAN_ROWS of them and, short of a full page, returns what it found with a
# NextToken, as CloudTrail itself returns short (even empty) pages.
_SCAN_BATCH: Final = 200
_SCAN_ROWS: Final = 2000

# Texts UNCONFIRMED: AWS's documentation names the codes and conditions, not the messages.
MORE_THAN_ONE_ATTRIBUTE: Final = "You can only specify one lookup attribute."
START_AFTER_END: Final = "Start time must be before end time."
MAX_RESULTS_RANGE: Final = f"MaxResults must be between 1 and {MAX_RESULTS}."


class InvalidLookupAttributesException(ClientError):
    pass


class InvalidTimeRangeException(ClientError):
    pass


class InvalidMaxResultsException(ClientError):
    pass


class UnsupportedOperationException(ClientError):
    pass


@functools.cache
def service_model() -> ServiceModel:
    """botocore's CloudTrail model, compiled once, without MaxResults' 1-50 bounds.

    Those bounds are the operation's to enforce: CloudTrail answers them with its own
    InvalidMaxResultsException, which the model check would turn into a ValidationException.
    """
    raw = copy.deepcopy(Loader().load_service_model("cloudtrail", "service-2"))
    raw["shapes"]["MaxResults"] = {"type": "integer"}  # only LookupEvents uses this shape
    return ServiceModel(BotocoreServiceModel(raw, service_name="cloudtrail"))


def lookup_events(ctx: Context, request: Mapping[str, Any]) -> dict[str, Any]:
    with ctx.store.read() as tx:
        # Authorization first, as IAM does: a caller without it learns nothing of the request.
        if ctx.access is not None:
            ctx.access.require(tx, ACTION, "*", ctx.account_id)
        lookup = _Lookup.parse(request)
        if lookup.query is not None:
            # Like CloudTrail's event history: the events of the Region the request is for
            # (IAM's, being global, are recorded in us-east-1).
            lookup.query = replace(lookup.query, region=ctx.region)
        after: tuple[float, int] | None = None
        if "NextToken" in request:
            cursor = paging.decode(ctx.token_key, _TOKEN_KIND, request["NextToken"])
            if not (isinstance(cursor, list) and len(cursor) == 3 and cursor[2] == lookup.key):  # noqa: PLR2004 - [time, seq, key]
                raise InvalidNextTokenException(paging.INVALID_TOKEN)
            after = float(cursor[0]), int(cursor[1])
        if lookup.query is None:
            return {"Events": []}
        rows, last = _page(tx, lookup.query, after, lookup.keep, lookup.limit)
    token = None if last is None else paging.encode(ctx.token_key, _TOKEN_KIND, [*last, lookup.key])
    return {"Events": [event(row) for row in rows], "NextToken": token}


def _past(query: AuditQuery, cursor: tuple[float, int] | None) -> AuditQuery:
    """``query`` continued past the record at ``cursor`` (event time, position)."""
    if cursor is None:
        return query
    return replace(query, after_time=cursor[0], after_seq=cursor[1])


def event(row: AuditEventRow) -> dict[str, Any]:
    """One Event of a LookupEvents response."""
    resources = []
    if row.resource_name is not None:
        # Only a secret's type is known from the row (UNCONFIRMED: CloudTrail names secrets
        # by ARN here; the trail keeps their names). Other types are left out, as CloudTrail
        # leaves out those it cannot determine.
        if row.event_source == SOURCES["secretsmanager"]:
            resources.append({"ResourceType": SECRET_TYPE, "ResourceName": row.resource_name})
        else:
            resources.append({"ResourceName": row.resource_name})
    return {
        "EventId": row.event_id,
        "EventName": row.event_name,
        "ReadOnly": "true" if row.read_only else "false",
        "AccessKeyId": row.access_key_id,
        "EventTime": row.event_time,
        "EventSource": row.event_source,
        "Username": row.user_name,
        "Resources": resources,
        "CloudTrailEvent": row.record,
    }


class _Lookup:
    """A request's conditions: the query (None: nothing can match), a filter the database
    cannot apply, the page size, and the key a NextToken must have been issued for."""

    def __init__(
        self,
        query: AuditQuery | None,
        keep: Callable[[AuditEventRow], bool] | None,
        limit: int,
        key: str,
    ) -> None:
        self.query, self.keep, self.limit, self.key = query, keep, limit, key

    @classmethod
    def parse(cls, request: Mapping[str, Any]) -> _Lookup:
        attributes: list[dict[str, str]] = request.get("LookupAttributes") or []
        if len(attributes) > 1:
            raise InvalidLookupAttributesException(MORE_THAN_ONE_ATTRIBUTE)
        start, end = _seconds(request.get("StartTime")), _seconds(request.get("EndTime"))
        if start is not None and end is not None and start > end:
            raise InvalidTimeRangeException(START_AFTER_END)
        limit = request.get("MaxResults", MAX_RESULTS)
        if not 1 <= limit <= MAX_RESULTS:
            raise InvalidMaxResultsException(MAX_RESULTS_RANGE)
        category = request.get("EventCategory")
        attribute = (
            (attributes[0]["AttributeKey"], attributes[0]["AttributeValue"]) if attributes else None
        )
        # What a NextToken is bound to: every parameter but the page size.
        bound = json.dumps([attribute, start, end, category]).encode()
        key = hashlib.sha256(bound).hexdigest()[:16]
        query: AuditQuery | None = AuditQuery(start=start, end=end, newest_first=True, by_time=True)
        keep = None
        if category is not None:
            query = None  # "insight": Strongroom records no Insights events
        elif attribute is not None:
            query, keep = _condition(query, *attribute)
        return cls(query, keep, limit, key)


def _condition(
    query: AuditQuery | None, name: str, value: str
) -> tuple[AuditQuery | None, Callable[[AuditEventRow], bool] | None]:
    if query is None:
        return None, None
    if name == "ResourceType":
        if value != SECRET_TYPE:
            return None, None  # only secrets have a type here
        source = (("event_source", SOURCES["secretsmanager"]),)
        return replace(query, equals=source), _names_a_resource
    if name == "ReadOnly":
        # Exact match on "true"/"false" (UNCONFIRMED: what CloudTrail does with other values).
        if value not in _READ_ONLY_VALUES:
            return None, None
        return replace(query, equals=(("read_only", _READ_ONLY_VALUES[value]),)), None
    if name == "ResourceName":
        value = resource_name(value)  # a secret's ARN finds the events that named it by name
    return replace(query, equals=((_COLUMNS[name], value),)), None


def _names_a_resource(row: AuditEventRow) -> bool:
    return row.resource_name is not None


def _page(
    tx: Transaction,
    query: AuditQuery,
    after: tuple[float, int] | None,
    keep: Callable[[AuditEventRow], bool] | None,
    limit: int,
) -> tuple[list[AuditEventRow], tuple[float, int] | None]:
    """(up to ``limit`` matching events past ``after``, the (time, position) a next page
    starts after, if any)."""
    if keep is None:
        rows = tx.audit_events(_past(replace(query, limit=limit + 1), after))
        if len(rows) > limit:
            return rows[:limit], _cursor(rows[limit - 1])
        return rows, None
    found: list[AuditEventRow] = []
    scanned, last = 0, after
    while scanned < _SCAN_ROWS:
        batch = tx.audit_events(_past(replace(query, limit=_SCAN_BATCH), last))
        for row in batch:
            if keep(row):
                if len(found) == limit:
                    return found, _cursor(found[-1])  # one more match exists: a next page
                found.append(row)
            last = _cursor(row)
        scanned += len(batch)
        if len(batch) < _SCAN_BATCH:
            return found, None  # the trail is exhausted
    # Scanned enough for one call: the next page continues where this scan stopped.
    return found, (_cursor(found[-1]) if len(found) == limit else last)


def _cursor(row: AuditEventRow) -> tuple[float, int]:
    return row.event_time, row.seq


def _seconds(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()
