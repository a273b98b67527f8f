"""Initial hub schema: ledger, Merkle subtrees, checkpoints, nodes, tokens, policies, approvals.

Also installs triggers that refuse UPDATE and DELETE on the append-only tables.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from hub.ledger.schema import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

APPEND_ONLY = ("entries", "subtrees", "checkpoints")
NODE = sa.String(128)
HEX = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "entries",
        sa.Column("idx", sa.BigInteger, autoincrement=False, nullable=False),
        sa.Column("node_id", NODE, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("envelope", sa.LargeBinary, nullable=False),
        sa.Column("envelope_sha256", HEX, nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("chain_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("idx", name="pk_entries"),
        sa.UniqueConstraint("node_id", "seq", name="uq_entries_node_id_seq"),
    )
    op.create_table(
        "subtrees",
        sa.Column("id", sa.BigInteger, autoincrement=False, nullable=False),  # idx << 6 | level
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_subtrees"),
    )
    op.create_table(
        "checkpoints",
        sa.Column("size", sa.BigInteger, autoincrement=False, nullable=False),
        sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("note", sa.LargeBinary, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("size", name="pk_checkpoints"),
    )
    op.create_table(
        "nodes",
        sa.Column("node_id", NODE, nullable=False),
        sa.Column("key_id", HEX, nullable=False),
        sa.Column("public_key", sa.LargeBinary(32), nullable=False),
        sa.Column("enrolled_at", UTCDateTime, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("node_id", name="pk_nodes"),
    )
    op.create_table(
        "node_keys",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("node_id", NODE, nullable=False),
        sa.Column("key_id", HEX, nullable=False),
        sa.Column("public_key", sa.LargeBinary(32), nullable=False),
        sa.Column("added_at", UTCDateTime, nullable=False),
        sa.Column("retired_at", UTCDateTime, nullable=True),
        sa.Column("ledger_idx", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_node_keys"),
        sa.UniqueConstraint("node_id", "key_id", name="uq_node_keys_node_id_key_id"),
    )
    op.create_index("ix_node_keys_node_id", "node_keys", ["node_id"])
    op.create_table(
        "node_heads",
        sa.Column("node_id", NODE, nullable=False),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("last_envelope_sha256", HEX, nullable=False),
        sa.PrimaryKeyConstraint("node_id", name="pk_node_heads"),
    )
    op.create_table(
        "enrollment_tokens",
        sa.Column("token_sha256", HEX, nullable=False),
        sa.Column("node_id", NODE, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("used_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("token_sha256", name="pk_enrollment_tokens"),
    )
    op.create_table(
        "policies",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.BigInteger, autoincrement=False, nullable=False),
        sa.Column("digest", HEX, nullable=False),
        sa.Column("envelope", sa.LargeBinary, nullable=False),
        sa.Column("published_at", UTCDateTime, nullable=False),
        sa.Column("ledger_idx", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("name", "version", name="pk_policies"),
    )
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("role", sa.String(200), nullable=False),
        sa.Column("subject", sa.String(500), nullable=False),
        sa.Column("digest", HEX, nullable=False),
        sa.Column("envelope", sa.LargeBinary, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("ledger_idx", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_approvals"),
        sa.UniqueConstraint("digest", name="uq_approvals_digest"),
    )
    op.create_index("ix_approvals_subject", "approvals", ["subject"])
    op.create_table(
        "heartbeats",
        sa.Column("node_id", NODE, nullable=False),
        sa.Column("last_seen", UTCDateTime, nullable=False),
        sa.Column("agent_version", sa.String(100), nullable=False),
        sa.Column("policy_name", sa.String(200), nullable=True),
        sa.Column("policy_version", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("node_id", name="pk_heartbeats"),
    )
    op.create_table(
        "equivocations",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("node_id", NODE, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("existing_sha256", HEX, nullable=False),
        sa.Column("offered_envelope", sa.LargeBinary, nullable=False),
        sa.Column("flagged_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_equivocations"),
    )
    op.create_index("ix_equivocations_node_id", "equivocations", ["node_id"])
    _append_only_triggers()


def _append_only_triggers() -> None:
    """Refuse UPDATE and DELETE on the append-only tables, whatever the client."""
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for table in APPEND_ONLY:
            for action in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
                )
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION warden_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$"
        )
        for table in APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION warden_append_only()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION warden_append_only()"
            )


def downgrade() -> None:
    # The ledger is evidence: there is no downgrade that drops it.
    raise NotImplementedError("the initial hub schema cannot be downgraded")
