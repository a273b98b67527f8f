"""The state of an in-memory ledger: its tables, its undo log, its Merkle tree.

:class:`MemoryLedger` plays the database of :class:`~hub.ledger.memory.MemoryLedgerStore`:
every table as a Python container, one lock, and the storage-level operations the SQL store
has in :mod:`hub.ledger.sql.tree` (append checked records, read subtrees, check a size).

Invariants:

* Every write holds :attr:`MemoryLedger.lock` and goes through one :class:`Tx` from
  :meth:`MemoryLedger.write`, which records how to undo each change: a write that raises
  leaves nothing behind, exactly as a rolled-back SQL transaction would.
* Entries, subtrees, checkpoints, equivocations and roots are only ever appended; values kept are
  frozen dataclasses, so what a read hands out is a snapshot.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from hub.ledger.checked import CheckedRecord
from hub.ledger.types import (
    Entry,
    Equivocation,
    Heartbeat,
    NodeInfo,
    NodeKey,
    StoredApproval,
    StoredCheckpoint,
    StoredPolicy,
    StoredRoot,
)
from trust import merkle
from trust.canonical import Sha256
from trust.errors import LedgerError, NotFoundError
from trust.stream import NodeId

__all__ = ["MemoryLedger", "Token", "Tx"]

_K = TypeVar("_K")
_V = TypeVar("_V")
_CHAIN_GENESIS = bytes(32)
_Subtree = tuple[int, int]
"""A perfect subtree of the Merkle tree: ``(level, index)``."""


@dataclass(frozen=True)
class Token:
    """An enrollment token as stored: its hash only, never the token."""

    node_id: NodeId
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None


@dataclass
class MemoryLedger:
    """The state one ledger holds — the in-memory counterpart of its database.

    Only :class:`~hub.ledger.memory.MemoryLedgerStore` reads and writes it, holding
    :attr:`lock`; several stores
    may share one ledger (like several hub processes sharing one database).
    """

    lock: threading.RLock = field(default_factory=threading.RLock)
    entries: list[Entry] = field(default_factory=list)
    seq_index: dict[tuple[str, int], tuple[int, Sha256]] = field(default_factory=dict)
    """(stream, seq) → (ledger index, envelope digest)."""
    heads: dict[str, tuple[int, Sha256]] = field(default_factory=dict)
    subtrees: dict[_Subtree, bytes] = field(default_factory=dict)
    checkpoints: list[StoredCheckpoint] = field(default_factory=list)
    equivocations: list[Equivocation] = field(default_factory=list)
    tokens: dict[str, Token] = field(default_factory=dict)
    nodes: dict[str, NodeInfo] = field(default_factory=dict)
    node_keys: dict[str, tuple[NodeKey, ...]] = field(default_factory=dict)
    policies: list[StoredPolicy] = field(default_factory=list)
    approvals: list[StoredApproval] = field(default_factory=list)
    roots: list[StoredRoot] = field(default_factory=list)
    """Published trust roots, ascending by version (versions only grow)."""
    heartbeats: dict[str, Heartbeat] = field(default_factory=dict)

    @contextmanager
    def write(self) -> Iterator[Tx]:
        """The write lock and one all-or-nothing write under it."""
        with self.lock:
            tx = Tx()
            try:
                yield tx
            except BaseException:
                tx.rollback()
                raise

    def stored_at(
        self, node_id: NodeId, seqs: Iterable[int]
    ) -> dict[int, tuple[int, Sha256]]:
        """The stream's stored (ledger index, digest) at those of ``seqs`` it holds."""
        out: dict[int, tuple[int, Sha256]] = {}
        for seq in seqs:
            found = self.seq_index.get((node_id, seq))
            if found is not None:
                out[seq] = found
        return out

    def append_locked(
        self, tx: Tx, records: Sequence[CheckedRecord], now: datetime
    ) -> tuple[list[int], int, bytes]:
        """Append checked records that passed the history rules; return their indexes, the
        new size and the new root (folded from the new frontier)."""
        start = len(self.entries)
        frontier = [self.subtree(n) for n in merkle.frontier_nodes(start)]
        chain = self.entries[-1].chain_hash if start else _CHAIN_GENESIS
        for i, item in enumerate(records):
            chain = hashlib.sha256(chain + item.leaf_hash).digest()
            tx.append(self.entries, Entry(
                index=start + i, node_id=NodeId(item.node_id), seq=item.seq,
                envelope=item.envelope, leaf_hash=item.leaf_hash, chain_hash=chain,
                received_at=now,
            ))
            tx.set(self.seq_index, (item.node_id, item.seq), (start + i, item.digest))
            tx.set(self.heads, item.node_id, (item.seq, item.digest))
        new_frontier, created = merkle.extend(start, frontier, [r.leaf_hash for r in records])
        for level, index, digest in created:
            tx.set(self.subtrees, (level, index), digest)
        n = len(records)
        return [start + i for i in range(n)], start + n, merkle.fold(new_frontier)

    def subtree(self, node: _Subtree) -> bytes:
        """A stored subtree's hash; :class:`LedgerError` if the tree lost it."""
        found = self.subtrees.get(node)
        if found is None:
            raise LedgerError(f"Merkle subtree {node} is missing from the store")
        return found

    def check_size(self, tree_size: int) -> None:
        """:class:`NotFoundError` unless ``tree_size`` is a size the ledger has had."""
        current = len(self.entries)
        if not 0 <= tree_size <= current:
            raise NotFoundError(f"tree size {tree_size} is beyond the ledger's size {current}")

class Tx:
    """One write: every change goes through :meth:`set` or :meth:`append`, which remember how
    to undo it, so :meth:`rollback` restores the state exactly as it was."""

    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] = []

    def set(self, table: dict[_K, _V], key: _K, value: _V) -> None:
        """``table[key] = value``, undoably."""
        if key in table:
            old = table[key]
            self._undo.append(lambda: table.__setitem__(key, old))
        else:
            self._undo.append(lambda: table.__delitem__(key))
        table[key] = value

    def append(self, table: list[_V], value: _V) -> None:
        """``table.append(value)``, undoably."""
        table.append(value)
        self._undo.append(lambda: table.__delitem__(-1))

    def rollback(self) -> None:
        """Undo every change, newest first."""
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()
