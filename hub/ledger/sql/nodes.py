"""Enrollment tokens, enrolled nodes and their keys in SQL (:class:`~hub.ledger.store.NodeStore`).

Invariants:

* A token is stored only as its SHA-256 and consumed by one conditional UPDATE, so two
  concurrent enrollments cannot both use it; a refused token leaves nothing behind.
* Enrollment and key rotation each append their hub event (:meth:`SqlLog.emit`) in the same
  write transaction as the state change, with the covering checkpoint when asked for.
* A rotation is accepted only when signed by the node's current key; a key a node used once
  is never installed again. ``node_keys`` keeps every key with the ledger index of the event
  that installed it (the history the log's equivocation rule reads).
* Every path where a node key authenticates a call goes through :meth:`SqlNodes.node_key`,
  which requires the status ``active``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from hub import db
from hub.ledger import schema as t
from hub.ledger.errors import (
    AlreadyEnrolledError,
)
from hub.ledger.rules import (
    ACTIVE,
    check_enroll_args,
    check_rotation,
    check_token_args,
    enrollment_body,
    refuse_token,
    rotation_body,
)
from hub.ledger.sql.checkpoints import SqlCheckpoints
from hub.ledger.sql.log import SqlLog
from hub.ledger.store import NodeStore
from hub.ledger.types import CheckpointSigner, NodeInfo, NodeKey
from trust.errors import NotFoundError, UsageError
from trust.keys import KeyId, PublicKey
from trust.record import HubEventKind
from trust.stream import NodeId

__all__ = ["SqlNodes"]


def _node(row: Any) -> NodeInfo:
    return NodeInfo(
        row.node_id, KeyId(row.key_id), PublicKey(bytes(row.public_key)), row.enrolled_at,
        row.status,
    )


def _consume(conn: Connection, token_sha256: str, node_id: NodeId, now: datetime) -> None:
    tok = t.enrollment_tokens
    # One conditional UPDATE: two concurrent enrollments cannot both consume the token.
    done = conn.execute(
        sa.update(tok)
        .where(
            tok.c.token_sha256 == token_sha256,
            tok.c.used_at.is_(None),
            tok.c.node_id == node_id,
            tok.c.expires_at > now,
        )
        .values(used_at=now)
    ).rowcount
    if done == 1:
        return
    row = conn.execute(sa.select(tok).where(tok.c.token_sha256 == token_sha256)).first()
    # The UPDATE matched nothing, so the token is refused (now=None: if not otherwise, expired).
    refuse_token(row, node_id, None)


class SqlNodes(NodeStore):
    """:class:`NodeStore` over ``engine``; its hub events go through ``log``."""

    def __init__(self, engine: Engine, log: SqlLog, checkpoints: SqlCheckpoints) -> None:
        self.engine = engine
        self._log = log
        self._checkpoints = checkpoints

    def create_token(
        self, node_id: NodeId, token_sha256: str, expires_at: datetime, *, now: datetime
    ) -> None:
        """See :meth:`NodeStore.create_token`."""
        check_token_args(node_id, token_sha256, expires_at, now)
        try:
            with db.write_transaction(self.engine, lock=None) as conn:
                conn.execute(
                    sa.insert(t.enrollment_tokens).values(
                        token_sha256=token_sha256, node_id=node_id, created_at=now,
                        expires_at=expires_at, used_at=None,
                    )
                )
        except sa.exc.IntegrityError as exc:
            raise UsageError("an enrollment token with this hash already exists") from exc

    def consume_token(self, token_sha256: str, node_id: NodeId, now: datetime) -> None:
        """See :meth:`NodeStore.consume_token`."""
        with db.write_transaction(self.engine, lock=None) as conn:
            _consume(conn, token_sha256, node_id, now)

    def register_node(
        self,
        node_id: NodeId,
        public_key: PublicKey,
        *,
        now: datetime,
        token_sha256: str | None = None,
        checkpoint: CheckpointSigner | None = None,
    ) -> int:
        """See :meth:`NodeStore.register_node`."""
        check_enroll_args(node_id)
        self._log.require_hub_key()
        with db.write_transaction(self.engine) as conn:
            if token_sha256 is not None:
                _consume(conn, token_sha256, node_id, now)
            exists = conn.scalar(sa.select(t.nodes.c.node_id).where(t.nodes.c.node_id == node_id))
            if exists is not None:
                raise AlreadyEnrolledError(
                    f"node {node_id!r} is already enrolled", hint="rotate its key instead"
                )
            idx = self._log.emit(
                conn,
                HubEventKind.ENROLLMENT,
                enrollment_body(node_id, public_key, now, token_sha256),
                now,
            )
            conn.execute(
                sa.insert(t.nodes).values(
                    node_id=node_id, key_id=public_key.key_id, public_key=public_key.raw,
                    enrolled_at=now, status=ACTIVE,
                )
            )
            conn.execute(
                sa.insert(t.node_keys).values(
                    node_id=node_id, key_id=public_key.key_id, public_key=public_key.raw,
                    added_at=now, retired_at=None, ledger_idx=idx,
                )
            )
            self._checkpoints.cover(conn, checkpoint, now)
        return idx

    def rotate_node_key(
        self, node_id: NodeId, new_key: PublicKey, signature: bytes, *, now: datetime,
        checkpoint: CheckpointSigner | None = None,
    ) -> int:
        """See :meth:`NodeStore.rotate_node_key`."""
        self._log.require_hub_key()
        with db.write_transaction(self.engine) as conn:
            row = conn.execute(sa.select(t.nodes).where(t.nodes.c.node_id == node_id)).first()
            current = (
                PublicKey(bytes(row.public_key)) if row is not None and row.status == ACTIVE
                else None
            )
            used = current is not None and conn.scalar(
                sa.select(t.node_keys.c.id).where(
                    t.node_keys.c.node_id == node_id, t.node_keys.c.key_id == new_key.key_id
                )
            ) is not None
            old = check_rotation(node_id, current, new_key, used, signature)
            idx = self._log.emit(
                conn, HubEventKind.KEY_ROTATION, rotation_body(node_id, old, new_key, signature),
                now,
            )
            conn.execute(
                sa.update(t.node_keys)
                .where(t.node_keys.c.node_id == node_id, t.node_keys.c.retired_at.is_(None))
                .values(retired_at=now)
            )
            conn.execute(
                sa.insert(t.node_keys).values(
                    node_id=node_id, key_id=new_key.key_id, public_key=new_key.raw,
                    added_at=now, retired_at=None, ledger_idx=idx,
                )
            )
            conn.execute(
                sa.update(t.nodes)
                .where(t.nodes.c.node_id == node_id)
                .values(key_id=new_key.key_id, public_key=new_key.raw)
            )
            self._checkpoints.cover(conn, checkpoint, now)
        return idx

    def node_key(self, node_id: NodeId) -> PublicKey:
        """See :meth:`NodeStore.node_key`."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(t.nodes.c.public_key).where(
                    t.nodes.c.node_id == node_id, t.nodes.c.status == ACTIVE
                )
            ).first()
        if row is None:
            raise NotFoundError(f"node {node_id!r} is not enrolled (or no longer active)")
        return PublicKey(bytes(row.public_key))

    def node(self, node_id: NodeId) -> NodeInfo:
        """See :meth:`NodeStore.node`."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.nodes).where(t.nodes.c.node_id == node_id)).first()
        if row is None:
            raise NotFoundError(f"node {node_id!r} is not enrolled")
        return _node(row)

    def nodes(self) -> list[NodeInfo]:
        """See :meth:`NodeStore.nodes`."""
        with self.engine.connect() as conn:
            return [_node(r) for r in conn.execute(sa.select(t.nodes).order_by(t.nodes.c.node_id))]

    def node_keys(self, node_id: NodeId) -> list[NodeKey]:
        """See :meth:`NodeStore.node_keys`."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.node_keys)
                .where(t.node_keys.c.node_id == node_id)
                .order_by(t.node_keys.c.id)
            ).all()
        return [
            NodeKey(
                r.node_id, KeyId(r.key_id), PublicKey(bytes(r.public_key)), r.added_at,
                r.retired_at, r.ledger_idx,
            )
            for r in rows
        ]
