"""The initial schema: secrets, versions, labels, tags, search words, access keys.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def _secret_fk() -> sa.Column[int]:
    return sa.Column(
        "secret_pk", sa.Integer, sa.ForeignKey("secrets.pk", ondelete="CASCADE"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "secrets",
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
        sa.Column("last_accessed_at", sa.Float, nullable=False, server_default="0"),
        sa.Column("deletion_date", sa.Float),
        sa.Column("rotation_enabled", sa.Boolean),
        sa.Column("rotation_lambda_arn", sa.String(2048)),
        sa.Column("rotation_rules", sa.Text),
        sa.Column("last_rotated_at", sa.Float),
        sa.Column("next_rotation_at", sa.Float),
        sa.Column("tags_ever_set", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("resource_policy", sa.Text),
        sa.Column("owning_service", sa.String(128)),
        sa.Column("primary_region", sa.String(128)),
        sa.UniqueConstraint("account_id", "region", "name", name="uq_secrets_name"),
    )
    for name, column in (
        ("ix_secrets_created", "created_at"),
        ("ix_secrets_changed", "last_changed_at"),
        ("ix_secrets_accessed", "last_accessed_at"),
    ):
        op.create_index(name, "secrets", ["account_id", "region", column, "pk"])
    op.create_index("ix_secrets_deletion", "secrets", ["deletion_date"])
    op.create_table(
        "secret_versions",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        _secret_fk(),
        sa.Column("version_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("last_accessed_at", sa.Float, nullable=False, server_default="0"),
        sa.Column("sealed", sa.LargeBinary),
        sa.Column("master_key_id", sa.String(64)),
        sa.UniqueConstraint("secret_pk", "version_id", name="uq_versions_id"),
    )
    op.create_table(
        "version_stages",
        _secret_fk(),
        sa.Column("stage", sa.String(256), nullable=False),
        sa.Column(
            "version_pk",
            sa.Integer,
            sa.ForeignKey("secret_versions.pk", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("secret_pk", "stage", name="pk_version_stages"),
    )
    op.create_index("ix_stages_version", "version_stages", ["version_pk"])
    op.create_table(
        "secret_tags",
        _secret_fk(),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("value", sa.String(256), nullable=False),
        sa.PrimaryKeyConstraint("secret_pk", "key", name="pk_secret_tags"),
    )
    op.create_index("ix_tags_key", "secret_tags", ["key"])
    op.create_index("ix_tags_value", "secret_tags", ["value"])
    op.create_table(
        "secret_words",
        _secret_fk(),
        sa.Column("field", sa.String(16), nullable=False),
        sa.Column("word", sa.String(2048), nullable=False),
        sa.PrimaryKeyConstraint("secret_pk", "field", "word", name="pk_secret_words"),
    )
    op.create_index("ix_words_word", "secret_words", ["word", "field"])
    op.create_table(
        "access_keys",
        sa.Column("access_key_id", sa.String(128), primary_key=True),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("principal_arn", sa.String(2048), nullable=False),
        sa.Column("user_name", sa.String(128)),
        sa.Column("sealed_secret", sa.LargeBinary, nullable=False),
        sa.Column("master_key_id", sa.String(64), nullable=False),
        sa.Column("session_token_hash", sa.String(64)),
        sa.Column("expires_at", sa.Float),
        sa.Column("status", sa.String(16), nullable=False, server_default="Active"),
        sa.Column("created_at", sa.Float, nullable=False),
    )
