"""The hub's ledger: schema, store interfaces and SQL implementation, verification, checkpointer.

Start at :mod:`hub.ledger.store` (the interfaces and append rules). An append goes one way
through: :mod:`hub.ledger.verify` parses and verifies the exact bytes once into
:class:`CheckedRecord` values, :mod:`hub.ledger.history` applies the history rules to those,
and :mod:`hub.ledger.sql` stores them.
"""

from hub.ledger.checked import CheckedBatch, CheckedRecord, HeldKey, KeyRing
from hub.ledger.checkpointer import Checkpointer
from hub.ledger.store import (
    CheckpointStore,
    HeartbeatStore,
    LedgerStore,
    LogStore,
    NodeStore,
    PolicyStore,
    RootStore,
)
from hub.ledger.types import (
    MAX_BATCH,
    BatchAppended,
    CheckpointSigner,
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

__all__ = [
    "MAX_BATCH",
    "BatchAppended",
    "CheckedBatch",
    "CheckedRecord",
    "CheckpointSigner",
    "CheckpointStore",
    "Checkpointer",
    "Entry",
    "Equivocation",
    "Heartbeat",
    "HeartbeatStore",
    "HeldKey",
    "KeyRing",
    "LedgerStore",
    "LogStore",
    "NodeInfo",
    "NodeKey",
    "NodeStore",
    "PolicyStore",
    "RootStore",
    "StoredApproval",
    "StoredCheckpoint",
    "StoredPolicy",
    "StoredRoot",
]
