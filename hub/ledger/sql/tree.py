"""The log's storage: entries, the Merkle subtrees over them, and each stream's head.

Invariants:

* The Merkle tree is kept as perfect-subtree hashes: an append reads the O(log n) frontier,
  computes the new nodes in memory (:func:`trust.merkle.extend`) and inserts them in one
  ``executemany``; a proof reads O(log n) rows in one query.
* Rows of ``entries`` and ``subtrees`` are only ever INSERTed; :func:`append_locked` is the one
  place that inserts them, inside the caller's write transaction, for checked records only.
* ``node_heads`` holds each stream's last seq and envelope digest, updated in the same
  transaction as the entries, so a head never names a record that is not stored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hub.ledger import schema as t
from hub.ledger.checked import CheckedRecord
from hub.ledger.history import Stored
from hub.ledger.sql.tx import bind, insert_many
from hub.ledger.types import Entry
from trust import merkle
from trust.canonical import Sha256
from trust.errors import LedgerError, NotFoundError
from trust.stream import NodeId

__all__ = [
    "CHAIN_GENESIS",
    "append_locked",
    "check_size",
    "entry_of",
    "head",
    "resolve",
    "size",
    "stored_at",
]

CHAIN_GENESIS = bytes(32)
# One cached statement; the expanding IN list is the proof's O(log n) node keys.
_SUBTREES_BY_KEY = sa.select(t.subtrees.c.id, t.subtrees.c.hash).where(
    t.subtrees.c.id.in_(sa.bindparam("keys", expanding=True))
)
_ENTRY_COLUMNS = (
    "idx", "node_id", "seq", "envelope", "envelope_sha256", "leaf_hash", "chain_hash",
    "received_at",
)


def entry_of(row: Any) -> Entry:
    """An ``entries`` row as an :class:`Entry`."""
    return Entry(
        index=row.idx,
        node_id=NodeId(row.node_id),
        seq=row.seq,
        envelope=bytes(row.envelope),
        leaf_hash=bytes(row.leaf_hash),
        chain_hash=bytes(row.chain_hash),
        received_at=row.received_at,
    )


def size(conn: Connection) -> int:
    """The number of entries (indexes are dense from 0)."""
    last = conn.scalar(sa.select(sa.func.max(t.entries.c.idx)))
    return 0 if last is None else int(last) + 1


def check_size(conn: Connection, tree_size: int) -> None:
    """:class:`NotFoundError` unless ``0 ≤ tree_size ≤`` the committed size."""
    current = size(conn)
    if not 0 <= tree_size <= current:
        raise NotFoundError(f"tree size {tree_size} is beyond the ledger's size {current}")


def _nodes(
    conn: Connection, ids: Iterable[tuple[int, int]]
) -> dict[tuple[int, int], bytes]:
    keys = sorted({t.subtree_key(level, idx) for level, idx in ids})
    if not keys:
        return {}
    rows = conn.execute(_SUBTREES_BY_KEY, {"keys": keys}).all()
    found = {t.subtree_of(r.id): bytes(r.hash) for r in rows}
    if len(found) != len(keys):
        missing = sorted(set(map(t.subtree_of, keys)) - set(found))
        raise LedgerError(f"Merkle subtree {missing[0]} is missing from the store")
    return found


def resolve(conn: Connection, plan: merkle.Plan) -> list[bytes]:
    """The hashes a :mod:`trust.merkle` plan (a root or a proof) names, read in one query."""
    return merkle.resolve(plan, _nodes(conn, (n for el in plan for n in el)))


def head(conn: Connection, node_id: NodeId) -> tuple[int, Sha256] | None:
    """A stream's last seq and envelope digest, or ``None`` if it has none."""
    row = conn.execute(
        sa.select(t.node_heads.c.last_seq, t.node_heads.c.last_envelope_sha256).where(
            t.node_heads.c.node_id == node_id
        )
    ).first()
    return None if row is None else (int(row.last_seq), Sha256(row.last_envelope_sha256))


def stored_at(conn: Connection, node_id: NodeId, seqs: Sequence[int]) -> dict[int, Stored]:
    """The stream's stored records at ``seqs``: seq → (ledger index, envelope digest)."""
    if not seqs:
        return {}
    e = t.entries
    rows = conn.execute(
        sa.select(e.c.seq, e.c.idx, e.c.envelope_sha256).where(
            e.c.node_id == node_id, e.c.seq.in_(seqs)
        )
    ).all()
    return {int(r.seq): (int(r.idx), Sha256(r.envelope_sha256)) for r in rows}


def _set_head(conn: Connection, node_id: NodeId, seq: int, digest: str) -> None:
    updated = conn.execute(
        sa.update(t.node_heads)
        .where(t.node_heads.c.node_id == node_id)
        .values(last_seq=seq, last_envelope_sha256=digest)
    ).rowcount
    if not updated:
        conn.execute(
            sa.insert(t.node_heads).values(
                node_id=node_id, last_seq=seq, last_envelope_sha256=digest
            )
        )


def append_locked(
    conn: Connection, records: Sequence[CheckedRecord], now: datetime
) -> tuple[list[int], int, bytes]:
    """Insert checked records that passed the history rules; return their indexes, the new
    size and the new root (folded from the new frontier, which is in hand)."""
    start = size(conn)
    frontier_ids = merkle.frontier_nodes(start)
    found = _nodes(conn, frontier_ids)
    frontier = [found[n] for n in frontier_ids]
    chain = CHAIN_GENESIS
    if start:
        chain = bytes(
            conn.execute(
                sa.select(t.entries.c.chain_hash).where(t.entries.c.idx == start - 1)
            ).scalar_one()
        )
    received = bind(conn, t.entries.c.received_at, now)
    rows: list[tuple[Any, ...]] = []
    leaves: list[bytes] = []
    sha256 = hashlib.sha256
    for i, item in enumerate(records):
        leaf = item.leaf_hash
        chain = sha256(chain + leaf).digest()
        leaves.append(leaf)
        rows.append(
            (start + i, item.node_id, item.seq, item.envelope, item.digest, leaf, chain,
             received)
        )
    new_frontier, created = merkle.extend(start, frontier, leaves)
    insert_many(conn, t.entries, _ENTRY_COLUMNS, rows)
    insert_many(
        conn, t.subtrees, ("id", "hash"),
        [(t.subtree_key(lv, ix), h) for lv, ix, h in created],
    )
    heads: dict[NodeId, CheckedRecord] = {}
    for item in records:
        heads[item.node_id] = item
    for node_id, item in heads.items():
        _set_head(conn, node_id, item.seq, item.digest)
    n = len(records)
    return [start + i for i in range(n)], start + n, merkle.fold(new_frontier)
