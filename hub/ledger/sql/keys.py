"""Reads of a node's keys, shared by the log (to verify an append) and the node registry.

Invariants:

* :func:`key_ring` is the one read that authorises an append: the node must be enrolled and
  ``active`` (else :class:`NodeNotEnrolledError`), and the ring lists every key it has held.
* :func:`current_key_id` is the same status check, for use under the write lock: a ring read
  before the lock is only used if its current key is still the node's current key.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hub.ledger import schema as t
from hub.ledger.checked import HeldKey, KeyRing
from hub.ledger.rules import ACTIVE, not_enrolled_error
from trust.keys import PublicKey
from trust.stream import NodeId

__all__ = ["current_key_id", "key_ring"]


def key_ring(conn: Connection, node_id: NodeId) -> KeyRing:
    """The keys an enrolled, active node has held; :class:`NodeNotEnrolledError` otherwise."""
    row = conn.execute(
        sa.select(t.nodes.c.public_key, t.nodes.c.status).where(t.nodes.c.node_id == node_id)
    ).first()
    if row is None or row.status != ACTIVE:
        raise not_enrolled_error(node_id)
    history = conn.execute(
        sa.select(t.node_keys.c.public_key, t.node_keys.c.ledger_idx)
        .where(t.node_keys.c.node_id == node_id)
        .order_by(t.node_keys.c.id)
    ).all()
    return KeyRing(
        node_id,
        PublicKey(bytes(row.public_key)),
        tuple(HeldKey(PublicKey(bytes(h.public_key)), h.ledger_idx) for h in history),
    )


def current_key_id(conn: Connection, node_id: NodeId) -> str | None:
    """The key id an active node holds now (``None`` if not enrolled or not active)."""
    value = conn.scalar(
        sa.select(t.nodes.c.key_id).where(t.nodes.c.node_id == node_id, t.nodes.c.status == ACTIVE)
    )
    return None if value is None else str(value)
