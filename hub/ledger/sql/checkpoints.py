"""Signed checkpoints of the SQL log (:class:`~hub.ledger.store.CheckpointStore`).

Invariants:

* A checkpoint is signed only under the write lock (:meth:`SqlCheckpoints.sign_locked`,
  inside the caller's write transaction): its size is the committed size at that moment, its
  root is computed from the stored tree (or handed over by the append that just folded it),
  and sizes only grow, so two signed checkpoints are always consistent.
* A ledger keeps one checkpoint origin for life: a checkpoint under another origin than the
  stored ones is refused (:class:`LedgerError`).
* Rows of ``checkpoints`` are only ever INSERTed; a stored row whose note does not match its
  size and root is reported (:class:`LedgerError`), never returned.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from hub import db
from hub.ledger import schema as t
from hub.ledger.rules import MAX_INT, new_checkpoint
from hub.ledger.sql import tree
from hub.ledger.store import CheckpointStore
from hub.ledger.types import CheckpointSigner, StoredCheckpoint
from trust import merkle
from trust.checkpoint import parse_checkpoint, parse_note
from trust.errors import LedgerError, NotFoundError
from trust.keys import SigningKey

__all__ = ["SqlCheckpoints"]


def _checkpoint(row: Any) -> StoredCheckpoint:
    note = bytes(row.note)
    cp = parse_checkpoint(parse_note(note).text)
    if cp.size != row.size or cp.root_hash != bytes(row.root_hash):
        raise LedgerError(f"stored checkpoint {row.size} does not match its note")
    return StoredCheckpoint(cp, note, row.created_at)


def _latest(conn: Connection) -> StoredCheckpoint | None:
    c = t.checkpoints
    row = conn.execute(sa.select(c).order_by(c.c.size.desc()).limit(1)).first()
    return None if row is None else _checkpoint(row)


class SqlCheckpoints(CheckpointStore):
    """:class:`CheckpointStore` over ``engine``; other parts sign inside their transactions
    through :meth:`sign_locked` and :meth:`cover`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def sign_checkpoint(
        self, origin: str, key_name: str, key: SigningKey, *, now: datetime
    ) -> StoredCheckpoint | None:
        """See :meth:`CheckpointStore.sign_checkpoint`."""
        with db.write_transaction(self.engine) as conn:
            size = tree.size(conn)
            if size == 0:
                return _latest(conn)
            return self.sign_locked(conn, CheckpointSigner(origin, key_name, key), size, None, now)

    def sign_locked(
        self,
        conn: Connection,
        signer: CheckpointSigner,
        size: int,
        root: bytes | None,
        now: datetime,
    ) -> StoredCheckpoint:
        """Inside the write lock: the latest checkpoint if it covers ``size`` (the committed
        size), else a new one of ``size``. ``root`` is that size's root when the caller holds
        it already; otherwise it is computed from the stored tree."""
        latest = _latest(conn)
        if latest is not None and latest.size >= size:
            return latest
        if root is None:
            root = tree.resolve(conn, merkle.root_plan(size))[0]
        stored = new_checkpoint(signer, latest, size, root, now)
        conn.execute(
            sa.insert(t.checkpoints).values(
                size=size, root_hash=root, note=stored.note, created_at=now
            )
        )
        return stored

    def cover(self, conn: Connection, signer: CheckpointSigner | None, now: datetime) -> None:
        """Inside a hub event's write transaction: make a checkpoint cover the new size."""
        if signer is not None:
            self.sign_locked(conn, signer, tree.size(conn), None, now)

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        """See :meth:`CheckpointStore.latest_checkpoint`."""
        with self.engine.connect() as conn:
            return _latest(conn)

    def checkpoint_at_least(self, size: int) -> StoredCheckpoint | None:
        """See :meth:`CheckpointStore.checkpoint_at_least`."""
        if size > MAX_INT:
            return None
        c = t.checkpoints
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(c).where(c.c.size >= size).order_by(c.c.size).limit(1)
            ).first()
        return None if row is None else _checkpoint(row)

    def checkpoint(self, size: int) -> StoredCheckpoint:
        """See :meth:`CheckpointStore.checkpoint`."""
        if not 0 <= size <= MAX_INT:
            raise NotFoundError(f"no checkpoint was signed at tree size {size}")
        c = t.checkpoints
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(c).where(c.c.size == size)).first()
        if row is None:
            raise NotFoundError(f"no checkpoint was signed at tree size {size}")
        return _checkpoint(row)
