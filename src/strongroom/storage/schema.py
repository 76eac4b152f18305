"""The tables, as SQLAlchemy Core metadata (queries are built from these).

Alembic migrations in ``migrations/versions`` create the same schema; they are written out
in full rather than generated from this module at run time, so that an old migration keeps
meaning what it meant. ``tests/storage/test_migrations.py`` checks that the two agree.

Times are epoch seconds as floats (what the wire carries), so both backends store one type.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

meta = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

secrets = sa.Table(
    "secrets",
    metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.String(12), nullable=False),
    sa.Column("region", sa.String(64), nullable=False),
    sa.Column("name", sa.String(512), nullable=False),
    sa.Column("arn", sa.String(2048), nullable=False, unique=True),
    sa.Column("description", sa.Text),
    sa.Column("kms_key_id", sa.String(2048)),
    sa.Column("secret_type", sa.String(256)),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("last_changed_at", sa.Float, nullable=False),
    # Day resolution; 0 = never read, so the column can be indexed for sorting without NULLs
    # ordering differently on SQLite and PostgreSQL.
    sa.Column("last_accessed_at", sa.Float, nullable=False, server_default="0"),
    sa.Column("deletion_date", sa.Float),  # set while scheduled for deletion
    sa.Column("rotation_enabled", sa.Boolean),
    sa.Column("rotation_lambda_arn", sa.String(2048)),
    sa.Column("rotation_rules", sa.Text),  # JSON, as the caller gave it
    sa.Column("last_rotated_at", sa.Float),
    sa.Column("next_rotation_at", sa.Float),
    sa.Column("tags_ever_set", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("resource_policy", sa.Text),
    sa.Column("owning_service", sa.String(128)),
    sa.Column("primary_region", sa.String(128)),
    sa.UniqueConstraint("account_id", "region", "name", name="uq_secrets_name"),
    sa.Index("ix_secrets_created", "account_id", "region", "created_at", "pk"),
    sa.Index("ix_secrets_changed", "account_id", "region", "last_changed_at", "pk"),
    sa.Index("ix_secrets_accessed", "account_id", "region", "last_accessed_at", "pk"),
    sa.Index("ix_secrets_deletion", "deletion_date"),
)

versions = sa.Table(
    "secret_versions",
    metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "secret_pk", sa.Integer, sa.ForeignKey("secrets.pk", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("version_id", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("last_accessed_at", sa.Float, nullable=False, server_default="0"),
    # Envelope-encrypted value (crypto.envelope); NULL for the empty AWSPENDING version that
    # RotateSecret creates before the rotation function stores a value.
    sa.Column("sealed", sa.LargeBinary),
    sa.Column("master_key_id", sa.String(64)),
    sa.UniqueConstraint("secret_pk", "version_id", name="uq_versions_id"),
)

stages = sa.Table(
    "version_stages",
    metadata,
    sa.Column(
        "secret_pk", sa.Integer, sa.ForeignKey("secrets.pk", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("stage", sa.String(256), nullable=False),
    sa.Column(
        "version_pk",
        sa.Integer,
        sa.ForeignKey("secret_versions.pk", ondelete="CASCADE"),
        nullable=False,
    ),
    # The database itself guarantees that a label is on at most one version of a secret.
    sa.PrimaryKeyConstraint("secret_pk", "stage", name="pk_version_stages"),
    sa.Index("ix_stages_version", "version_pk"),
)

tags = sa.Table(
    "secret_tags",
    metadata,
    sa.Column(
        "secret_pk", sa.Integer, sa.ForeignKey("secrets.pk", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("position", sa.Integer, nullable=False),  # insertion order, as AWS returns tags
    sa.Column("key", sa.String(128), nullable=False),
    sa.Column("value", sa.String(256), nullable=False),
    sa.PrimaryKeyConstraint("secret_pk", "key", name="pk_secret_tags"),
    sa.Index("ix_tags_key", "key"),
    sa.Index("ix_tags_value", "value"),
)

# Lower-cased words of the name, description and tags, for the word-prefix matching of the
# ListSecrets "description" and "all" filters (domain.search.words), served by an index.
words = sa.Table(
    "secret_words",
    metadata,
    sa.Column(
        "secret_pk", sa.Integer, sa.ForeignKey("secrets.pk", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("field", sa.String(16), nullable=False),  # name | description | tag-key | tag-value
    sa.Column("word", sa.String(2048), nullable=False),
    sa.PrimaryKeyConstraint("secret_pk", "field", "word", name="pk_secret_words"),
    sa.Index("ix_words_word", "word", "field"),
)

access_keys = sa.Table(
    "access_keys",
    metadata,
    sa.Column("access_key_id", sa.String(128), primary_key=True),
    sa.Column("account_id", sa.String(12), nullable=False),
    sa.Column("principal_arn", sa.String(2048), nullable=False),
    sa.Column("user_name", sa.String(128)),
    # Envelope-encrypted like secret values, bound to the access key id.
    sa.Column("sealed_secret", sa.LargeBinary, nullable=False),
    sa.Column("master_key_id", sa.String(64), nullable=False),
    sa.Column("session_token_hash", sa.String(64)),  # sha256 hex; only temporary credentials
    sa.Column("expires_at", sa.Float),
    sa.Column("status", sa.String(16), nullable=False, server_default="Active"),
    sa.Column("created_at", sa.Float, nullable=False),
    # Added by 0002 (IAM). aws:userid of the key's principal: AIDA... for a user's key,
    # "AROA...:<session>" for an assumed-role session; NULL for the root.
    sa.Column("user_id", sa.String(256)),
    sa.Column("role_arn", sa.String(2048)),  # assumed-role sessions only, with:
    sa.Column("session_name", sa.String(64)),
    sa.Index("ix_access_keys_user", "user_id"),
)

# -- IAM ---------------------------------------------------------------------------------------
# Names of users, roles and managed policies are unique per account regardless of case, as in
# AWS ("not distinguished by case"): ``name_key`` is the lower-cased name, and lookups by
# name go through it, so GetUser(UserName="ALICE") finds "alice".

iam_users = sa.Table(
    "iam_users",
    metadata,
    sa.Column("user_id", sa.String(128), primary_key=True),  # AIDA...
    sa.Column("account_id", sa.String(12), nullable=False),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("name_key", sa.String(64), nullable=False),
    sa.Column("path", sa.String(512), nullable=False),
    sa.Column("arn", sa.String(2048), nullable=False, unique=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.UniqueConstraint("account_id", "name_key", name="uq_iam_users_name"),
)

iam_roles = sa.Table(
    "iam_roles",
    metadata,
    sa.Column("role_id", sa.String(128), primary_key=True),  # AROA...
    sa.Column("account_id", sa.String(12), nullable=False),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("name_key", sa.String(64), nullable=False),
    sa.Column("path", sa.String(512), nullable=False),
    sa.Column("arn", sa.String(2048), nullable=False, unique=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("trust_policy", sa.Text, nullable=False),  # the document as the caller gave it
    sa.Column("description", sa.String(1000)),
    sa.Column("max_session_duration", sa.Integer, nullable=False),
    sa.UniqueConstraint("account_id", "name_key", name="uq_iam_roles_name"),
)

iam_policies = sa.Table(
    "iam_policies",
    metadata,
    sa.Column("policy_id", sa.String(128), primary_key=True),  # ANPA...
    sa.Column("account_id", sa.String(12), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("name_key", sa.String(128), nullable=False),
    sa.Column("path", sa.String(512), nullable=False),
    sa.Column("arn", sa.String(2048), nullable=False, unique=True),
    sa.Column("description", sa.String(1000)),
    sa.Column("default_version", sa.String(16), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.UniqueConstraint("account_id", "name_key", name="uq_iam_policies_name"),
)

iam_policy_versions = sa.Table(
    "iam_policy_versions",
    metadata,
    sa.Column(
        "policy_id",
        sa.String(128),
        sa.ForeignKey("iam_policies.policy_id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("version_id", sa.String(16), nullable=False),  # v1, v2, ...
    sa.Column("document", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.PrimaryKeyConstraint("policy_id", "version_id", name="pk_iam_policy_versions"),
)

# Inline policies, attachments and tags belong to a user or a role, named by its unique id
# (AIDA... / AROA...; a managed policy's ANPA... for its tags), so that a user or role
# deleted and created again under the same name does not inherit what the old one had.
iam_inline_policies = sa.Table(
    "iam_inline_policies",
    metadata,
    sa.Column("owner_id", sa.String(128), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("document", sa.Text, nullable=False),
    sa.PrimaryKeyConstraint("owner_id", "name", name="pk_iam_inline_policies"),
)

iam_attachments = sa.Table(
    "iam_attachments",
    metadata,
    sa.Column("owner_id", sa.String(128), nullable=False),
    sa.Column(
        "policy_id",
        sa.String(128),
        sa.ForeignKey("iam_policies.policy_id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.PrimaryKeyConstraint("owner_id", "policy_id", name="pk_iam_attachments"),
    sa.Index("ix_iam_attachments_policy", "policy_id"),
)

iam_tags = sa.Table(
    "iam_tags",
    metadata,
    sa.Column("owner_id", sa.String(128), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),  # insertion order, as AWS lists tags
    sa.Column("key", sa.String(128), nullable=False),
    sa.Column("value", sa.String(256), nullable=False),
    sa.PrimaryKeyConstraint("owner_id", "key", name="pk_iam_tags"),
)

# -- Rotation (0003) -----------------------------------------------------------------------------
# secrets.rotation_due_at: when the scheduler starts the next rotation, a random time inside the
# window whose start DescribeSecret shows as NextRotationDate. access_keys.session_policy: the
# only identity policy of a rotation function's temporary credentials (the secret it rotates).
secrets.append_column(sa.Column("rotation_due_at", sa.Float))
# Every server process asks "which rotations are due?" every few seconds: an index, so that
# the question costs nothing however many secrets there are.
sa.Index("ix_secrets_rotation_due", secrets.c.rotation_due_at)
access_keys.append_column(sa.Column("session_policy", sa.Text))

# Registered rotation functions (`strongroom functions add`): a local handler file, an HTTP
# endpoint, or a built-in rotator. The environment may hold credentials: sealed like values.
rotation_functions = sa.Table(
    "rotation_functions",
    metadata,
    sa.Column("account_id", sa.String(12), nullable=False),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("handler", sa.Text),
    sa.Column("url", sa.Text),
    sa.Column("builtin", sa.String(64)),
    sa.Column("sealed_env", sa.LargeBinary, nullable=False),
    sa.Column("master_key_id", sa.String(64), nullable=False),
    sa.Column("timeout", sa.Float, nullable=False),
    sa.Column("python", sa.Text),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.PrimaryKeyConstraint("account_id", "name", name="pk_rotation_functions"),
)

# One row per rotation (RotateSecret or a scheduled start); its retries are attempts of it.
rotations = sa.Table(
    "rotations",
    metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "secret_pk", sa.Integer, sa.ForeignKey("secrets.pk", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("version_id", sa.String(64), nullable=False),
    sa.Column("function_arn", sa.String(2048), nullable=False),
    sa.Column("immediately", sa.Boolean, nullable=False),
    # pending|running|succeeded|failed|cancelled|abandoned
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("step", sa.String(16)),  # the step running, or the last one run
    sa.Column("error", sa.Text),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("next_attempt_at", sa.Float),  # pending rotations: when to (re)start
    sa.Column("finished_at", sa.Float),
    # Which server process runs it, until when (a crashed node's rotation is taken over).
    sa.Column("lease_owner", sa.String(64)),
    sa.Column("lease_expires_at", sa.Float),
    sa.UniqueConstraint("secret_pk", "version_id", name="uq_rotations_version"),
    sa.Index("ix_rotations_state", "state", "next_attempt_at"),
)

rotation_steps = sa.Table(
    "rotation_steps",
    metadata,
    sa.Column(
        "rotation_pk",
        sa.Integer,
        sa.ForeignKey("rotations.pk", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("step", sa.String(16), nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("duration", sa.Float, nullable=False),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("output", sa.Text),  # what the function printed, secret values masked
    sa.PrimaryKeyConstraint("rotation_pk", "attempt", "step", name="pk_rotation_steps"),
)

# The audit trail (strongroom.audit). Every call's CloudTrail record, written in the call's
# own transaction (writes) or group-committed before the reply (everything else); the few
# columns beside the record are what `audit lookup` and LookupEvents filter on.
audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(36), nullable=False),
    sa.Column("event_time", sa.Float, nullable=False),
    sa.Column("event_source", sa.String(64), nullable=False),
    sa.Column("event_name", sa.String(128), nullable=False),
    sa.Column("aws_region", sa.String(64)),
    sa.Column("user_name", sa.String(512)),
    sa.Column("access_key_id", sa.String(128)),
    sa.Column("resource_name", sa.String(2048)),
    sa.Column("read_only", sa.Boolean, nullable=False),
    sa.Column("record", sa.Text, nullable=False),  # the CloudTrail record, as JSON
    # The chain position of the digest whose log file holds this record; NULL until sealed.
    sa.Column("sealed_in", sa.Integer),
    # One index besides the key: every index is paid on every call, while lookups are rare
    # and read newest first by position (the key), filtering as they go.
    sa.Index("ix_audit_events_time", "event_time"),
    # Only the records not yet in a log file: the index stays as small as the backlog.
    sa.Index(
        "ix_audit_events_unsealed",
        "seq",
        sqlite_where=sa.text("sealed_in IS NULL"),
        postgresql_where=sa.text("sealed_in IS NULL"),
    ),
    # Positions are never reused (SQLite would reuse the highest after it is deleted), so
    # a NextToken or `audit tail -f` that remembers one never skips a later record.
    sqlite_autoincrement=True,
)

# Sealed CloudTrail log files and their signed digests, as CloudTrail would store them in
# S3 (gzip JSON); `strongroom audit export` writes them out as files. A log file and the
# digest that lists it share their chain position, which is unique per kind: two nodes that
# seal at once cannot both extend the chain.
audit_files = sa.Table(
    "audit_files",
    metadata,
    sa.Column("name", sa.String(512), primary_key=True),  # "logs/..." or "digests/..."
    sa.Column("kind", sa.String(8), nullable=False),  # "log" | "digest"
    sa.Column("sequence", sa.Integer, nullable=False),
    sa.Column("content", sa.LargeBinary, nullable=False),
    sa.Column("end_time", sa.Float, nullable=False),  # the newest event it covers
    sa.UniqueConstraint("kind", "sequence", name="uq_audit_files_sequence"),
)
