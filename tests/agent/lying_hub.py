"""A deliberately lying hub: the real hub's answers, altered on command (tests only).

:class:`LyingHub` is a :class:`~protos.client.HubClient` of a real, running hub
(``tests/hub/harness.py``: real servicers, real ledger, TLS on loopback). Every call goes to
the hub; a lie, once set, changes what the hub answered before the caller sees it. Lies that
need a signature are signed with the real hub key (the test holds it, ``Officers.hub``), so
they verify under the trust root exactly as the hub's own checkpoints do — the witness must
catch them by what they say, never by a bad signature.

Lies (at most one at a time; :meth:`LyingHub.honest` turns it off):

* :meth:`~LyingHub.rewrite` / :meth:`~LyingHub.drop` — a forged history: the real ledger's
  leaves with one leaf replaced (a rewritten record) or removed (a dropped one, every later
  record moving down). Checkpoints, inclusion and consistency proofs are then all computed
  from the forged leaves and signed: a self-consistent alternative log.
* :meth:`~LyingHub.rollback` — serve the hub's own stored, signed checkpoint of an earlier,
  smaller tree as the latest.
* :meth:`~LyingHub.bad_proofs` — inclusion proofs with one hash altered.
* :meth:`~LyingHub.move_acks` — append honestly but acknowledge each record ``delta``
  indices away (an index holding another record).
* :meth:`~LyingHub.reorder_acks` — append honestly but hand the acks back reversed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from hub.config import Role
from hub.server import RunningHub
from protos.client import HubClient, NodeIdentity
from protos.types import AppendResult, ConsistencyProof, InclusionProof
from tests.hub.harness import HubWorld, operator
from tests.sim import SimNode
from trust import merkle
from trust.checkpoint import Checkpoint, sign_checkpoint
from trust.keys import SigningKey

__all__ = ["LyingHub", "lying_client"]


class LyingHub(HubClient):
    """A node's client of a real hub whose answers lie when told to (see the module)."""

    def __init__(self, target: str, *, ca_cert: bytes, node: NodeIdentity, auditor: HubClient,
                 hub_key: SigningKey, origin: str) -> None:
        super().__init__(target, ca_cert=ca_cert, node=node, timeout=10)
        self._auditor = auditor  # reads the real entries (nodes may not) to forge trees
        self._hub_key = hub_key
        self._origin = origin
        self._leaves: list[bytes] | None = None  # the forged history, when lying about it
        self._rollback_to: int | None = None
        self._bad_proofs = False
        self._ack_delta = 0
        self._reorder = False
        self.lies_told = 0

    # -- commands --------------------------------------------------------------------------

    def honest(self) -> None:
        """Stop lying."""
        self._leaves, self._rollback_to = None, None
        self._bad_proofs, self._ack_delta, self._reorder = False, 0, False

    def rewrite(self, index: int, *, size: int | None = None) -> None:
        """From now on, show the log with entry ``index`` replaced by other bytes (cut to its
        first ``size`` entries when given: a fork of a tree the caller has seen)."""
        leaves = self._real_leaves()
        leaves[index] = merkle.leaf_hash(b"rewritten by the hub")
        self._leaves = leaves[:size]

    def drop(self, index: int) -> None:
        """From now on, show the log without entry ``index``."""
        leaves = self._real_leaves()
        del leaves[index]
        self._leaves = leaves

    def rollback(self, size: int) -> None:
        """From now on, serve the hub's real signed checkpoint of ``size`` as the latest."""
        self._rollback_to = size

    def bad_proofs(self) -> None:
        """From now on, alter the first hash of every inclusion proof."""
        self._bad_proofs = True

    def move_acks(self, delta: int) -> None:
        """From now on, acknowledge every appended record at its index + ``delta``."""
        self._ack_delta = delta

    def reorder_acks(self) -> None:
        """From now on, return each batch's acknowledgements in reverse order."""
        self._reorder = True

    # -- the altered answers ---------------------------------------------------------------

    def get_checkpoint(self, tree_size: int | None = None) -> bytes:
        if self._rollback_to is not None and tree_size is None:
            self.lies_told += 1
            return super().get_checkpoint(self._rollback_to)
        if self._leaves is not None:
            size = len(self._leaves) if tree_size is None else tree_size
            self.lies_told += 1
            return self._sign(size)
        return super().get_checkpoint(tree_size)

    def inclusion_proof(self, index: int, tree_size: int | None = None) -> InclusionProof:
        if self._leaves is not None:
            size = len(self._leaves) if tree_size is None else tree_size
            leaves = self._leaves[:size]
            self.lies_told += 1
            return InclusionProof(index, size, leaves[index],
                                  tuple(merkle.inclusion_proof(leaves, index)))
        proof = super().inclusion_proof(index, tree_size)
        if self._bad_proofs and proof.hashes:
            self.lies_told += 1
            first = bytes([proof.hashes[0][0] ^ 1]) + proof.hashes[0][1:]
            return replace(proof, hashes=(first, *proof.hashes[1:]))
        return proof

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        if self._leaves is not None:
            size = len(self._leaves) if new_size is None else new_size
            self.lies_told += 1
            return ConsistencyProof(old_size, size, tuple(
                merkle.consistency_proof(self._leaves[:size], old_size)))
        return super().consistency_proof(old_size, new_size)

    def append(self, envelopes: Sequence[bytes], *, timeout: float | None = None) -> AppendResult:
        result = super().append(envelopes, timeout=timeout)
        acks = result.acks
        if self._ack_delta:
            self.lies_told += 1
            acks = tuple(replace(a, index=a.index + self._ack_delta) for a in acks)
        if self._reorder and len(acks) > 1:
            self.lies_told += 1
            acks = tuple(reversed(acks))
        return replace(result, acks=acks)

    # -- forging ---------------------------------------------------------------------------

    def _real_leaves(self) -> list[bytes]:
        leaves: list[bytes] = []
        while True:
            page = self._auditor.get_entries(len(leaves))
            leaves.extend(e.leaf_hash for e in page.entries)
            if not page.entries or len(leaves) >= page.ledger_size:
                return leaves

    def _sign(self, size: int) -> bytes:
        assert self._leaves is not None
        cp = Checkpoint(self._origin, size, merkle.root(self._leaves[:size]))
        return sign_checkpoint(cp, self._origin, self._hub_key)

    def __enter__(self) -> LyingHub:
        return self

    def close(self) -> None:
        self._auditor.close()
        super().close()


def lying_client(world: HubWorld, hub: RunningHub, node: SimNode) -> LyingHub:
    """A :class:`LyingHub` for ``node`` (enrolled already) at the running ``hub``."""
    return LyingHub(f"127.0.0.1:{hub.port}", ca_cert=world.ca,
                    node=NodeIdentity(node.node_id, node.key),
                    auditor=operator(world, hub, Role.AUDITOR),
                    hub_key=world.officers.hub, origin=world.config.origin)
