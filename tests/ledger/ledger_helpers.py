"""Helpers shared by the ledger tests: a well-behaved fake node and a whole-ledger audit."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from hub.ledger.store import LedgerStore
from trust import checkpoint as ck
from trust import keys, merkle
from trust.canonical import Sha256
from trust.record import (
    GENESIS_PREV,
    HUB_NODE_ID,
    AuditRecord,
    EventType,
    HubEvent,
    Subject,
    build_record,
    envelope_digest,
    sign_record,
)

NOW = datetime(2026, 11, 26, 11, 0, 0, tzinfo=UTC)
HUB_SEED = bytes(range(32))


class FakeNode:
    """A node that signs a continuous stream of audit records."""

    def __init__(self, node_id: str, key: keys.SigningKey | None = None) -> None:
        self.node_id = node_id
        self.key = key or keys.generate()
        self.seq = 0
        self.prev = GENESIS_PREV

    def record(
        self, *, seq: int | None = None, prev: str | None = None, node_id: str | None = None,
        key: keys.SigningKey | None = None, model: str = "credit", advance: bool = True,
    ) -> bytes:
        """The next record (or one with overridden fields); advances the stream if asked."""
        s = self.seq + 1 if seq is None else seq
        payload = build_record(
            node_id=node_id or self.node_id,
            seq=s,
            prev=self.prev if prev is None else prev,
            time=NOW + timedelta(seconds=s),
            event=EventType.VALIDATION,
            subject=Subject(model, str(s), Sha256("ab" * 32)),
            evidence={"rows": s},
        )
        env = sign_record(payload, key or self.key)
        if advance:
            self.seq, self.prev = s, envelope_digest(env)
        return env

    def batch(self, n: int) -> list[bytes]:
        """The next ``n`` records."""
        return [self.record() for _ in range(n)]



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
    assert [e.idx for e in entries] == list(range(size))
    chain = bytes(32)
    heads: dict[str, tuple[int, str]] = {}
    for e in entries:
        assert e.leaf_hash == merkle.leaf_hash(e.envelope)
        chain = hashlib.sha256(chain + e.leaf_hash).digest()
        assert e.chain_hash == chain, e.idx
        if e.node_id == HUB_NODE_ID:
            rec: HubEvent | AuditRecord = HubEvent.from_envelope(e.envelope, hub_public)
        else:
            rec = AuditRecord.from_envelope(e.envelope, node_keys[e.node_id])
        seq, prev = heads.get(e.node_id, (0, GENESIS_PREV))
        assert (rec.seq, rec.prev) == (seq + 1, prev), (e.idx, e.node_id)
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
