"""Helpers shared by the ledger tests: the hub key's seed and a whole-ledger audit.

Nodes, honest or not, come from :mod:`tests.sim`.
"""

from __future__ import annotations

import hashlib

from hub.ledger.store import LedgerStore
from trust import checkpoint as ck
from trust import keys, merkle
from trust.record import GENESIS_PREV, HUB_NODE_ID, AuditRecord, HubEvent

HUB_SEED = bytes(range(32))
"""Seed of the ledger tests' hub key (fixed, so a child process can rebuild the key)."""


def verify_whole_ledger(
    store: LedgerStore,
    hub_public: keys.PublicKey,
    node_keys: dict[str, keys.PublicKey],
    origin: str = "warden.test/ledger",
) -> None:
    """Audit everything: indexes 0..n-1, chain hashes, per-stream seq/prev, signatures,
    the Merkle root, and every stored checkpoint consistent with the next."""
    size = store.size()
    entries = store.entries(0, size)
    assert [e.index for e in entries] == list(range(size))
    chain = bytes(32)
    heads: dict[str, tuple[int, str]] = {}
    for e in entries:
        assert e.leaf_hash == merkle.leaf_hash(e.envelope)
        chain = hashlib.sha256(chain + e.leaf_hash).digest()
        assert e.chain_hash == chain, e.index
        if e.node_id == HUB_NODE_ID:
            rec: HubEvent | AuditRecord = HubEvent.from_envelope(e.envelope, hub_public)
        else:
            rec = AuditRecord.from_envelope(e.envelope, node_keys[e.node_id])
        seq, prev = heads.get(e.node_id, (0, GENESIS_PREV))
        assert (rec.seq, rec.prev) == (seq + 1, prev), (e.index, e.node_id)
        heads[e.node_id] = (rec.seq, rec.digest)
    assert store.root_at(size) == merkle.root([e.leaf_hash for e in entries])
    previous = None
    size_seen = 0
    while (cp := store.checkpoint_at_least(size_seen + 1)) is not None:
        ck.verify_checkpoint(cp.note, origin, hub_public, origin)
        assert cp.root_hash == store.root_at(cp.size)
        if previous is not None:
            merkle.verify_consistency(
                previous.size, cp.size, store.consistency_proof(previous.size, cp.size),
                previous.root_hash, cp.root_hash,
            )
        previous, size_seen = cp, cp.size
