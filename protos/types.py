"""The wire-level values hub and client exchange: one set of types both sides use.

The hub's ledger store hands these out (:mod:`hub.ledger.types` re-exports them, and its stored
policy and approval types extend them with storage-only fields), the servicers send them, and
:class:`protos.client.HubClient` returns them; :mod:`protos.serde` converts them to and from
the generated messages. Invariants:

* all frozen: a value is a snapshot and never changes under its reader;
* ``envelope`` and ``checkpoint`` bytes are exactly the bytes that were signed (the DSSE
  envelope JSON, the checkpoint note); nothing re-encodes them;
* a ledger position is always named ``index``; an approval's id is ``approval_id`` (the hex
  SHA-256 of its envelope bytes);
* times are timezone-aware UTC :class:`~datetime.datetime` values (RFC 3339 ``Z`` strings on
  the wire only);
* fields derived from the envelope (:attr:`Entry.kind`, :attr:`Entry.envelope_sha256`) are
  computed from those bytes, never carried beside them, so they cannot disagree.

This module imports only :mod:`trust` (never ``hub`` or generated code).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime

from trust.canonical import Sha256, sha256_hex
from trust.stream import HUB_NODE_ID, NodeId

__all__ = [
    "Ack",
    "AppendResult",
    "ApprovalReceipt",
    "ApprovalRecord",
    "ConsistencyProof",
    "EnrollResult",
    "EntriesPage",
    "Entry",
    "HeartbeatResult",
    "InclusionProof",
    "PolicyRecord",
    "PublishResult",
    "RootPublishResult",
]

@dataclass(frozen=True)
class Ack:
    """One appended (or recognised duplicate) record; ``acks[i]`` answers ``envelopes[i]``."""

    index: int
    duplicate: bool


@dataclass(frozen=True)
class AppendResult:
    """Acks in request order and a signed checkpoint note covering them."""

    acks: tuple[Ack, ...]
    checkpoint: bytes


@dataclass(frozen=True)
class Entry:
    """One ledger entry: the verbatim envelope plus the hub's (recomputable) bookkeeping.

    The store reads it from its ``entries`` table and the client from a ``LedgerEntry``
    message; both carry the same values.
    """

    index: int
    node_id: NodeId
    seq: int
    envelope: bytes
    leaf_hash: bytes
    chain_hash: bytes
    received_at: datetime

    @property
    def envelope_sha256(self) -> Sha256:
        """Hex SHA-256 of the exact envelope bytes (what a successor's ``prev`` names)."""
        return sha256_hex(self.envelope)

    @property
    def kind(self) -> str:
        """``audit`` for node records, else the hub event's kind (a display label only).

        Read from the payload without verifying it: clients verify envelopes themselves, and
        this label is a convenience for filtering, never a basis for trust.
        """
        if self.node_id != HUB_NODE_ID:
            return "audit"
        try:
            outer = json.loads(self.envelope)
            payload = json.loads(base64.b64decode(outer["payload"]))
            return str(payload.get("kind", "hub"))
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
            return "hub"


@dataclass(frozen=True)
class EntriesPage:
    """A page of entries and the ledger size when it was read."""

    entries: tuple[Entry, ...]
    ledger_size: int


@dataclass(frozen=True)
class InclusionProof:
    """RFC 9162 inclusion proof of entry ``index`` in the tree of ``tree_size``."""

    index: int
    tree_size: int
    leaf_hash: bytes
    hashes: tuple[bytes, ...]


@dataclass(frozen=True)
class ConsistencyProof:
    """RFC 9162 consistency proof from ``old_size`` to ``new_size``."""

    old_size: int
    new_size: int
    hashes: tuple[bytes, ...]


@dataclass(frozen=True)
class EnrollResult:
    """The hub-signed enrollment (or key-rotation) entry and a checkpoint note covering it."""

    index: int
    envelope: bytes
    checkpoint: bytes


@dataclass(frozen=True)
class HeartbeatResult:
    """The hub's clock and the latest version of the node's policy, if any."""

    hub_time: datetime
    latest_policy_version: int | None


@dataclass(frozen=True)
class PublishResult:
    """What the hub stored for a published bundle."""

    name: str
    version: int
    revision: str
    digest: str
    index: int


@dataclass(frozen=True)
class PolicyRecord:
    """A stored policy bundle as Get and Watch send it: the verbatim envelope, name, version
    and ``revision`` (an ETag: name, version and a digest prefix)."""

    name: str
    version: int
    revision: str
    envelope: bytes
    published_at: datetime


@dataclass(frozen=True)
class ApprovalReceipt:
    """The hub's receipt for a submitted approval."""

    approval_id: Sha256
    role: str
    index: int


@dataclass(frozen=True)
class ApprovalRecord:
    """A recorded approval: the verbatim envelope, the role that signed it and its entry.

    ``approval_id`` is the hex SHA-256 of the envelope bytes.
    """

    approval_id: Sha256
    role: str
    envelope: bytes
    index: int
    received_at: datetime


@dataclass(frozen=True)
class RootPublishResult:
    """What the hub recorded for a published trust root: its version, the hex SHA-256 of its
    envelope bytes, and the ledger index of its ``root_publication`` event."""

    version: int
    digest: Sha256
    index: int
