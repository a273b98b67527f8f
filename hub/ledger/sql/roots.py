"""Published trust-root rotations in SQL (:class:`~hub.ledger.store.RootStore`).

Invariants:

* The caller passes a root already verified from its predecessor (:mod:`hub.handlers`); the
  store keeps its envelope bytes verbatim, with ``digest`` = their hex SHA-256, and appends a
  ``root_publication`` hub event in the same write transaction (with the covering checkpoint
  when asked for).
* Versions only grow: a root at or below the newest stored version is a
  :class:`RollbackError`, unless it is byte for byte a stored root, which is returned as it is
  (a retried publication: same ledger index, no second event).
* Rows are only ever INSERTed (triggers refuse UPDATE and DELETE, migration 0002).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hub import db
from hub.ledger import schema as t
from hub.ledger.rules import MAX_INT, check_root_args, root_rollback_error
from hub.ledger.sql.checkpoints import SqlCheckpoints
from hub.ledger.sql.log import SqlLog
from hub.ledger.store import RootStore
from hub.ledger.types import CheckpointSigner, StoredRoot
from trust.canonical import Sha256, sha256_hex
from trust.record import HubEventKind

__all__ = ["SqlRoots"]


def _root(row: Any) -> StoredRoot:
    return StoredRoot(version=row.version, digest=Sha256(row.digest), index=row.ledger_idx,
                      envelope=bytes(row.envelope), published_at=row.created_at)


class SqlRoots(RootStore):
    """:class:`RootStore` over ``engine``; its hub events go through ``log``."""

    def __init__(self, engine: Engine, log: SqlLog, checkpoints: SqlCheckpoints) -> None:
        self.engine = engine
        self._log = log
        self._checkpoints = checkpoints

    def add_root(
        self, version: int, envelope: bytes, *, now: datetime,
        checkpoint: CheckpointSigner | None = None,
    ) -> StoredRoot:
        """See :meth:`RootStore.add_root`."""
        check_root_args(version, envelope)
        digest = sha256_hex(bytes(envelope))
        r = t.roots
        with db.write_transaction(self.engine) as conn:
            same = conn.execute(sa.select(r).where(r.c.version == version)).first()
            if same is not None and same.digest == digest:
                return _root(same)
            latest = conn.execute(sa.select(sa.func.max(r.c.version))).scalar()
            if latest is not None and version <= latest:
                raise root_rollback_error(version, latest, same is not None)
            idx = self._log.emit(
                conn, HubEventKind.ROOT_PUBLICATION, {"version": version, "digest": digest}, now
            )
            conn.execute(sa.insert(r).values(
                version=version, digest=digest, envelope=bytes(envelope), ledger_idx=idx,
                created_at=now,
            ))
            self._checkpoints.cover(conn, checkpoint, now)
        return StoredRoot(version=version, digest=Sha256(digest), index=idx,
                          envelope=bytes(envelope), published_at=now)

    def roots(self, after_version: int = 0) -> list[StoredRoot]:
        """See :meth:`RootStore.roots`."""
        if after_version >= MAX_INT:  # nothing above the largest storable version
            return []
        r = t.roots
        q = sa.select(r).where(r.c.version > after_version).order_by(r.c.version)
        with self.engine.connect() as conn:
            return [_root(row) for row in conn.execute(q)]

    def latest_root(self) -> StoredRoot | None:
        """See :meth:`RootStore.latest_root`."""
        r = t.roots
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(r).order_by(r.c.version.desc()).limit(1)).first()
        return None if row is None else _root(row)
