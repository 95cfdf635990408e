"""Issue 3: franking columns and key, envelope metadata log, blobs, regular media, blocks, reports.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "server_secrets",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("value", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_server_secrets"),
    )
    op.add_column("envelopes", sa.Column("commitment", sa.LargeBinary, nullable=True))
    op.add_column("envelopes", sa.Column("franking_tag", sa.LargeBinary, nullable=True))
    op.create_table(
        "envelope_log",
        sa.Column("id", BigId, nullable=False, autoincrement=True),
        sa.Column("sender", sa.String(32), nullable=False),
        sa.Column("sender_device", sa.String(16), nullable=False),
        sa.Column("recipient_handle", sa.String(32), nullable=False),
        sa.Column("recipient_device", sa.String(16), nullable=False),
        sa.Column("server_ts", sa.BigInteger, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_envelope_log"),
    )
    op.create_index("ix_envelope_log_sender", "envelope_log", ["sender"])
    op.create_index("ix_envelope_log_recipient_handle", "envelope_log", ["recipient_handle"])
    op.create_table(
        "blobs",
        sa.Column("blob_id", sa.String(32), nullable=False),
        sa.Column("uploader", sa.String(32), nullable=False),
        sa.Column("uploader_device", sa.String(16), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("downloads_wanted", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("blob_id", name="pk_blobs"),
    )
    op.create_index("ix_blobs_expires_at", "blobs", ["expires_at"])
    op.create_table(
        "blob_downloads",
        sa.Column("blob_id", sa.String(32), nullable=False),
        sa.Column("device_id", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("blob_id", "device_id", name="pk_blob_downloads"),
        sa.ForeignKeyConstraint(["blob_id"], ["blobs.blob_id"], ondelete="CASCADE",
                                name="fk_blob_downloads_blob_id_blobs"),
    )
    op.add_column("regular_messages", sa.Column("kind", sa.String(16), nullable=False,
                                                server_default="text"))
    op.add_column("regular_messages", sa.Column("attachment_json", sa.Text, nullable=True))
    op.add_column("regular_messages", sa.Column("sticker", sa.String(128), nullable=False,
                                                server_default=""))
    op.add_column("regular_messages", sa.Column("flagged", sa.Boolean, nullable=False,
                                                server_default=sa.false()))
    op.add_column("regular_messages", sa.Column("hidden_for", sa.String(32), nullable=True))
    op.create_table(
        "blocks",
        sa.Column("blocker", sa.String(32), nullable=False),
        sa.Column("blocked", sa.String(32), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("blocker", "blocked", name="pk_blocks"),
        sa.ForeignKeyConstraint(["blocker"], ["accounts.handle"], ondelete="CASCADE",
                                name="fk_blocks_blocker_accounts"),
    )
    op.create_table(
        "reports",
        sa.Column("report_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("reporter", sa.String(32), nullable=False),
        sa.Column("reporter_device", sa.String(16), nullable=False),
        sa.Column("peer", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("content_json", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("report_id", name="pk_reports"),
    )
    op.create_index("ix_reports_created_at", "reports", ["created_at"])


def downgrade() -> None:
    for table in ("reports", "blocks", "blob_downloads", "blobs", "envelope_log", "server_secrets"):
        op.drop_table(table)
    with op.batch_alter_table("regular_messages") as batch:
        for column in ("hidden_for", "flagged", "sticker", "attachment_json", "kind"):
            batch.drop_column(column)
    with op.batch_alter_table("envelopes") as batch:
        for column in ("franking_tag", "commitment"):
            batch.drop_column(column)
