"""The storage contract: what every backend (SQLite now, PostgreSQL next) provides.

Theory of operation
-------------------
An operation opens one transaction (``Store.read()`` or ``Store.write()``), does all its
reads and writes through the ``Transaction`` it gets, and commits by leaving the ``with``
block; an exception rolls everything back, so a failed request changes nothing. ``write()``
transactions are serialised per secret: SQLite takes the database write lock at BEGIN
(``BEGIN IMMEDIATE``); a server backend locks the secret row (``lock_secret``). So the label
invariants that ``domain.stages`` computes hold across concurrent clients.

Storage knows nothing of AWS error codes: it raises the exceptions below, and the
operations layer turns them into what a client sees.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, Protocol


class StorageError(Exception):
    """Base of everything storage raises."""


class ConstraintViolation(StorageError):
    """The database refused a write that breaks one of its constraints."""


class AlreadyExists(ConstraintViolation):
    """A unique key (secret name, version id, access key id) is taken."""


class TextNotStorable(StorageError):
    """The database cannot store this text (PostgreSQL: a NUL character)."""


class TransientConflict(StorageError):
    """The transaction lost a race with another one (a serialization failure, a deadlock, or
    a unique key taken since it looked) and was rolled back: running the whole operation
    again sees the winner's work. The server retries; clients never see it."""


class SchemaTooNew(StorageError):
    """The database was migrated by a newer Strongroom than this one."""


@dataclass(slots=True)
class SecretRow:
    pk: int
    account_id: str
    region: str
    name: str
    arn: str
    created_at: float
    last_changed_at: float
    last_accessed_at: float = 0.0
    description: str | None = None
    kms_key_id: str | None = None
    secret_type: str | None = None
    deletion_date: float | None = None
    rotation_enabled: bool | None = None
    rotation_lambda_arn: str | None = None
    rotation_rules: str | None = None
    last_rotated_at: float | None = None
    next_rotation_at: float | None = None
    tags_ever_set: bool = False
    resource_policy: str | None = None
    owning_service: str | None = None
    primary_region: str | None = None
    rotation_due_at: float | None = None  # when the scheduler starts the next rotation


@dataclass(slots=True)
class VersionRow:
    pk: int
    secret_pk: int
    version_id: str
    created_at: float
    last_accessed_at: float = 0.0
    sealed: bytes | None = None
    stages: list[str] = field(default_factory=list)


@dataclass(slots=True)
class AccessKeyRow:
    access_key_id: str
    account_id: str
    principal_arn: str
    sealed_secret: bytes
    master_key_id: str
    created_at: float
    user_name: str | None = None
    session_token_hash: str | None = None
    expires_at: float | None = None
    status: str = "Active"
    # aws:userid: AIDA... for an IAM user's key, "AROA...:<session>" for an assumed-role
    # session, None for the root.
    user_id: str | None = None
    role_arn: str | None = None  # assumed-role sessions: the role's ARN and the session name
    session_name: str | None = None
    # A rotation function's credentials: their only identity policy (the rotated secret).
    session_policy: str | None = None


@dataclass(slots=True)
class FunctionRow:
    """A registered rotation function: exactly one of handler, url, builtin."""

    account_id: str
    name: str
    sealed_env: bytes  # JSON object of the --env variables, sealed (crypto.envelope)
    master_key_id: str
    timeout: float
    created_at: float
    handler: str | None = None  # "path/to/file.py:function"
    url: str | None = None
    builtin: str | None = None  # "postgresql-single-user", ...
    python: str | None = None


@dataclass(slots=True)
class RotationRow:
    pk: int
    secret_pk: int
    version_id: str
    function_arn: str
    immediately: bool
    state: str  # pending | running | succeeded | failed | cancelled
    created_at: float
    attempts: int = 0
    step: str | None = None
    error: str | None = None
    next_attempt_at: float | None = None
    finished_at: float | None = None
    lease_owner: str | None = None
    lease_expires_at: float | None = None


@dataclass(slots=True)
class RotationStepRow:
    rotation_pk: int
    attempt: int
    step: str
    started_at: float
    duration: float
    ok: bool
    error: str | None = None
    output: str | None = None


@dataclass(slots=True)
class IamUserRow:
    user_id: str
    account_id: str
    name: str
    path: str
    arn: str
    created_at: float


@dataclass(slots=True)
class IamRoleRow:
    role_id: str
    account_id: str
    name: str
    path: str
    arn: str
    created_at: float
    trust_policy: str
    max_session_duration: int
    description: str | None = None


@dataclass(slots=True)
class ManagedPolicyRow:
    policy_id: str
    account_id: str
    name: str
    path: str
    arn: str
    default_version: str
    created_at: float
    updated_at: float
    description: str | None = None
    attachment_count: int = 0  # computed on read; ignored on insert


SortBy = Literal["created-date", "last-accessed-date", "last-changed-date", "name"]


@dataclass(frozen=True, slots=True)
class ListQuery:
    """One page of ListSecrets, already validated (spec §8)."""

    account_id: str
    region: str
    # A secret whose deletion date is at or before ``now`` is gone, even before its purge.
    now: float
    filters: Sequence[tuple[str, Sequence[str]]] = ()
    sort_by: SortBy = "created-date"
    descending: bool = False
    include_planned_deletion: bool = False
    # Keyset cursor: the sort value and pk of the last row of the previous page.
    after: tuple[Any, int] | None = None
    limit: int = 100


@dataclass(slots=True)
class AuditEventRow:
    """One CloudTrail record with the columns the trail is searched by."""

    event_id: str
    event_time: float
    event_source: str
    event_name: str
    user_name: str | None
    access_key_id: str | None
    resource_name: str | None
    read_only: bool
    record: str  # the record as JSON text
    aws_region: str | None = None  # the record's awsRegion: LookupEvents answers per region
    seq: int = 0  # assigned on insert
    sealed_in: int | None = None


class SealableRecord(NamedTuple):
    """An unsealed record as sealing reads it: only what a log file needs."""

    seq: int
    event_time: float
    record: str


@dataclass(frozen=True, slots=True)
class AuditFileRow:
    name: str  # "logs/<file>.json.gz" or "digests/<file>.json.gz"
    kind: str  # "log" | "digest"
    sequence: int  # the chain position of the digest (a log file shares its digest's)
    content: bytes  # gzip JSON
    end_time: float


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """A search of the trail: every condition must hold (AND)."""

    start: float | None = None
    end: float | None = None
    # (column, value) pairs: event_id, event_name, event_source, user_name,
    # access_key_id, resource_name, read_only
    equals: tuple[tuple[str, Any], ...] = ()
    after_seq: int | None = None  # paging: continue past this record
    # With ``by_time``, the event time of the record ``after_seq`` names.
    after_time: float | None = None
    region: str | None = None  # only records of this awsRegion
    newest_first: bool = True
    # Order by event time (then position), as CloudTrail answers, rather than by position
    # (the order records reached the trail, which ``audit tail`` follows): the records of
    # reads reach it from their process's journal a moment after the calls around them.
    by_time: bool = False
    limit: int = 50


class Transaction(Protocol):
    """Everything an operation may do inside one transaction."""

    # Secrets
    def secret_by_name(self, account_id: str, region: str, name: str) -> SecretRow | None: ...
    def secret_by_arn(self, arn: str) -> SecretRow | None: ...
    def staged_by_name(
        self, account_id: str, region: str, name: str, stage: str
    ) -> tuple[SecretRow, VersionRow | None] | None:
        """``secret_by_name`` and the secret's version holding ``stage``, in one query."""

    def staged_by_arn(self, arn: str, stage: str) -> tuple[SecretRow, VersionRow | None] | None:
        """``secret_by_arn`` and the secret's version holding ``stage``, in one query."""

    def lock_secret(self, pk: int) -> None:
        """Hold the secret's row until commit (no-op where the transaction already serialises)."""

    def insert_secret(self, row: SecretRow) -> SecretRow:
        """Insert ``row`` (its ``pk`` is ignored) and return it with its pk; AlreadyExists."""

    def update_secret(self, pk: int, **values: Any) -> None: ...
    def delete_secret(self, pk: int) -> None:
        """Remove the secret with its versions, labels, tags and words."""

    def list_secrets(self, query: ListQuery) -> list[SecretRow]: ...
    def secrets_due_for_purge(self, now: float, limit: int) -> list[SecretRow]: ...

    # Versions and labels
    def versions(self, secret_pk: int) -> list[VersionRow]:
        """All versions, labelled or not, oldest first, each with its stages."""

    def version_by_id(self, secret_pk: int, version_id: str) -> VersionRow | None: ...
    def version_by_stage(self, secret_pk: int, stage: str) -> VersionRow | None: ...
    def labels_of(self, secret_pks: Sequence[int]) -> dict[int, dict[str, list[str]]]:
        """Labelled versions per secret: {secret pk: {version id: stages}}."""

    def insert_version(
        self,
        secret_pk: int,
        version_id: str,
        created_at: float,
        sealed: bytes | None,
        key_id: str | None,
    ) -> VersionRow: ...
    def set_version_value(self, version_pk: int, sealed: bytes, key_id: str) -> None: ...
    def delete_versions(self, version_pks: Sequence[int]) -> None: ...
    def set_labels(self, secret_pk: int, labels: Mapping[int, Sequence[str]]) -> None:
        """Replace every label of the secret: {version pk: stages}."""

    def touch_accessed(self, secret_pk: int, version_pk: int, day: float) -> None: ...

    # Tags and search words
    def tags(self, secret_pk: int) -> list[tuple[str, str]]: ...
    def tags_of(self, secret_pks: Sequence[int]) -> dict[int, list[tuple[str, str]]]: ...
    def set_tags(self, secret_pk: int, tags: Sequence[tuple[str, str]]) -> None: ...
    def set_words(self, secret_pk: int, words: Mapping[str, Sequence[str]]) -> None:
        """Replace the search words: {field: words}."""

    # Access keys and installation facts
    def access_key(self, access_key_id: str) -> AccessKeyRow | None: ...
    def insert_access_key(self, row: AccessKeyRow) -> None: ...
    def get_meta(self, key: str) -> str | None: ...
    def set_meta(self, key: str, value: str) -> None: ...
    def delete_meta(self, key: str) -> None: ...

    # IAM. Names are matched regardless of case (AWS: "not distinguished by case"). Inline
    # policies, attachments and tags hang off an owner id: a user's AIDA..., a role's
    # AROA..., a managed policy's ANPA... (tags only).
    def insert_iam_user(self, row: IamUserRow) -> None:
        """AlreadyExists when the account has a user of that name (in any case)."""

    def iam_user(self, account_id: str, name: str) -> IamUserRow | None: ...
    def iam_user_by_arn(self, arn: str) -> IamUserRow | None: ...
    def list_iam_users(
        self, account_id: str, path_prefix: str, after: str | None, limit: int
    ) -> list[IamUserRow]:
        """Users whose path starts with ``path_prefix``, by lower-cased name, after ``after``
        (a lower-cased name: the last one of the previous page)."""

    def delete_iam_user(self, user_id: str) -> None:
        """Remove the user and its tags (callers check AWS's DeleteConflict rules first)."""

    def insert_iam_role(self, row: IamRoleRow) -> None:
        """AlreadyExists when the account has a role of that name (in any case)."""

    def iam_role(self, account_id: str, name: str) -> IamRoleRow | None: ...
    def list_iam_roles(
        self, account_id: str, path_prefix: str, after: str | None, limit: int
    ) -> list[IamRoleRow]: ...
    def delete_iam_role(self, role_id: str) -> None:
        """Remove the role and its tags; its sessions stay in ``access_keys`` until they
        expire (``delete_expired_sessions``), as in AWS, but ``identity_policies`` gives them
        nothing any more."""

    def user_access_keys(self, user_id: str) -> list[AccessKeyRow]:
        """The user's long-term keys, oldest first."""

    def set_access_key_status(self, access_key_id: str, status: str) -> None: ...
    def delete_access_key(self, access_key_id: str) -> None: ...
    def delete_expired_sessions(self, now: float) -> int:
        """Remove temporary credentials that expired at or before ``now``; how many."""

    def put_inline_policy(self, owner_id: str, name: str, document: str) -> None:
        """Create or replace."""

    def inline_policy(self, owner_id: str, name: str) -> str | None: ...
    def inline_policy_names(self, owner_id: str) -> list[str]:
        """Sorted by name."""

    def delete_inline_policy(self, owner_id: str, name: str) -> bool:
        """False when there was no such policy."""

    def insert_managed_policy(self, row: ManagedPolicyRow, document: str) -> None:
        """The policy with its default version; AlreadyExists on a taken name."""

    def managed_policy(self, arn: str) -> ManagedPolicyRow | None: ...
    def list_managed_policies(
        self,
        account_id: str,
        path_prefix: str,
        *,
        only_attached: bool,
        after: str | None,
        limit: int,
    ) -> list[ManagedPolicyRow]:
        """By lower-cased name, after ``after``."""

    def policy_version(self, policy_id: str, version_id: str) -> tuple[str, float] | None:
        """(document, created at)."""

    def delete_managed_policy(self, policy_id: str) -> None:
        """With its versions and tags (callers refuse while it is attached)."""

    def attach_policy(self, owner_id: str, policy_id: str) -> None:
        """Idempotent, as AttachUserPolicy is."""

    def detach_policy(self, owner_id: str, policy_id: str) -> bool:
        """False when it was not attached."""

    def attached_policies(self, owner_id: str) -> list[ManagedPolicyRow]:
        """Sorted by lower-cased name."""

    def iam_tags(self, owner_id: str) -> list[tuple[str, str]]:
        """In the order they were first set."""

    def set_iam_tags(self, owner_id: str, tags: Sequence[tuple[str, str]]) -> None:
        """Replace every tag of the owner."""

    def identity_policies(self, principal_arn: str, user_id: str | None = None) -> list[str]:
        """Every identity-based policy document that applies to ``principal_arn``.

        A user ARN: its inline policies, then the default version of each attached managed
        policy. An assumed-role session ARN (``arn:aws:sts::<acct>:assumed-role/<R>/<s>``):
        the same for role R. The root and unknown principals: []. ``user_id`` (the caller's
        aws:userid) pins the user or role: when given, a user or role deleted and created
        again under the same name since the credentials were issued gives nothing.
        """

    # -- rotation ------------------------------------------------------------------------------
    def function(self, account_id: str, name: str) -> FunctionRow | None: ...
    def insert_function(self, row: FunctionRow) -> None:
        """AlreadyExists when the name is taken."""

    def delete_function(self, account_id: str, name: str) -> bool: ...
    def functions(self, account_id: str) -> list[FunctionRow]:
        """By name."""

    def function_env_blobs(self) -> list[tuple[str, str, bytes]]:
        """(account id, name, sealed env) of every function, for master-key rotation."""

    def replace_function_env_blob(
        self, account_id: str, name: str, sealed: bytes, key_id: str
    ) -> None: ...
    def insert_rotation(self, row: RotationRow) -> int:
        """The new row's pk; AlreadyExists when the secret has a rotation for that version."""

    def rotation(self, pk: int) -> RotationRow | None: ...
    def rotation_for_version(self, secret_pk: int, version_id: str) -> RotationRow | None: ...
    def active_rotation(self, secret_pk: int) -> RotationRow | None:
        """The secret's pending or running rotation, if any."""

    def update_rotation(self, pk: int, **values: Any) -> None: ...
    def claim_rotation(self, pk: int, owner: str, now: float, lease_until: float) -> bool:
        """Take the lease on a pending rotation that is due, or a running one whose lease
        ran out (its node died); False when another node holds it or it is not due."""

    def renew_rotation(self, pk: int, owner: str, lease_until: float, **values: Any) -> bool:
        """Extend ``owner``'s lease on a running rotation (and set ``values``); False when the
        lease is no longer ``owner``'s (it ran out and another node took the rotation over)
        or the rotation was cancelled."""

    def claimable_rotations(self, now: float, limit: int) -> list[RotationRow]:
        """Pending rotations due by ``now`` and running ones whose lease ran out, oldest first."""

    def secret_by_pk(self, pk: int) -> SecretRow | None: ...
    def secrets_due_for_rotation(self, now: float, limit: int) -> list[SecretRow]:
        """Rotation enabled and ``rotation_due_at`` reached."""

    def insert_rotation_step(self, row: RotationStepRow) -> None: ...
    def rotations(
        self, account_id: str, secret_pk: int | None, limit: int
    ) -> list[tuple[RotationRow, str]]:
        """Newest first, each with its secret's ARN."""

    def rotation_steps(self, rotation_pk: int) -> list[RotationStepRow]:
        """In the order they ran."""

    def principal_tags(self, principal_arn: str) -> dict[str, str]:
        """The tags of the user, or of the role of an assumed-role session; {} otherwise."""

    # Master-key rotation: every sealed blob, with what its authenticated data is made of
    def version_blobs(self, after_pk: int, limit: int) -> list[tuple[int, str, str, bytes]]:
        """(version pk, secret ARN, version id, blob) of versions with a value, by pk."""

    def access_key_blobs(self) -> list[tuple[str, bytes]]: ...
    def replace_access_key_blob(self, access_key_id: str, sealed: bytes, key_id: str) -> None: ...

    # The audit trail (storage.audit)
    def insert_audit_events(self, rows: Sequence[AuditEventRow]) -> None: ...
    def audit_events(self, query: AuditQuery) -> list[AuditEventRow]: ...
    def unsealed_audit_events(self, limit: int) -> list[AuditEventRow]:
        """The oldest records not yet in a log file, by position."""

    def unsealed_audit_records(self, limit: int) -> list[SealableRecord]:
        """What sealing needs of the oldest records not yet in a log file, by position."""

    def unsealed_audit_count_reaches(self, count: int) -> bool: ...
    def audit_events_sealed_in(self, sequence: int) -> list[AuditEventRow]: ...
    def mark_audit_events_sealed(self, first_seq: int, last_seq: int, sequence: int) -> int:
        """Seal every unsealed record in [first_seq, last_seq] into ``sequence``; how many."""

    def delete_audit_events_sealed_through(self, sequence: int) -> int: ...
    def insert_audit_file(self, row: AuditFileRow) -> None:
        """Raises ConstraintViolation when the chain position is taken."""

    def audit_file(self, name: str) -> AuditFileRow | None: ...
    def audit_file_names(
        self, kind: str | None = None, *, after: int = 0
    ) -> list[tuple[str, str, int, float]]:
        """(name, kind, sequence, end_time) of the stored files past chain position
        ``after``, by sequence."""

    def newest_audit_digest(self) -> AuditFileRow | None: ...
    def delete_audit_files_through(self, kind: str, sequence: int) -> int: ...


class Store(Protocol):
    """A backend. Thread-safe: many threads may open transactions at once."""

    def read(self) -> AbstractContextManager[Transaction]: ...
    def write(self) -> AbstractContextManager[Transaction]: ...
    def write_at_once(self) -> AbstractContextManager[Transaction]:
        """A write that is one statement (atomic by itself), as cheaply as the backend can."""

    def write_lazily(self) -> AbstractContextManager[Transaction]:
        """A write transaction whose commit does not wait for the disk: atomic and seen by
        every reader once committed, and it survives a killed process, but a power loss or
        an OS crash may undo it (whole, never in part) unless a ``write`` committed after
        it: that commit makes everything committed before it durable too. For copies of
        what is durable elsewhere, such as the audit journal's records."""

    def close(self) -> None: ...
