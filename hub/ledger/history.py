"""The history rules of an append, as a pure function of a checked batch and the stored stream.

:func:`plan_append` decides, for a :class:`~hub.ledger.checked.CheckedBatch` and what the
store holds for that stream (its head and the stored records at the seqs the batch names),
which records are new, which are resends, and which refusal applies — rules 3-7 of
:mod:`hub.ledger.store`. It reads no database and no clock, so every backend runs the same
rules, under its own write lock, on the state it read under that lock.

Invariants:

* Only checked records get here: signature and format were verified once, before the lock.
  What is decided here is whether the key that signed each record may sign *that* record: the
  node's current key for a record not stored; for a second version of a stored seq, a key the
  node held when that seq was appended or later (otherwise it is not the node's equivocation).
* Key rules are applied to the whole batch before the sequence rules, as verification would.
* :class:`Equivocated` is raised (not returned) so the caller's transaction rolls back before
  the caller records the flag in a transaction of its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hub.ledger.checked import CheckedBatch, CheckedRecord
from trust.canonical import Sha256
from trust.errors import (
    ChainBrokenError,
    FormatError,
    LedgerError,
    SequenceGapError,
    SignatureError,
)
from trust.stream import NodeId

__all__ = ["AppendPlan", "Equivocated", "Stored", "plan_append", "stored_seqs"]

Stored = tuple[int, Sha256]
"""A stored record of the stream: its ledger index and envelope digest."""


class Equivocated(Exception):
    """The node signed a second record for a stored seq.

    Raised inside the write transaction so it rolls back before the flag is written.
    """

    def __init__(self, node_id: NodeId, seq: int, existing: Sha256, offered: bytes) -> None:
        super().__init__(node_id, seq)
        self.node_id, self.seq, self.existing, self.offered = node_id, seq, existing, offered


@dataclass(frozen=True)
class AppendPlan:
    """What to do with a batch: append ``fresh`` (in order), acknowledge the rest.

    ``positions[i]`` is ``(True, k)`` for the batch's i-th record when it is the k-th fresh
    record (its index is known only at insert time), ``(False, idx)`` when it is the stored
    record at ledger index ``idx``; ``duplicates`` are the positions of resends.
    """

    fresh: list[CheckedRecord]
    positions: list[tuple[bool, int]]
    duplicates: list[int]

    def indexes(self, new_indexes: Sequence[int]) -> list[int]:
        """Every position's ledger index, given the indexes the fresh records got."""
        return [new_indexes[v] if is_new else v for is_new, v in self.positions]


def stored_seqs(batch: CheckedBatch, head_seq: int) -> list[int]:
    """The seqs of the batch at or below the stream's head: those the caller must look up."""
    return sorted({r.seq for r in batch.records if r.seq <= head_seq})


def plan_append(
    batch: CheckedBatch, head: tuple[int, Sha256], stored: Mapping[int, Stored]
) -> AppendPlan:
    """Apply the history rules to ``batch`` given the stream's ``head`` (last seq and digest)
    and ``stored``, the stream's records at (at least) the seqs of :func:`stored_seqs`.

    Raises :class:`SignatureError` (a key the node may not use for that record),
    :class:`Equivocated`, :class:`FormatError` (two versions of one new seq in the batch),
    :class:`SequenceGapError`, :class:`ChainBrokenError`, or :class:`LedgerError` when a seq
    below the head is missing from the store (its integrity is broken).
    """
    _check_signers(batch, head[0], stored)
    node_id = batch.node_id
    head_seq, head_digest = head
    fresh: list[CheckedRecord] = []
    positions: list[tuple[bool, int]] = []
    duplicates: list[int] = []
    seq, digest = head_seq, head_digest
    for pos, it in enumerate(batch.records):
        if it.seq <= seq:
            if it.seq <= head_seq:
                if it.seq not in stored:
                    raise LedgerError(f"node {node_id} seq {it.seq} is missing from the ledger")
                idx, existing = stored[it.seq]
                where = (False, idx)
                if existing != it.digest:
                    raise Equivocated(node_id, it.seq, existing, it.envelope)
            else:  # a resend of a record earlier in this same batch
                k = it.seq - head_seq - 1
                if fresh[k].digest != it.digest:
                    # Neither version is stored, so nothing is flagged: a flag must name
                    # a record the ledger keeps, and a refused batch forks no history.
                    raise FormatError(
                        f"node {node_id}: the batch holds two different records with seq"
                        f" {it.seq}; refused as malformed (nothing was stored)"
                    )
                where = (True, k)
            positions.append(where)
            duplicates.append(pos)
            continue
        if it.seq != seq + 1:
            raise SequenceGapError(
                f"node {node_id} record seq {it.seq} does not follow seq {seq}",
                expected=seq + 1,
                hint=f"send seq {seq + 1} next",
            )
        if it.prev != digest:
            raise ChainBrokenError(
                f"node {node_id} record seq {it.seq}: prev {it.prev[:16]}… is not the digest"
                f" of record {seq} ({digest[:16]}…)"
            )
        positions.append((True, len(fresh)))
        fresh.append(it)
        seq, digest = it.seq, it.digest
    return AppendPlan(fresh, positions, duplicates)


def _check_signers(batch: CheckedBatch, head_seq: int, stored: Mapping[int, Stored]) -> None:
    """Refuse a record signed by a key the node may not use for it (see the module)."""
    ring = batch.ring
    current = ring.current.key_id
    for pos, r in enumerate(batch.records):
        at = stored.get(r.seq) if r.seq <= head_seq else None
        if at is None:
            if r.signer != current:
                raise SignatureError(
                    f"record {pos} of the batch is signed by key {r.signer[:16]}…, which node"
                    f" {ring.node_id!r} no longer holds; new records must be signed by its"
                    f" current key {current[:16]}…"
                )
        elif at[1] != r.digest and r.signer not in ring.held_from(at[0]):
            raise SignatureError(
                f"record {pos} of the batch is a second version of stored seq {r.seq}, signed"
                f" by key {r.signer[:16]}…, which node {ring.node_id!r} no longer held when"
                " that seq was appended"
            )
