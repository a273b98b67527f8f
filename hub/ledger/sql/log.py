"""The SQL log (:class:`~hub.ledger.store.LogStore`): appends, hub events, reads and proofs.

The append path goes one way through:

1. :meth:`SqlLog.append_records` checks the batch's shape and sizes (nothing parsed yet) and
   reads the node's :class:`~hub.ledger.checked.KeyRing` (enrolled and active, else
   :class:`NodeNotEnrolledError`);
2. the store's :class:`~hub.ledger.verify.RecordVerifier` parses and verifies every envelope
   once, before the write lock (in worker processes when it has any, since ``cryptography``
   holds the GIL), into a :class:`~hub.ledger.checked.CheckedBatch`;
3. under the write lock, in one :func:`hub.db.write_transaction`: the ring's current key is
   still the node's, :func:`hub.ledger.history.plan_append` applies the history rules to the
   checked records and the stream as stored, and :func:`hub.ledger.sql.tree.append_locked`
   inserts the new ones; the covering checkpoint may be signed in that same transaction (one
   commit, one fsync). A batch is all-or-nothing and several hub processes produce one chain.
4. An equivocation rolls that transaction back and is flagged in a transaction of its own.

Hub events go the same way from step 3: a pre-built one is verified under the hub key
(:func:`hub.ledger.verify.check_hub_event`); one the hub signs itself (:meth:`SqlLog.emit`, for
the other parts' state changes) is built and signed under the lock, inside their transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from hub import db
from hub.ledger import schema as t
from hub.ledger.checked import CheckedBatch, KeyRing
from hub.ledger.history import Equivocated, plan_append, stored_seqs
from hub.ledger.rules import (
    MAX_INT,
    check_append_batch,
    check_key_unchanged,
    equivocation_error,
    hub_event_record,
    require_hub_key,
    require_hub_public,
)
from hub.ledger.sql import tree
from hub.ledger.sql.checkpoints import SqlCheckpoints
from hub.ledger.sql.keys import current_key_id, key_ring
from hub.ledger.store import LogStore
from hub.ledger.types import BatchAppended, CheckpointSigner, Entry, Equivocation
from hub.ledger.verify import RecordVerifier, check_hub_event
from trust import merkle
from trust.canonical import Sha256
from trust.errors import (
    EquivocationError,
    NotFoundError,
    UsageError,
)
from trust.keys import PublicKey, SigningKey
from trust.record import (
    GENESIS_PREV,
    HUB_NODE_ID,
    HubEventKind,
)
from trust.stream import NodeId

__all__ = ["SqlLog"]


class SqlLog(LogStore):
    """:class:`LogStore` over ``engine``; signs the hub events of the other parts."""

    def __init__(
        self,
        engine: Engine,
        checkpoints: SqlCheckpoints,
        verifier: RecordVerifier,
        *,
        hub_key: SigningKey | None,
        hub_public: PublicKey | None,
        max_record_bytes: int | None,
        page_bytes: int | None,
    ) -> None:
        self.engine = engine
        self._checkpoints = checkpoints
        self._verifier = verifier
        self._hub_key = hub_key
        self._hub_public = hub_public
        self._max_record_bytes = max_record_bytes
        self._page_bytes = page_bytes

    # --- appends --------------------------------------------------------------------------

    def append_records(
        self,
        node_id: NodeId,
        envelopes: Sequence[bytes],
        *,
        now: datetime,
        checkpoint: CheckpointSigner | None = None,
    ) -> BatchAppended:
        """See :meth:`LogStore.append_records`."""
        check_append_batch(node_id, envelopes, self._max_record_bytes)
        with self.engine.connect() as conn:
            ring = key_ring(conn, node_id)
        # The expensive checks run before the write lock, possibly in worker processes.
        batch = self._verifier.check_batch(ring, envelopes)
        return self._append_checked(batch, now, checkpoint)

    def _append_checked(
        self, batch: CheckedBatch, now: datetime, checkpoint: CheckpointSigner | None
    ) -> BatchAppended:
        node_id = batch.node_id
        signed = None
        try:
            with db.write_transaction(self.engine) as conn:
                check_key_unchanged(node_id, current_key_id(conn, node_id), batch.ring)
                head = tree.head(conn, node_id) or (0, GENESIS_PREV)
                stored = tree.stored_at(conn, node_id, stored_seqs(batch, head[0]))
                plan = plan_append(batch, head, stored)
                root: bytes | None = None
                new_idx: list[int] = []
                if plan.fresh:
                    new_idx, size, root = tree.append_locked(conn, plan.fresh, now)
                else:
                    size = tree.size(conn)
                if checkpoint is not None:
                    signed = self._checkpoints.sign_locked(conn, checkpoint, size, root, now)
        except Equivocated as exc:
            raise self._flag_equivocation(exc, now) from None
        return BatchAppended(plan.indexes(new_idx), plan.duplicates, size, signed)

    def _flag_equivocation(self, exc: Equivocated, now: datetime) -> EquivocationError:
        with db.write_transaction(self.engine, lock=None) as conn:
            conn.execute(
                sa.insert(t.equivocations).values(
                    node_id=exc.node_id,
                    seq=exc.seq,
                    existing_sha256=exc.existing,
                    offered_envelope=exc.offered,
                    flagged_at=now,
                )
            )
        return equivocation_error(exc)

    # --- hub events -----------------------------------------------------------------------

    def require_hub_key(self) -> SigningKey:
        """The hub's signing key; :class:`UsageError` if the store was opened without it."""
        return require_hub_key(self._hub_key)

    def append_hub_event(self, envelope: bytes, *, now: datetime) -> int:
        """See :meth:`LogStore.append_hub_event`."""
        public = require_hub_public(self._hub_public)
        record = check_hub_event(envelope, public)
        batch = CheckedBatch(KeyRing(HUB_NODE_ID, public), (record,))
        return self._append_checked(batch, now, None).indexes[0]

    def emit(
        self, conn: Connection, kind: HubEventKind, body: dict[str, Any], now: datetime
    ) -> int:
        """Build, sign and append a hub event inside the caller's write transaction."""
        key = self.require_hub_key()
        head = tree.head(conn, HUB_NODE_ID) or (0, GENESIS_PREV)
        record = hub_event_record(key, head, kind, body, now)
        return tree.append_locked(conn, [record], now)[0][0]

    # --- heads and flags ------------------------------------------------------------------

    def node_head(self, node_id: NodeId) -> tuple[int, Sha256]:
        """See :meth:`LogStore.node_head`."""
        with self.engine.connect() as conn:
            return tree.head(conn, node_id) or (0, GENESIS_PREV)

    def hub_head(self) -> tuple[int, Sha256]:
        """See :meth:`LogStore.hub_head`."""
        return self.node_head(HUB_NODE_ID)

    def equivocations(self, node_id: NodeId | None = None) -> list[Equivocation]:
        """See :meth:`LogStore.equivocations`."""
        e = t.equivocations
        q = sa.select(e).order_by(e.c.id)
        if node_id is not None:
            q = q.where(e.c.node_id == node_id)
        with self.engine.connect() as conn:
            return [
                Equivocation(
                    r.id, r.node_id, r.seq, Sha256(r.existing_sha256), bytes(r.offered_envelope),
                    r.flagged_at,
                )
                for r in conn.execute(q)
            ]

    # --- reads and proofs -----------------------------------------------------------------

    def size(self) -> int:
        """See :meth:`LogStore.size`."""
        with self.engine.connect() as conn:
            return tree.size(conn)

    def entry(self, idx: int) -> Entry:
        """See :meth:`LogStore.entry`."""
        if not 0 <= idx <= MAX_INT:
            raise NotFoundError(f"ledger entry {idx} does not exist")
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.entries).where(t.entries.c.idx == idx)).first()
        if row is None:
            raise NotFoundError(f"ledger entry {idx} does not exist")
        return tree.entry_of(row)

    def entries(self, start: int, end: int, *, max_bytes: int | None = None) -> list[Entry]:
        """See :meth:`LogStore.entries`."""
        start, end = max(start, 0), min(end, MAX_INT)
        if start >= end:
            return []
        budget = self._page_bytes if max_bytes is None else max_bytes
        e = t.entries
        with self.engine.connect() as conn:
            if budget is not None:
                # Sizes first (both databases answer length() without reading the blob), so
                # a page of large envelopes is never loaded whole just to be cut.
                sizes = conn.execute(
                    sa.select(e.c.idx, sa.func.length(e.c.envelope))
                    .where(e.c.idx >= start, e.c.idx < end)
                    .order_by(e.c.idx)
                ).all()
                end = _page_end(sizes, budget, end)
            rows = conn.execute(
                sa.select(e).where(e.c.idx >= start, e.c.idx < end).order_by(e.c.idx)
            ).all()
        return [tree.entry_of(r) for r in rows]

    def find_entry(self, node_id: NodeId, seq: int) -> Entry:
        """See :meth:`LogStore.find_entry`."""
        if not 0 <= seq <= MAX_INT:
            raise NotFoundError(f"node {node_id!r} has no record with seq {seq} in the ledger")
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(t.entries).where(t.entries.c.node_id == node_id, t.entries.c.seq == seq)
            ).first()
        if row is None:
            raise NotFoundError(f"node {node_id!r} has no record with seq {seq} in the ledger")
        return tree.entry_of(row)

    def root_at(self, size: int) -> bytes:
        """See :meth:`LogStore.root_at`."""
        with self.engine.connect() as conn:  # nodes under a committed size never change
            tree.check_size(conn, size)
            return tree.resolve(conn, merkle.root_plan(size))[0] if size else merkle.EMPTY_ROOT

    def inclusion_proof(self, idx: int, size: int) -> list[bytes]:
        """See :meth:`LogStore.inclusion_proof`."""
        if not 0 <= idx < size:
            raise UsageError(f"entry {idx} is not inside a tree of size {size}")
        with self.engine.connect() as conn:
            tree.check_size(conn, size)
            return tree.resolve(conn, merkle.inclusion_plan(idx, size))

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """See :meth:`LogStore.consistency_proof`."""
        if not 0 < old_size <= new_size:
            raise UsageError(f"no consistency proof from size {old_size} to {new_size}")
        with self.engine.connect() as conn:
            tree.check_size(conn, new_size)
            return tree.resolve(conn, merkle.consistency_plan(old_size, new_size))


def _page_end(sizes: Sequence[Any], budget: int, end: int) -> int:
    """The index a page stops before: envelopes up to ``budget`` bytes, at least one entry.

    ``sizes`` are ``(idx, envelope length)`` rows in index order from the page's start.
    """
    total = 0
    for n, (idx, length) in enumerate(sizes):
        total += int(length)
        if total > budget and n > 0:
            return int(idx)
    return end
