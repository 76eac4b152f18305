"""The audit trail: every call's CloudTrail record; sealed log files and signed digests.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table(
        "audit_events",
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
        sa.Column("record", sa.Text, nullable=False),
        sa.Column("sealed_in", sa.Integer),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_audit_events_time", "audit_events", ["event_time"])
    op.create_index(
        "ix_audit_events_unsealed",
        "audit_events",
        ["seq"],
        sqlite_where=sa.text("sealed_in IS NULL"),
        postgresql_where=sa.text("sealed_in IS NULL"),
    )
    op.create_table(
        "audit_files",
        sa.Column("name", sa.String(512), primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("sequence", sa.Integer, nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.Column("end_time", sa.Float, nullable=False),
        sa.UniqueConstraint("kind", "sequence", name="uq_audit_files_sequence"),
    )


def downgrade() -> None:
    op.drop_table("audit_files")
    op.drop_table("audit_events")
