"""Nodes' last heartbeats in SQL (:class:`~hub.ledger.store.HeartbeatStore`).

Invariants: a heartbeat is not a ledger entry and takes no ledger lock (only its own row);
each node has at most one row, the latest, even when two first heartbeats race.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hub import db
from hub.ledger import schema as t
from hub.ledger.rules import check_heartbeat_version
from hub.ledger.store import HeartbeatStore
from hub.ledger.types import Heartbeat
from trust.stream import NodeId

__all__ = ["SqlHeartbeats"]


class SqlHeartbeats(HeartbeatStore):
    """:class:`HeartbeatStore` over ``engine``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record_heartbeat(
        self,
        node_id: NodeId,
        *,
        now: datetime,
        agent_version: str,
        policy_name: str | None = None,
        policy_version: int | None = None,
    ) -> None:
        """See :meth:`HeartbeatStore.record_heartbeat`."""
        check_heartbeat_version(policy_version)
        h = t.heartbeats
        values = dict(
            last_seen=now, agent_version=agent_version, policy_name=policy_name,
            policy_version=policy_version,
        )
        with db.write_transaction(self.engine, lock=None) as conn:
            update = sa.update(h).where(h.c.node_id == node_id).values(**values)
            if not conn.execute(update).rowcount:
                try:
                    with conn.begin_nested():
                        conn.execute(sa.insert(h).values(node_id=node_id, **values))
                except sa.exc.IntegrityError:  # a concurrent first heartbeat won the insert
                    conn.execute(sa.update(h).where(h.c.node_id == node_id).values(**values))

    def heartbeats(self) -> list[Heartbeat]:
        """See :meth:`HeartbeatStore.heartbeats`."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.heartbeats).order_by(t.heartbeats.c.node_id)).all()
        return [
            Heartbeat(r.node_id, r.last_seen, r.agent_version, r.policy_name, r.policy_version)
            for r in rows
        ]
