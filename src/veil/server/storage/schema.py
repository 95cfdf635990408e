"""SQLAlchemy Core tables used by the queries. Migrations spell out their own DDL (versions/),
so a later change here must come with a new revision."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

__all__ = [
    "accounts",
    "blob_downloads",
    "blobs",
    "blocks",
    "device_lists",
    "devices",
    "envelope_log",
    "envelopes",
    "fallback_keys",
    "links",
    "metadata",
    "one_time_keys",
    "regular_messages",
    "reports",
    "sent_batches",
    "server_secrets",
]

# SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid alias), never BIGINT.
BigId = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

accounts = Table(
    "accounts", metadata,
    Column("handle", String(32), primary_key=True),
    Column("display_name", Text, nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("identity_key", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

devices = Table(
    "devices", metadata,
    Column("device_id", String(16), primary_key=True),
    Column("handle", String(32), ForeignKey("accounts.handle", ondelete="CASCADE"), nullable=False,
           index=True),
    Column("name", Text, nullable=False),
    Column("curve25519", String(64), nullable=False),
    Column("ed25519", String(64), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("state", String(8), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("last_seen", BigInteger, nullable=False),
)

device_lists = Table(
    "device_lists", metadata,
    Column("handle", String(32), ForeignKey("accounts.handle", ondelete="CASCADE"), primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("body", Text, nullable=False),
)

one_time_keys = Table(
    "one_time_keys", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("device_id", String(16), ForeignKey("devices.device_id", ondelete="CASCADE"), nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("key", String(64), nullable=False),
    Column("signature", String(128), nullable=False),
    UniqueConstraint("device_id", "key_id"),
)

fallback_keys = Table(
    "fallback_keys", metadata,
    Column("device_id", String(16), ForeignKey("devices.device_id", ondelete="CASCADE"), primary_key=True),
    Column("key_id", String(64), nullable=False),
    Column("key", String(64), nullable=False),
    Column("signature", String(128), nullable=False),
)

envelopes = Table(
    "envelopes", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("device_id", String(16), ForeignKey("devices.device_id", ondelete="CASCADE"), nullable=False),
    Column("kind", Integer, nullable=False),
    Column("sender", String(32), nullable=False),
    Column("sender_device", String(16), nullable=False),
    Column("server_ts", BigInteger, nullable=False),
    Column("olm_type", Integer, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("client_message_id", String(128), nullable=False),
    Column("commitment", LargeBinary, nullable=True),  # franking (0002); NULL when absent
    Column("franking_tag", LargeBinary, nullable=True),
    Index("ix_envelopes_device_id_id", "device_id", "id"),
    Index("ix_envelopes_server_ts", "server_ts"),
)

sent_batches = Table(
    "sent_batches", metadata,
    Column("sender_device", String(16), nullable=False),
    Column("client_message_id", String(128), nullable=False),
    Column("server_ts", BigInteger, nullable=False),
    Column("count", Integer, nullable=False),
    PrimaryKeyConstraint("sender_device", "client_message_id"),
    Index("ix_sent_batches_server_ts", "server_ts"),
)

regular_messages = Table(
    "regular_messages", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("message_id", String(64), nullable=False, unique=True),
    Column("thread_key", String(80), nullable=False),
    Column("sender", String(32), nullable=False),
    Column("sender_device", String(16), nullable=False),
    Column("recipient", String(32), nullable=False),
    Column("text", Text, nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("client_message_id", String(128), nullable=False),
    # 0002: media, stickers, word-list flag, and who must not see it (a blocked sender's message)
    Column("kind", String(16), nullable=False, server_default="text"),
    Column("attachment_json", Text, nullable=True),
    Column("sticker", String(128), nullable=False, server_default=""),
    Column("flagged", Boolean, nullable=False, server_default=false()),
    Column("hidden_for", String(32), nullable=True),
    Index("ix_regular_messages_thread_key_id", "thread_key", "id"),
    Index("ix_regular_messages_sender_cmid", "sender", "client_message_id", unique=True),
    Index("ix_regular_messages_recipient", "recipient"),
)

links = Table(
    "links", metadata,
    Column("link_id", String(16), primary_key=True),
    Column("handle", String(32), ForeignKey("accounts.handle", ondelete="CASCADE"), nullable=False),
    Column("creator_device", String(16), nullable=False),
    Column("ephemeral_key", String(64), nullable=False),
    Column("request_json", Text, nullable=True),
    Column("response_ciphertext", Text, nullable=True),
    Column("expires_at", BigInteger, nullable=False),
)

# -- 0002: franking key, envelope metadata log, blobs, blocks, reports -------------------------
server_secrets = Table(
    "server_secrets", metadata,
    Column("name", String(32), primary_key=True),
    Column("value", LargeBinary, nullable=False),
)

envelope_log = Table(
    "envelope_log", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("sender", String(32), nullable=False),
    Column("sender_device", String(16), nullable=False),
    Column("recipient_handle", String(32), nullable=False),
    Column("recipient_device", String(16), nullable=False),
    Column("server_ts", BigInteger, nullable=False),
    Column("size", Integer, nullable=False),
    Index("ix_envelope_log_sender", "sender"),
    Index("ix_envelope_log_recipient_handle", "recipient_handle"),
)

blobs = Table(
    "blobs", metadata,
    Column("blob_id", String(32), primary_key=True),
    Column("uploader", String(32), nullable=False),
    Column("uploader_device", String(16), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("downloads_wanted", Integer, nullable=False),
    Index("ix_blobs_expires_at", "expires_at"),
)

blob_downloads = Table(
    "blob_downloads", metadata,
    Column("blob_id", String(32), ForeignKey("blobs.blob_id", ondelete="CASCADE"), nullable=False),
    Column("device_id", String(16), nullable=False),
    PrimaryKeyConstraint("blob_id", "device_id"),
)

blocks = Table(
    "blocks", metadata,
    Column("blocker", String(32), ForeignKey("accounts.handle", ondelete="CASCADE"), nullable=False),
    Column("blocked", String(32), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("blocker", "blocked"),
)

reports = Table(
    "reports", metadata,
    Column("report_id", String(32), primary_key=True),
    Column("created_at", BigInteger, nullable=False),
    Column("reporter", String(32), nullable=False),
    Column("reporter_device", String(16), nullable=False),
    Column("peer", String(32), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("verdict", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("content_json", Text, nullable=False),
    Index("ix_reports_created_at", "created_at"),
)
