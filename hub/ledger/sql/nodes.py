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

import base64
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from hub import db
from hub.ledger import schema as t
from hub.ledger.errors import (
    AlreadyEnrolledError,
    NodeNotEnrolledError,
    TokenExpiredError,
    TokenNodeMismatchError,
    TokenUnknownError,
    TokenUsedError,
)
from hub.ledger.sql.checkpoints import SqlCheckpoints
from hub.ledger.sql.log import SqlLog
from hub.ledger.sql.tx import ACTIVE, check_hex
from hub.ledger.store import NodeStore
from hub.ledger.types import CheckpointSigner, NodeInfo, NodeKey
from trust.errors import NotFoundError, SignatureError, UsageError
from trust.keys import KeyId, PublicKey
from trust.record import GENESIS_PREV, HUB_NODE_ID, HubEventKind, check_node_id, rotation_message
from trust.timeutil import format_time

__all__ = ["SqlNodes"]


def _node(row: Any) -> NodeInfo:
    return NodeInfo(
        row.node_id, KeyId(row.key_id), PublicKey(bytes(row.public_key)), row.enrolled_at,
        row.status,
    )


def _consume(conn: Connection, token_sha256: str, node_id: str, now: datetime) -> None:
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
    if row is None:
        raise TokenUnknownError("enrollment token is not known to this hub")
    if row.used_at is not None:
        raise TokenUsedError(
            f"enrollment token was already used at {format_time(row.used_at)}",
            hint="tokens are single use; create a new one with 'warden hub token create'",
        )
    if row.node_id != node_id:
        raise TokenNodeMismatchError(
            f"enrollment token was issued for node {row.node_id!r}, not {node_id!r}"
        )
    raise TokenExpiredError(
        f"enrollment token expired at {format_time(row.expires_at)}",
        hint="create a new one with 'warden hub token create'",
    )


class SqlNodes(NodeStore):
    """:class:`NodeStore` over ``engine``; its hub events go through ``log``."""

    def __init__(self, engine: Engine, log: SqlLog, checkpoints: SqlCheckpoints) -> None:
        self.engine = engine
        self._log = log
        self._checkpoints = checkpoints

    def create_token(
        self, node_id: str, token_sha256: str, expires_at: datetime, *, now: datetime
    ) -> None:
        """See :meth:`NodeStore.create_token`."""
        check_node_id(node_id)
        if node_id == HUB_NODE_ID:
            raise UsageError(f"node id {HUB_NODE_ID!r} is reserved for the hub's own events")
        check_hex(token_sha256, "token_sha256")
        if expires_at <= now:
            raise UsageError("an enrollment token must expire in the future")
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

    def consume_token(self, token_sha256: str, node_id: str, now: datetime) -> None:
        """See :meth:`NodeStore.consume_token`."""
        with db.write_transaction(self.engine, lock=None) as conn:
            _consume(conn, token_sha256, node_id, now)

    def register_node(
        self,
        node_id: str,
        public_key: PublicKey,
        *,
        now: datetime,
        token_sha256: str | None = None,
        checkpoint: CheckpointSigner | None = None,
    ) -> int:
        """See :meth:`NodeStore.register_node`."""
        check_node_id(node_id)
        if node_id == HUB_NODE_ID:
            raise UsageError(f"node id {HUB_NODE_ID!r} is reserved for the hub")
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
                {
                    "node_id": node_id,
                    "public_key": public_key.b64,
                    "key_id": public_key.key_id,
                    "enrolled_at": format_time(now),
                    "token_sha256": token_sha256 or GENESIS_PREV,
                },
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
        self, node_id: str, new_key: PublicKey, signature: bytes, *, now: datetime,
        checkpoint: CheckpointSigner | None = None,
    ) -> int:
        """See :meth:`NodeStore.rotate_node_key`."""
        self._log.require_hub_key()
        with db.write_transaction(self.engine) as conn:
            row = conn.execute(sa.select(t.nodes).where(t.nodes.c.node_id == node_id)).first()
            if row is None or row.status != ACTIVE:
                raise NodeNotEnrolledError(f"node {node_id!r} is not enrolled")
            old = PublicKey(bytes(row.public_key))
            if old == new_key:
                raise UsageError(f"node {node_id!r} already uses key {new_key.key_id[:16]}…")
            used = conn.scalar(
                sa.select(t.node_keys.c.id).where(
                    t.node_keys.c.node_id == node_id, t.node_keys.c.key_id == new_key.key_id
                )
            )
            if used is not None:
                raise UsageError(f"node {node_id!r} already used key {new_key.key_id[:16]}…")
            try:
                old.verify(signature, rotation_message(node_id, old, new_key))
            except SignatureError as exc:
                raise SignatureError(
                    f"key rotation for node {node_id!r} is not signed by its current key"
                ) from exc
            idx = self._log.emit(
                conn,
                HubEventKind.KEY_ROTATION,
                {
                    "node_id": node_id,
                    "old_key": old.b64,
                    "old_key_id": old.key_id,
                    "new_key": new_key.b64,
                    "new_key_id": new_key.key_id,
                    "signature": base64.b64encode(signature).decode("ascii"),
                },
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

    def node_key(self, node_id: str) -> PublicKey:
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

    def node(self, node_id: str) -> NodeInfo:
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

    def node_keys(self, node_id: str) -> list[NodeKey]:
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
