"""The values the ledger store hands out: entries, checkpoints, nodes, policies, approvals.

All frozen: a value read from the store is a snapshot and never changes under its reader.
Bytes fields (``envelope``, ``note``) are exactly the bytes that were signed and stored;
nothing re-encodes them.

What the hub sends on the wire is one of the shared types of :mod:`protos.types` (the client
returns the same ones): an :class:`Entry` *is* the wire entry; a :class:`StoredPolicy` and a
:class:`StoredApproval` *are* the wire :class:`~protos.types.PolicyRecord` and
:class:`~protos.types.ApprovalRecord`, extended by the fields only the store knows (a policy's
digest and ledger index, an approval's subject); a :class:`StoredRoot` *is* the wire
:class:`~protos.types.RootPublishResult` plus the envelope and its publication time. So field
names agree across the hub, the client and the wire: ``index`` for a ledger position,
``approval_id`` for an approval.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from protos.types import ApprovalRecord as WireApprovalRecord
from protos.types import Entry
from protos.types import PolicyRecord as WirePolicyRecord
from protos.types import RootPublishResult as WireRootPublishResult
from trust.canonical import Sha256
from trust.checkpoint import Checkpoint
from trust.keys import KeyId, PublicKey, SigningKey
from trust.stream import NodeId

__all__ = [
    "MAX_BATCH",
    "BatchAppended",
    "CheckpointSigner",
    "Entry",
    "Equivocation",
    "Heartbeat",
    "NodeInfo",
    "NodeKey",
    "StoredApproval",
    "StoredCheckpoint",
    "StoredPolicy",
    "StoredRoot",
    "policy_revision",
]

MAX_BATCH = 10_000
"""The most records one :meth:`LedgerStore.append_records` call accepts."""


@dataclass(frozen=True)
class BatchAppended:
    """What a batch append did (the store's account; the wire reply is
    :class:`protos.types.AppendResult`).

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

    node_id: NodeId
    key_id: KeyId
    public_key: PublicKey
    enrolled_at: datetime
    status: str


@dataclass(frozen=True)
class NodeKey:
    """A key a node has held; ``retired_at`` is set once it was rotated away."""

    node_id: NodeId
    key_id: KeyId
    public_key: PublicKey
    added_at: datetime
    retired_at: datetime | None
    ledger_idx: int | None


def policy_revision(name: str, version: int, digest: Sha256) -> str:
    """The ETag-like revision of a stored bundle: name, version and payload digest prefix."""
    return f"{name}:{version}:{digest[:16]}"


@dataclass(frozen=True)
class StoredPolicy(WirePolicyRecord):
    """A published policy bundle (the envelope bytes verbatim) and its ledger entry.

    Build with :meth:`of`, which derives ``revision`` from name, version and digest.
    """

    digest: Sha256
    index: int

    @classmethod
    def of(cls, name: str, version: int, digest: Sha256, envelope: bytes,
           published_at: datetime, index: int) -> StoredPolicy:
        """A stored policy with its revision (:func:`policy_revision`) filled in."""
        return cls(name, version, policy_revision(name, version, digest), envelope,
                   published_at, digest, index)


@dataclass(frozen=True)
class StoredApproval(WireApprovalRecord):
    """A submitted approval envelope and its ledger entry, with the subject it approves.

    ``approval_id`` is the hex SHA-256 of the envelope bytes (unique per store).
    """

    subject: str


@dataclass(frozen=True)
class StoredRoot(WireRootPublishResult):
    """A published trust root (the envelope bytes verbatim, ``digest`` their hex SHA-256) and
    the ledger index of its ``root_publication`` event."""

    envelope: bytes
    published_at: datetime


@dataclass(frozen=True)
class Heartbeat:
    """A node's last sign of life."""

    node_id: NodeId
    last_seen: datetime
    agent_version: str
    policy_name: str | None
    policy_version: int | None


@dataclass(frozen=True)
class Equivocation:
    """Evidence that a node signed two different records with one ``seq``."""

    id: int
    node_id: NodeId
    seq: int
    existing_sha256: Sha256
    offered_envelope: bytes
    flagged_at: datetime
