"""The hub's ledger: schema, store interface and SQL implementation, checkpointer.

Start at :mod:`hub.ledger.store` (the interface and append rules).
"""

from hub.ledger.checkpointer import Checkpointer
from hub.ledger.store import AppendResult, Entry, LedgerStore, StoredCheckpoint

__all__ = ["AppendResult", "Checkpointer", "Entry", "LedgerStore", "StoredCheckpoint"]
