"""Initial schema: accounts, devices, device lists, prekeys, mailboxes, regular threads, links.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("handle", sa.String(32), nullable=False),
        sa.Column("display_name", sa.Text, nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("identity_key", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("handle", name="pk_accounts"),
    )
    op.create_table(
        "devices",
        sa.Column("device_id", sa.String(16), nullable=False),
        sa.Column("handle", sa.String(32), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("curve25519", sa.String(64), nullable=False),
        sa.Column("ed25519", sa.String(64), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("last_seen", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("device_id", name="pk_devices"),
        sa.ForeignKeyConstraint(["handle"], ["accounts.handle"], ondelete="CASCADE",
                                name="fk_devices_handle_accounts"),
        sa.UniqueConstraint("token_hash", name="uq_devices_token_hash"),
    )
    op.create_index("ix_devices_handle", "devices", ["handle"])
    op.create_table(
        "device_lists",
        sa.Column("handle", sa.String(32), nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("handle", name="pk_device_lists"),
        sa.ForeignKeyConstraint(["handle"], ["accounts.handle"], ondelete="CASCADE",
                                name="fk_device_lists_handle_accounts"),
    )
    op.create_table(
        "one_time_keys",
        sa.Column("id", BigId, nullable=False, autoincrement=True),
        sa.Column("device_id", sa.String(16), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_one_time_keys"),
        sa.ForeignKeyConstraint(["device_id"], ["devices.device_id"], ondelete="CASCADE",
                                name="fk_one_time_keys_device_id_devices"),
        sa.UniqueConstraint("device_id", "key_id", name="uq_one_time_keys_device_id_key_id"),
    )
    op.create_table(
        "fallback_keys",
        sa.Column("device_id", sa.String(16), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("device_id", name="pk_fallback_keys"),
        sa.ForeignKeyConstraint(["device_id"], ["devices.device_id"], ondelete="CASCADE",
                                name="fk_fallback_keys_device_id_devices"),
    )
    op.create_table(
        "envelopes",
        sa.Column("id", BigId, nullable=False, autoincrement=True),
        sa.Column("device_id", sa.String(16), nullable=False),
        sa.Column("kind", sa.Integer, nullable=False),
        sa.Column("sender", sa.String(32), nullable=False),
        sa.Column("sender_device", sa.String(16), nullable=False),
        sa.Column("server_ts", sa.BigInteger, nullable=False),
        sa.Column("olm_type", sa.Integer, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("client_message_id", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_envelopes"),
        sa.ForeignKeyConstraint(["device_id"], ["devices.device_id"], ondelete="CASCADE",
                                name="fk_envelopes_device_id_devices"),
    )
    op.create_index("ix_envelopes_device_id_id", "envelopes", ["device_id", "id"])
    op.create_index("ix_envelopes_server_ts", "envelopes", ["server_ts"])
    op.create_table(
        "sent_batches",
        sa.Column("sender_device", sa.String(16), nullable=False),
        sa.Column("client_message_id", sa.String(128), nullable=False),
        sa.Column("server_ts", sa.BigInteger, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("sender_device", "client_message_id", name="pk_sent_batches"),
    )
    op.create_index("ix_sent_batches_server_ts", "sent_batches", ["server_ts"])
    op.create_table(
        "regular_messages",
        sa.Column("id", BigId, nullable=False, autoincrement=True),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("thread_key", sa.String(80), nullable=False),
        sa.Column("sender", sa.String(32), nullable=False),
        sa.Column("sender_device", sa.String(16), nullable=False),
        sa.Column("recipient", sa.String(32), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("client_message_id", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_regular_messages"),
        sa.UniqueConstraint("message_id", name="uq_regular_messages_message_id"),
    )
    op.create_index("ix_regular_messages_thread_key_id", "regular_messages", ["thread_key", "id"])
    op.create_index("ix_regular_messages_sender_cmid", "regular_messages", ["sender", "client_message_id"],
                    unique=True)
    op.create_index("ix_regular_messages_recipient", "regular_messages", ["recipient"])
    op.create_table(
        "links",
        sa.Column("link_id", sa.String(16), nullable=False),
        sa.Column("handle", sa.String(32), nullable=False),
        sa.Column("creator_device", sa.String(16), nullable=False),
        sa.Column("ephemeral_key", sa.String(64), nullable=False),
        sa.Column("request_json", sa.Text, nullable=True),
        sa.Column("response_ciphertext", sa.Text, nullable=True),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("link_id", name="pk_links"),
        sa.ForeignKeyConstraint(["handle"], ["accounts.handle"], ondelete="CASCADE",
                                name="fk_links_handle_accounts"),
    )


def downgrade() -> None:
    for table in ("links", "regular_messages", "sent_batches", "envelopes", "fallback_keys",
                  "one_time_keys", "device_lists", "devices", "accounts"):
        op.drop_table(table)
