"""Records that passed verification, and the keys a node has held: what the history rules see.

Invariants:

* A :class:`CheckedRecord`'s ``envelope`` is exactly the bytes that were verified (never a
  re-encoding); ``digest`` is their hex SHA-256 (what the next record names as ``prev``),
  ``leaf_hash`` their RFC 9162 leaf hash, ``signer`` the key id that verified them.
* Checked records come from :mod:`hub.ledger.verify` (a node's records, a pre-built hub
  event) or from the hub's own log, for the hub events it has just signed
  (:meth:`CheckedRecord.signed_here`). Nothing else builds them, and the stores' history rules
  (:mod:`hub.ledger.history`) accept nothing else.
* A :class:`KeyRing` is a snapshot of a node's keys: ``history`` oldest first, each with the
  ledger index of the event that installed it; ``current`` is the key that may sign new
  records. The store re-checks under its write lock that ``current`` is still current.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from trust.canonical import Sha256
from trust.keys import KeyId, PublicKey
from trust.merkle import leaf_hash
from trust.stream import NodeId

__all__ = ["CheckedBatch", "CheckedRecord", "HeldKey", "KeyRing"]


@dataclass(frozen=True, slots=True)
class CheckedRecord:
    """One verified record of a stream (a node's, or the hub's), ready for the history rules."""

    node_id: NodeId
    seq: int
    prev: Sha256
    envelope: bytes
    digest: Sha256
    leaf_hash: bytes
    signer: KeyId

    @classmethod
    def signed_here(
        cls, node_id: NodeId, seq: int, prev: Sha256, envelope: bytes, signer: KeyId
    ) -> CheckedRecord:
        """A record this process has just signed itself (a hub event): nothing to verify."""
        data = bytes(envelope)
        return cls(node_id, seq, prev, data, Sha256(hashlib.sha256(data).hexdigest()),
                   leaf_hash(data), signer)


@dataclass(frozen=True)
class HeldKey:
    """A key a node has held, and the ledger index of the event that installed it."""

    key: PublicKey
    since_idx: int | None


@dataclass(frozen=True)
class KeyRing:
    """The keys a node has held (``history``, oldest first) and the one it holds now."""

    node_id: NodeId
    current: PublicKey
    history: tuple[HeldKey, ...] = ()

    @property
    def keys(self) -> tuple[PublicKey, ...]:
        """Every key to try when verifying: the current key first, then older keys, newest
        first (a resend after a rotation is most likely signed by the key just retired)."""
        out = [self.current]
        for held in reversed(self.history):
            if held.key not in out:
                out.append(held.key)
        return tuple(out)

    def held_from(self, idx: int) -> frozenset[KeyId]:
        """The keys the node held at ledger index ``idx`` or later (the current key too).

        Key j was current from its ``since_idx`` up to the next key's; it counts when it was
        still held at ``idx``. These are the keys whose signature over a second version of a
        record stored at ``idx`` is the node's own equivocation.
        """
        held = {self.current.key_id}
        for j, row in enumerate(self.history):
            until = self.history[j + 1].since_idx if j + 1 < len(self.history) else None
            if until is None or until > idx:
                held.add(row.key.key_id)
        return frozenset(held)


@dataclass(frozen=True)
class CheckedBatch:
    """A batch whose every record verified under a key of ``ring`` (in batch order)."""

    ring: KeyRing
    records: tuple[CheckedRecord, ...]

    @property
    def node_id(self) -> NodeId:
        """The stream the batch was checked for."""
        return self.ring.node_id
