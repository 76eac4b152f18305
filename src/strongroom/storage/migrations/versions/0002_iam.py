"""IAM: users, roles, managed policies and their versions, inline policies, attachments,
tags; access keys learn whose they are (user id, or role and session).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def _named(id_column: str) -> list[sa.Column[object]]:
    """The columns users, roles and managed policies share, after their id."""
    return [
        sa.Column(id_column, sa.String(128), primary_key=True),
        sa.Column("account_id", sa.String(12), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "iam_users",
        *_named("user_id"),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("name_key", sa.String(64), nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("arn", sa.String(2048), nullable=False, unique=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("account_id", "name_key", name="uq_iam_users_name"),
    )
    op.create_table(
        "iam_roles",
        *_named("role_id"),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("name_key", sa.String(64), nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("arn", sa.String(2048), nullable=False, unique=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("trust_policy", sa.Text, nullable=False),
        sa.Column("description", sa.String(1000)),
        sa.Column("max_session_duration", sa.Integer, nullable=False),
        sa.UniqueConstraint("account_id", "name_key", name="uq_iam_roles_name"),
    )
    op.create_table(
        "iam_policies",
        *_named("policy_id"),
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
    op.create_table(
        "iam_policy_versions",
        sa.Column(
            "policy_id",
            sa.String(128),
            sa.ForeignKey("iam_policies.policy_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("version_id", sa.String(16), nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("policy_id", "version_id", name="pk_iam_policy_versions"),
    )
    op.create_table(
        "iam_inline_policies",
        sa.Column("owner_id", sa.String(128), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("owner_id", "name", name="pk_iam_inline_policies"),
    )
    op.create_table(
        "iam_attachments",
        sa.Column("owner_id", sa.String(128), nullable=False),
        sa.Column(
            "policy_id",
            sa.String(128),
            sa.ForeignKey("iam_policies.policy_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("owner_id", "policy_id", name="pk_iam_attachments"),
    )
    op.create_index("ix_iam_attachments_policy", "iam_attachments", ["policy_id"])
    op.create_table(
        "iam_tags",
        sa.Column("owner_id", sa.String(128), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("value", sa.String(256), nullable=False),
        sa.PrimaryKeyConstraint("owner_id", "key", name="pk_iam_tags"),
    )
    # ADD COLUMN of nullable columns without defaults: no table rebuild on SQLite.
    op.add_column("access_keys", sa.Column("user_id", sa.String(256)))
    op.add_column("access_keys", sa.Column("role_arn", sa.String(2048)))
    op.add_column("access_keys", sa.Column("session_name", sa.String(64)))
    op.create_index("ix_access_keys_user", "access_keys", ["user_id"])
