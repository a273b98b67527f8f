"""The hub's state behind one interface: the append-only ledger and everything around it.

:class:`LedgerStore` is the contract the hub's handlers code against. It combines one interface
per concern — :class:`LogStore` (the append-only log and its proofs), :class:`CheckpointStore`,
:class:`NodeStore` (tokens, nodes, keys), :class:`PolicyStore` (bundles and approvals),
:class:`RootStore` (published trust-root rotations), :class:`HeartbeatStore` — so code
that needs one concern can ask for just that part. The values they return live in
:mod:`hub.ledger.types` (re-exported here; entries, policies, approvals and roots are, or
extend, the shared wire types of :mod:`protos.types`). :meth:`LedgerStore.open` returns the
SQLAlchemy implementation (:mod:`hub.ledger.sql`) for a SQLite path/URL or a PostgreSQL URL,
migrated to the newest schema.

Append rules (:meth:`LedgerStore.append_records`), applied to a batch all-or-nothing. The
envelope bytes are parsed and verified exactly once, into
:class:`~hub.ledger.verify.CheckedRecord` values (which key signed them); every later rule looks
at checked records only:

1. the node is enrolled (else :class:`NodeNotEnrolledError`, an ``AccessDeniedError``);
2. every envelope parses and verifies under a key the node has held (its current key first;
   ``FormatError`` / ``SignatureError`` under the current key otherwise), and its payload names
   the calling node (``AccessDeniedError``);
3. a record whose ``(node_id, seq)`` is already in the ledger with identical bytes is a resend:
   it is acknowledged with its existing index and not appended again, whichever of the node's
   keys signed it, so a resend still succeeds after a key rotation;
4. every record not already stored must be signed by the node's *current* key
   (``SignatureError``);
5. the same ``seq`` as a stored record with different bytes is equivocation: an
   ``equivocations`` row naming the stored record is committed (even though the batch is
   refused) and :class:`EquivocationError` is raised. Such a record may be signed by the key
   the node held when that seq was appended, or any later key of the node; by no other key
   (``SignatureError``), so nobody else can get an equivocation flagged against a node;
6. two different records with the same seq inside one batch, neither stored, make the batch
   malformed (``FormatError``) and flag nothing: a flag names a record the ledger keeps;
7. otherwise ``seq`` must be the node's last + 1 (``SequenceGapError(expected=...)``) and
   ``prev`` the SHA-256 of the node's previous envelope (``ChainBrokenError``).

Rules 3-7 are :func:`hub.ledger.history.plan_append`, a pure function of the checked batch and
the stored stream, so every backend applies them the same way.

Limits (set at :meth:`LedgerStore.open`; ``None`` = unlimited): a record envelope larger than
``max_record_bytes`` is refused before anything else (:class:`RecordTooLargeError`, nothing
written); :meth:`LedgerStore.entries` returns at most ``page_bytes`` of envelopes (always at
least one entry), so a reader continues from the last returned index + 1.

A ledger has one checkpoint origin for life: a checkpoint is never signed under an origin other
than the stored checkpoints' (:class:`LedgerError`), since consistency proofs between the two
would verify under neither.

Nothing is acknowledged before it is committed durably. Hub events (enrollments, key
rotations, policy publications, approvals, root publications) are ledger entries of the
stream ``node_id="hub"`` signed by the hub key, with their own ``seq``/``prev`` chain,
appended atomically with the state change they record.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

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
from trust.canonical import Sha256
from trust.keys import PublicKey, SigningKey
from trust.stream import NodeId

if TYPE_CHECKING:
    from hub.ledger.verify import RecordVerifier

__all__ = [
    "MAX_BATCH",
    "BatchAppended",
    "CheckpointSigner",
    "CheckpointStore",
    "Entry",
    "Equivocation",
    "Heartbeat",
    "HeartbeatStore",
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


class LogStore(abc.ABC):
    """The append-only log: node and hub streams, heads, equivocation flags, reads, proofs.

    Appends follow the rules of the module docstring; methods are thread- and process-safe.
    """

    @abc.abstractmethod
    def append_records(
        self,
        node_id: NodeId,
        envelopes: Sequence[bytes],
        *,
        now: datetime,
        checkpoint: CheckpointSigner | None = None,
    ) -> BatchAppended:
        """Append a batch of a node's signed audit records under the module's rules.

        With ``checkpoint``, the same transaction also returns the latest checkpoint if it
        covers the ledger, or signs one of the new size (one commit instead of two: the
        checkpoint is signed under the same write lock, as :meth:`sign_checkpoint` would).
        """

    @abc.abstractmethod
    def append_hub_event(self, envelope: bytes, *, now: datetime) -> int:
        """Append a pre-built hub event signed by the hub key; return its index.

        Its ``seq``/``prev`` must extend the hub stream exactly (an identical resend returns
        the existing index). Prefer the methods below, which build and sign the event under
        the write lock so concurrent hub processes never race for a ``seq``.
        """

    @abc.abstractmethod
    def hub_head(self) -> tuple[int, Sha256]:
        """The hub stream's last ``seq`` and envelope digest (``(0, 64 zeros)`` if empty)."""

    @abc.abstractmethod
    def node_head(self, node_id: NodeId) -> tuple[int, Sha256]:
        """A stream's last ``seq`` and envelope digest (``(0, 64 zeros)`` if empty)."""

    @abc.abstractmethod
    def equivocations(self, node_id: NodeId | None = None) -> list[Equivocation]:
        """Flagged equivocations, oldest first."""

    @abc.abstractmethod
    def size(self) -> int:
        """The number of ledger entries."""

    @abc.abstractmethod
    def entry(self, idx: int) -> Entry:
        """Entry ``idx``; ``NotFoundError`` if beyond the end."""

    @abc.abstractmethod
    def entries(self, start: int, end: int, *, max_bytes: int | None = None) -> list[Entry]:
        """Entries ``start ≤ idx < end`` (clipped to the ledger), in order, cut after at most
        ``max_bytes`` of envelopes (default: the store's ``page_bytes``), always at least one
        entry when any is in range. Continue from the last returned index + 1."""

    @abc.abstractmethod
    def find_entry(self, node_id: NodeId, seq: int) -> Entry:
        """The entry of a node's record ``seq``; ``NotFoundError`` if absent."""

    @abc.abstractmethod
    def root_at(self, size: int) -> bytes:
        """The RFC 9162 root of the first ``size`` entries."""

    @abc.abstractmethod
    def inclusion_proof(self, idx: int, size: int) -> list[bytes]:
        """RFC 9162 inclusion proof of entry ``idx`` in the tree of ``size`` entries."""

    @abc.abstractmethod
    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """RFC 9162 consistency proof between two tree sizes (``0 < old ≤ new ≤ size``)."""


class CheckpointStore(abc.ABC):
    """Signed checkpoints of the log (sizes only grow; one origin for life)."""

    @abc.abstractmethod
    def sign_checkpoint(
        self, origin: str, key_name: str, key: SigningKey, *, now: datetime
    ) -> StoredCheckpoint | None:
        """Sign and store a checkpoint of the current size, under the write lock.

        Returns the latest checkpoint unchanged when the tree has not grown since, and
        ``None`` while the tree is empty. Sizes only grow and each root is computed from the
        stored tree, so two signed checkpoints are always consistent.
        """

    @abc.abstractmethod
    def latest_checkpoint(self) -> StoredCheckpoint | None:
        """The checkpoint of the largest size, if any."""

    @abc.abstractmethod
    def checkpoint_at_least(self, size: int) -> StoredCheckpoint | None:
        """The smallest stored checkpoint whose size is ≥ ``size``, if any."""

    @abc.abstractmethod
    def checkpoint(self, size: int) -> StoredCheckpoint:
        """The checkpoint of exactly ``size``; ``NotFoundError`` if none was signed."""


class NodeStore(abc.ABC):
    """Enrollment tokens, enrolled nodes and the keys each has held."""

    @abc.abstractmethod
    def create_token(
        self, node_id: NodeId, token_sha256: str, expires_at: datetime, *, now: datetime
    ) -> None:
        """Store an enrollment token's hash (the token itself is never stored)."""

    @abc.abstractmethod
    def consume_token(self, token_sha256: str, node_id: NodeId, now: datetime) -> None:
        """Mark a token used, atomically.

        Raises ``TokenUnknownError``, ``TokenUsedError``, ``TokenExpiredError`` or
        ``TokenNodeMismatchError`` (all :class:`EnrollmentError`, in :mod:`hub.ledger.errors`).
        """

    @abc.abstractmethod
    def register_node(
        self,
        node_id: NodeId,
        public_key: PublicKey,
        *,
        now: datetime,
        token_sha256: str | None = None,
        checkpoint: CheckpointSigner | None = None,
    ) -> int:
        """Enroll a node and append its hub-signed ``enrollment`` event; return its index.

        With ``checkpoint`` (here and in the other hub-event methods below) a checkpoint
        covering the event is signed in the same transaction, so the state change and the
        checkpoint its reply needs commit together or not at all: a signing failure cannot
        leave a consumed token behind an error reply.

        With ``token_sha256`` the token is consumed in the same transaction (a refused
        token leaves nothing behind; a failure after it leaves the token unused).
        Raises :class:`AlreadyEnrolledError` if the node id is taken.
        """

    @abc.abstractmethod
    def rotate_node_key(
        self, node_id: NodeId, new_key: PublicKey, signature: bytes, *, now: datetime,
        checkpoint: CheckpointSigner | None = None,
    ) -> int:
        """Replace a node's key; ``signature`` is the current key's signature over
        :func:`trust.record.rotation_message`. Appends a ``key_rotation`` event; returns its index.
        """

    @abc.abstractmethod
    def node_key(self, node_id: NodeId) -> PublicKey:
        """The node's current key; ``NotFoundError`` if the node is not enrolled or its status
        is not ``active``. Every path where a node key authenticates a call or verifies a new
        record goes through this status check (:meth:`node` returns inactive nodes too)."""

    @abc.abstractmethod
    def node(self, node_id: NodeId) -> NodeInfo:
        """The node's enrollment; ``NotFoundError`` if unknown."""

    @abc.abstractmethod
    def nodes(self) -> list[NodeInfo]:
        """Every enrolled node, by id."""

    @abc.abstractmethod
    def node_keys(self, node_id: NodeId) -> list[NodeKey]:
        """Every key the node has held, oldest first."""


class PolicyStore(abc.ABC):
    """Published policy bundles and submitted approvals, each with its hub event."""

    @abc.abstractmethod
    def add_policy(
        self, name: str, version: int, digest: str, envelope: bytes, *, now: datetime,
        checkpoint: CheckpointSigner | None = None,
    ) -> StoredPolicy:
        """Store a verified bundle and append its ``policy_publication`` event atomically.

        Raises ``RollbackError`` unless ``version`` is above every stored version of ``name``;
        re-adding the identical (name, version, digest) returns the stored record.
        """

    @abc.abstractmethod
    def latest_policy(self, name: str | None = None) -> StoredPolicy | None:
        """The highest version of ``name`` (or the most recently published bundle)."""

    @abc.abstractmethod
    def get_policy(self, name: str, version: int) -> StoredPolicy:
        """A named version; ``NotFoundError`` if absent."""

    @abc.abstractmethod
    def policies(self) -> list[StoredPolicy]:
        """Every stored bundle, oldest publication first."""

    @abc.abstractmethod
    def add_approval(
        self, role: str, subject: str, envelope: bytes, *, now: datetime,
        checkpoint: CheckpointSigner | None = None,
    ) -> StoredApproval:
        """Store a verified approval and append its ``approval`` event atomically (idempotent)."""

    @abc.abstractmethod
    def approvals(
        self, subject: str | None = None, role: str | None = None
    ) -> list[StoredApproval]:
        """Stored approvals, oldest first, optionally filtered."""


class RootStore(abc.ABC):
    """Published trust-root rotations (root N+1 envelopes), each with its hub event.

    The store keeps what the hub verified (:func:`hub.handlers.publish_root` checks each root
    from its predecessor with :meth:`trust.root.TrustRoot.rotate`); it does not verify
    signatures itself. Versions only grow; the chain starts after the hub's pinned
    ``root.json``, which is not stored here.
    """

    @abc.abstractmethod
    def add_root(
        self, version: int, envelope: bytes, *, now: datetime,
        checkpoint: CheckpointSigner | None = None,
    ) -> StoredRoot:
        """Store a verified root and append its ``root_publication`` event atomically.

        ``digest`` is computed here (hex SHA-256 of ``envelope``). The exact bytes of a stored
        root are returned as stored (a retried publication: same index, no new event); any
        other root at or below the newest stored version is a ``RollbackError``.
        """

    @abc.abstractmethod
    def roots(self, after_version: int = 0) -> list[StoredRoot]:
        """Every stored root with a version above ``after_version``, ascending."""

    @abc.abstractmethod
    def latest_root(self) -> StoredRoot | None:
        """The stored root of the highest version, if any."""


class HeartbeatStore(abc.ABC):
    """Nodes' last signs of life (not ledger entries)."""

    @abc.abstractmethod
    def record_heartbeat(
        self,
        node_id: NodeId,
        *,
        now: datetime,
        agent_version: str,
        policy_name: str | None = None,
        policy_version: int | None = None,
    ) -> None:
        """Remember a node's latest heartbeat (not a ledger entry)."""

    @abc.abstractmethod
    def heartbeats(self) -> list[Heartbeat]:
        """The latest heartbeat of every node that sent one."""


class LedgerStore(
    LogStore, CheckpointStore, NodeStore, PolicyStore, RootStore, HeartbeatStore
):
    """The hub's storage: every part above over one database.

    The parts share one write lock, so a state change and the hub event recording it commit
    in one transaction. Every method is safe to call from several threads and processes.
    """

    @staticmethod
    def open(
        url: str,
        *,
        hub_key: SigningKey | None = None,
        hub_public_key: PublicKey | None = None,
        migrate: bool = True,
        verifier: RecordVerifier | None = None,
        max_record_bytes: int | None = None,
        page_bytes: int | None = None,
    ) -> LedgerStore:
        """Open (and migrate) the store at ``url``: a SQLite path/URL or a PostgreSQL URL.

        ``hub_key`` signs hub events and checkpoints; without it the store is read-only for
        hub events (``append_hub_event`` still accepts envelopes signed by ``hub_public_key``).
        ``verifier`` checks appended records (default: in the calling thread); the caller
        keeps ownership and closes it after the store. ``max_record_bytes`` and
        ``page_bytes`` are the limits of the module docstring.

        With ``migrate`` the database must also take a write (a probe that is rolled back):
        a database that is read-only, full or unreachable is a :class:`ConfigError` naming it.
        """
        from hub.ledger.sql import SqlLedgerStore

        return SqlLedgerStore.connect(
            url, hub_key=hub_key, hub_public_key=hub_public_key, migrate=migrate,
            verifier=verifier, max_record_bytes=max_record_bytes, page_bytes=page_bytes,
        )

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections."""
