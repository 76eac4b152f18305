"""Rotation: registered functions, rotations and their steps; when the next scheduled
rotation starts; the session policy of a rotation function's credentials.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    # ADD COLUMN of nullable columns without defaults: no table rebuild on SQLite.
    op.add_column("secrets", sa.Column("rotation_due_at", sa.Float))
    op.create_index("ix_secrets_rotation_due", "secrets", ["rotation_due_at"])
    op.add_column("access_keys", sa.Column("session_policy", sa.Text))
    op.create_table(
        "rotation_functions",
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
    op.create_table(
        "rotations",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "secret_pk",
            sa.Integer,
            sa.ForeignKey("secrets.pk", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("version_id", sa.String(64), nullable=False),
        sa.Column("function_arn", sa.String(2048), nullable=False),
        sa.Column("immediately", sa.Boolean, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("step", sa.String(16)),
        sa.Column("error", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("next_attempt_at", sa.Float),
        sa.Column("finished_at", sa.Float),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_expires_at", sa.Float),
        sa.UniqueConstraint("secret_pk", "version_id", name="uq_rotations_version"),
    )
    op.create_index("ix_rotations_state", "rotations", ["state", "next_attempt_at"])
    op.create_table(
        "rotation_steps",
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
        sa.Column("output", sa.Text),
        sa.PrimaryKeyConstraint("rotation_pk", "attempt", "step", name="pk_rotation_steps"),
    )
