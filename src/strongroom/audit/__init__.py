"""The audit trail: every call and every server-caused event as a CloudTrail record.

`records.py` turns what the front end knows about a call into one record in CloudTrail's
event format; `redaction.py` decides which request and response members a record may hold
(never secret material). Both are pure: no I/O, no clock, no storage. `trail.py` records
every call: a write's record in the write's own transaction, any other call's
group-committed to the database, or on embedded SQLite appended to the process's journal
(`journal.py`), which a thread moves into the database. `sealing.py` seals the records into
CloudTrail log files with signed, chained digests, which `digests.py` verifies.
`service_events.py` records what Secrets Manager does on its own (rotations, deletions) in
the transaction that does it.
"""

from strongroom.audit.records import (
    EVENT_VERSION,
    SERVICE_EVENT_NAMES,
    CallFacts,
    TlsDetails,
    cloudtrail_record,
    cloudtrail_text,
    service_event,
    user_identity,
)
from strongroom.audit.redaction import WITHHELD, is_withheld, redact
from strongroom.audit.service_events import (
    SECRET_RESOURCE_TYPE,
    record_service_event,
    rotation_request_id,
    service_event_row,
)

__all__ = [
    "EVENT_VERSION",
    "SECRET_RESOURCE_TYPE",
    "SERVICE_EVENT_NAMES",
    "WITHHELD",
    "CallFacts",
    "TlsDetails",
    "cloudtrail_record",
    "cloudtrail_text",
    "is_withheld",
    "record_service_event",
    "redact",
    "rotation_request_id",
    "service_event",
    "service_event_row",
    "user_identity",
]
