"""The SQLAlchemy ledger store (SQLite and PostgreSQL), one module per concern.

* :mod:`~hub.ledger.sql.tx` — helpers every part shares (bounds, driver-level inserts);
* :mod:`~hub.ledger.sql.tree` — entries, Merkle subtrees and stream heads (the log's storage);
* :mod:`~hub.ledger.sql.keys` — a node's key ring, read to verify an append;
* :mod:`~hub.ledger.sql.log` — appends, hub events, reads and proofs (:class:`SqlLog`);
* :mod:`~hub.ledger.sql.checkpoints`, :mod:`~hub.ledger.sql.nodes`,
  :mod:`~hub.ledger.sql.policies`, :mod:`~hub.ledger.sql.roots`,
  :mod:`~hub.ledger.sql.heartbeats` — the other parts;
* :mod:`~hub.ledger.sql.store` — :class:`SqlLedgerStore`, the façade composed of them.

Every write happens in one :func:`hub.db.write_transaction`; rows of ``entries``,
``subtrees``, ``checkpoints`` and ``roots`` are only ever INSERTed.
"""

from hub.ledger.sql.checkpoints import SqlCheckpoints
from hub.ledger.sql.heartbeats import SqlHeartbeats
from hub.ledger.sql.log import SqlLog
from hub.ledger.sql.nodes import SqlNodes
from hub.ledger.sql.policies import SqlPolicies
from hub.ledger.sql.roots import SqlRoots
from hub.ledger.sql.store import SqlLedgerStore, SqlParts

__all__ = [
    "SqlCheckpoints",
    "SqlHeartbeats",
    "SqlLedgerStore",
    "SqlLog",
    "SqlNodes",
    "SqlParts",
    "SqlPolicies",
    "SqlRoots",
]
