"""SQLAlchemy Core tables used by the queries. Migrations spell out their own DDL (versions/),
so a later change here must come with a new revision."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
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
)

__all__ = [
    "accounts",
    "device_lists",
    "devices",
    "envelopes",
    "fallback_keys",
    "links",
    "metadata",
    "one_time_keys",
    "regular_messages",
    "sent_batches",
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
