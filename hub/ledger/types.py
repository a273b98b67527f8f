"""The values the ledger store hands out: entries, checkpoints, nodes, policies, approvals.

All frozen: a value read from the store is a snapshot and never changes under its reader.
Bytes fields (``envelope``, ``note``) are exactly the bytes that were signed and stored;
nothing re-encodes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from trust.canonical import Sha256
from trust.checkpoint import Checkpoint
from trust.keys import KeyId, PublicKey, SigningKey

__all__ = [
    "MAX_BATCH",
    "AppendResult",
    "ApprovalRecord",
    "CheckpointSigner",
    "Entry",
    "Equivocation",
    "Heartbeat",
    "NodeInfo",
    "NodeKey",
    "PolicyRecord",
    "StoredCheckpoint",
]

MAX_BATCH = 10_000
"""The most records one :meth:`LedgerStore.append_records` call accepts."""


@dataclass(frozen=True)
class AppendResult:
    """What a batch append did.

    ``indexes[i]`` is the ledger index of the batch's i-th envelope (new or already present);
    ``duplicates`` lists the batch *positions* that were resends of stored records;
    ``tree_size`` is the ledger size after the append; ``checkpoint`` covers every index of the
    batch when the append was asked to sign one (it was committed in the same transaction).
    """

    indexes: list[int]
    duplicates: list[int]
    tree_size: int
    checkpoint: StoredCheckpoint | None = None


@dataclass(frozen=True)
class CheckpointSigner:
    """How the hub signs checkpoints: the origin line, the note's key name and the hub key."""

    origin: str
    key_name: str
    key: SigningKey


@dataclass(frozen=True)
class Entry:
    """One ledger entry, exactly as stored."""

    idx: int
    node_id: str
    seq: int
    envelope: bytes
    envelope_sha256: Sha256
    leaf_hash: bytes
    chain_hash: bytes
    received_at: datetime


@dataclass(frozen=True)
class StoredCheckpoint:
    """A signed checkpoint: the parsed head and the exact note bytes that were signed."""

    checkpoint: Checkpoint
    note: bytes
    created_at: datetime

    @property
    def size(self) -> int:
        """The tree size the checkpoint commits to."""
        return self.checkpoint.size

    @property
    def root_hash(self) -> bytes:
        """The RFC 9162 root at that size."""
        return self.checkpoint.root_hash

    @property
    def origin(self) -> str:
        """The log origin the checkpoint was signed under (its first line)."""
        return self.checkpoint.origin


@dataclass(frozen=True)
class NodeInfo:
    """An enrolled node and its current key."""

    node_id: str
    key_id: KeyId
    public_key: PublicKey
    enrolled_at: datetime
    status: str


@dataclass(frozen=True)
class NodeKey:
    """A key a node has held; ``retired_at`` is set once it was rotated away."""

    node_id: str
    key_id: KeyId
    public_key: PublicKey
    added_at: datetime
    retired_at: datetime | None
    ledger_idx: int | None


@dataclass(frozen=True)
class PolicyRecord:
    """A published policy bundle (the envelope bytes verbatim) and its ledger entry."""

    name: str
    version: int
    digest: Sha256
    envelope: bytes
    published_at: datetime
    ledger_idx: int


@dataclass(frozen=True)
class ApprovalRecord:
    """A submitted approval envelope and its ledger entry."""

    id: int
    role: str
    subject: str
    digest: Sha256
    envelope: bytes
    created_at: datetime
    ledger_idx: int


@dataclass(frozen=True)
class Heartbeat:
    """A node's last sign of life."""

    node_id: str
    last_seen: datetime
    agent_version: str
    policy_name: str | None
    policy_version: int | None


@dataclass(frozen=True)
class Equivocation:
    """Evidence that a node signed two different records with one ``seq``."""

    id: int
    node_id: str
    seq: int
    existing_sha256: Sha256
    offered_envelope: bytes
    flagged_at: datetime
