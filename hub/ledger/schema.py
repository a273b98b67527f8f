"""Every table of the hub's state, as SQLAlchemy Core (the Alembic migrations create them).

Invariants:

* ``entries``, ``subtrees``, ``checkpoints`` and ``roots`` are append-only: no code path
  updates or deletes their rows, and database triggers (created by the migrations) refuse it
  anyway.
* ``roots`` holds each published trust-root rotation (version ≥ 2) verbatim, keyed by its
  version; ``digest`` is the hex SHA-256 of ``envelope``, ``ledger_idx`` its
  ``root_publication`` entry. The pinned ``root.json`` the chain starts from is not in it.
* ``entries.idx`` runs 0..n-1 without gaps; ``(node_id, seq)`` is unique, so a record can be
  appended once only. ``envelope`` holds the bytes exactly as the node signed and sent them.
* ``subtrees`` holds the hash of every *perfect* Merkle subtree ``(level, idx)`` that is
  complete (level 0 = the leaves), keyed by :func:`subtree_key`; see :mod:`trust.merkle`.
* ``chain_hash`` of entry i is SHA-256(chain_hash of i-1 ‖ leaf_hash of i), the chain before
  entry 0 being 32 zero bytes.
* Times are stored in UTC and always read back timezone-aware.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

__all__ = [
    "metadata",
    "UTCDateTime",
    "entries",
    "subtrees",
    "subtree_key",
    "subtree_of",
    "checkpoints",
    "nodes",
    "node_keys",
    "node_heads",
    "enrollment_tokens",
    "policies",
    "approvals",
    "heartbeats",
    "equivocations",
    "roots",
    "APPEND_ONLY_TABLES",
]

APPEND_ONLY_TABLES = ("entries", "subtrees", "checkpoints", "roots")


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite keeps no offset)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime; hub times are UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

NODE = sa.String(128)
HEX = sa.String(64)

entries = sa.Table(
    "entries",
    metadata,
    sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("node_id", NODE, nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("envelope", sa.LargeBinary, nullable=False),
    sa.Column("envelope_sha256", HEX, nullable=False),
    sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
    sa.Column("chain_hash", sa.LargeBinary(32), nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("node_id", "seq"),
)

SUBTREE_LEVEL_BITS = 6


def subtree_key(level: int, idx: int) -> int:
    """The ``subtrees.id`` of perfect subtree ``(level, idx)``: ``idx << 6 | level``.

    One integer key lets a proof fetch its O(log n) nodes with one indexed ``IN`` list on
    every backend (SQLite does not index a row-value ``IN``).
    """
    return (idx << SUBTREE_LEVEL_BITS) | level


def subtree_of(key: int) -> tuple[int, int]:
    """The ``(level, idx)`` of a ``subtrees.id``."""
    return key & ((1 << SUBTREE_LEVEL_BITS) - 1), key >> SUBTREE_LEVEL_BITS


subtrees = sa.Table(
    "subtrees",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("hash", sa.LargeBinary(32), nullable=False),
)

checkpoints = sa.Table(
    "checkpoints",
    metadata,
    sa.Column("size", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
    sa.Column("note", sa.LargeBinary, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

nodes = sa.Table(
    "nodes",
    metadata,
    sa.Column("node_id", NODE, primary_key=True),
    sa.Column("key_id", HEX, nullable=False),
    sa.Column("public_key", sa.LargeBinary(32), nullable=False),
    sa.Column("enrolled_at", UTCDateTime, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
)

node_keys = sa.Table(
    "node_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("node_id", NODE, nullable=False, index=True),
    sa.Column("key_id", HEX, nullable=False),
    sa.Column("public_key", sa.LargeBinary(32), nullable=False),
    sa.Column("added_at", UTCDateTime, nullable=False),
    sa.Column("retired_at", UTCDateTime, nullable=True),
    sa.Column("ledger_idx", sa.BigInteger, nullable=True),
    sa.UniqueConstraint("node_id", "key_id"),
)

node_heads = sa.Table(
    "node_heads",
    metadata,
    sa.Column("node_id", NODE, primary_key=True),
    sa.Column("last_seq", sa.BigInteger, nullable=False),
    sa.Column("last_envelope_sha256", HEX, nullable=False),
)

enrollment_tokens = sa.Table(
    "enrollment_tokens",
    metadata,
    sa.Column("token_sha256", HEX, primary_key=True),
    sa.Column("node_id", NODE, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("used_at", UTCDateTime, nullable=True),
)

policies = sa.Table(
    "policies",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("version", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("digest", HEX, nullable=False),
    sa.Column("envelope", sa.LargeBinary, nullable=False),
    sa.Column("published_at", UTCDateTime, nullable=False),
    sa.Column("ledger_idx", sa.BigInteger, nullable=False),
)

approvals = sa.Table(
    "approvals",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("role", sa.String(200), nullable=False),
    sa.Column("subject", sa.String(500), nullable=False, index=True),
    sa.Column("digest", HEX, nullable=False, unique=True),
    sa.Column("envelope", sa.LargeBinary, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("ledger_idx", sa.BigInteger, nullable=False),
)

heartbeats = sa.Table(
    "heartbeats",
    metadata,
    sa.Column("node_id", NODE, primary_key=True),
    sa.Column("last_seen", UTCDateTime, nullable=False),
    sa.Column("agent_version", sa.String(100), nullable=False),
    sa.Column("policy_name", sa.String(200), nullable=True),
    sa.Column("policy_version", sa.BigInteger, nullable=True),
)

equivocations = sa.Table(
    "equivocations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("node_id", NODE, nullable=False, index=True),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("existing_sha256", HEX, nullable=False),
    sa.Column("offered_envelope", sa.LargeBinary, nullable=False),
    sa.Column("flagged_at", UTCDateTime, nullable=False),
)

roots = sa.Table(
    "roots",
    metadata,
    sa.Column("version", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("digest", HEX, nullable=False),
    sa.Column("envelope", sa.LargeBinary, nullable=False),
    sa.Column("ledger_idx", sa.BigInteger, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)
