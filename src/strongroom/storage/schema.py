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
)
