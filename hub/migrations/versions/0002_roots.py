"""Published trust roots: the ``roots`` table (append-only, like the ledger).

Each row is one accepted rotation (root N+1, verified by the hub from root N), stored as the
envelope bytes verbatim with the ledger index of its ``root_publication`` hub event. Triggers
refuse UPDATE and DELETE on it, as on ``entries``: a published root is evidence.

Revision ID: 0002
Revises: 0001
Create Date: 2026-02-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from hub.ledger.schema import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "roots",
        sa.Column("version", sa.BigInteger, autoincrement=False, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("envelope", sa.LargeBinary, nullable=False),
        sa.Column("ledger_idx", sa.BigInteger, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("version", name="pk_roots"),
    )
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER roots_no_{action.lower()} BEFORE {action} ON roots "
                "BEGIN SELECT RAISE(ABORT, 'roots is append-only'); END"
            )
    elif dialect == "postgresql":
        # warden_append_only() was created by 0001.
        op.execute(
            "CREATE TRIGGER roots_append_only BEFORE UPDATE OR DELETE ON roots "
            "FOR EACH ROW EXECUTE FUNCTION warden_append_only()"
        )
        op.execute(
            "CREATE TRIGGER roots_no_truncate BEFORE TRUNCATE ON roots "
            "FOR EACH STATEMENT EXECUTE FUNCTION warden_append_only()"
        )


def downgrade() -> None:
    # Published roots are evidence, like the ledger: there is no downgrade that drops them.
    raise NotImplementedError("the roots table cannot be downgraded")
