"""The SQLAlchemy :class:`LedgerStore` (SQLite and PostgreSQL): a façade over its parts.

Each concern lives in its own part, over the same engine: :class:`SqlLog` (appends, hub
events, reads, proofs), :class:`SqlCheckpoints`, :class:`SqlNodes` (tokens, nodes, keys),
:class:`SqlPolicies` (bundles, approvals), :class:`SqlRoots` (published trust roots) and
:class:`SqlHeartbeats`. The parts that change
state append their hub event through the log and sign their covering checkpoint through the
checkpoints part, inside their own write transaction; so a state change, its event and its
checkpoint commit together or not at all. This class only builds the parts and forwards
each :class:`LedgerStore` method to the part that owns it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine

from hub import db
from hub.ledger.rules import check_hub_keys
from hub.ledger.sql.checkpoints import SqlCheckpoints
from hub.ledger.sql.heartbeats import SqlHeartbeats
from hub.ledger.sql.log import SqlLog
from hub.ledger.sql.nodes import SqlNodes
from hub.ledger.sql.policies import SqlPolicies
from hub.ledger.sql.roots import SqlRoots
from hub.ledger.store import LedgerStore
from hub.ledger.types import (
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
from hub.ledger.verify import RecordVerifier
from trust.canonical import Sha256
from trust.errors import ConfigError, StorageFullError, StorageUnavailableError
from trust.keys import PublicKey, SigningKey
from trust.stream import NodeId

__all__ = ["SqlLedgerStore", "SqlParts"]


@dataclass(frozen=True)
class SqlParts:
    """The parts of one :class:`SqlLedgerStore`, each usable as its own interface."""

    log: SqlLog
    checkpoints: SqlCheckpoints
    nodes: SqlNodes
    policies: SqlPolicies
    roots: SqlRoots
    heartbeats: SqlHeartbeats


class SqlLedgerStore(LedgerStore):
    """:class:`LedgerStore` over a SQLAlchemy engine (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        *,
        hub_key: SigningKey | None = None,
        hub_public_key: PublicKey | None = None,
        verifier: RecordVerifier | None = None,
        max_record_bytes: int | None = None,
        page_bytes: int | None = None,
    ) -> None:
        self.engine = engine
        self._hub_public = check_hub_keys(hub_key, hub_public_key)
        checkpoints = SqlCheckpoints(engine)
        log = SqlLog(
            engine, checkpoints, verifier or RecordVerifier(0), hub_key=hub_key,
            hub_public=self._hub_public, max_record_bytes=max_record_bytes,
            page_bytes=page_bytes,
        )
        self.parts = SqlParts(
            log=log,
            checkpoints=checkpoints,
            nodes=SqlNodes(engine, log, checkpoints),
            policies=SqlPolicies(engine, log, checkpoints),
            roots=SqlRoots(engine, log, checkpoints),
            heartbeats=SqlHeartbeats(engine),
        )

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        hub_key: SigningKey | None = None,
        hub_public_key: PublicKey | None = None,
        migrate: bool = True,
        verifier: RecordVerifier | None = None,
        max_record_bytes: int | None = None,
        page_bytes: int | None = None,
    ) -> SqlLedgerStore:
        """Create the engine for ``url``, migrate it, check it takes writes, and wrap it."""
        engine = db.create_engine(url)
        if migrate:
            try:
                db.migrate(engine)
                db.probe_writable(engine)
            except StorageUnavailableError as exc:
                engine.dispose()
                raise ConfigError(exc.message, hint=_start_hint(exc, engine)) from None
            except BaseException:
                engine.dispose()
                raise
        db.mark_serving(engine)
        return cls(engine, hub_key=hub_key, hub_public_key=hub_public_key, verifier=verifier,
                   max_record_bytes=max_record_bytes, page_bytes=page_bytes)

    def close(self) -> None:
        """Dispose of the engine's connections (the verifier belongs to whoever passed it)."""
        self.engine.dispose()

    # --- LogStore -----------------------------------------------------------------------------

    def append_records(
        self,
        node_id: NodeId,
        envelopes: Sequence[bytes],
        *,
        now: datetime,
        checkpoint: CheckpointSigner | None = None,
    ) -> BatchAppended:
        """See :meth:`LogStore.append_records`."""
        return self.parts.log.append_records(node_id, envelopes, now=now, checkpoint=checkpoint)

    def append_hub_event(self, envelope: bytes, *, now: datetime) -> int:
        """See :meth:`LogStore.append_hub_event`."""
        return self.parts.log.append_hub_event(envelope, now=now)

    def hub_head(self) -> tuple[int, Sha256]:
        """See :meth:`LogStore.hub_head`."""
        return self.parts.log.hub_head()

    def node_head(self, node_id: NodeId) -> tuple[int, Sha256]:
        """See :meth:`LogStore.node_head`."""
        return self.parts.log.node_head(node_id)

    def equivocations(self, node_id: NodeId | None = None) -> list[Equivocation]:
        """See :meth:`LogStore.equivocations`."""
        return self.parts.log.equivocations(node_id)

    def size(self) -> int:
        """See :meth:`LogStore.size`."""
        return self.parts.log.size()

    def entry(self, idx: int) -> Entry:
        """See :meth:`LogStore.entry`."""
        return self.parts.log.entry(idx)

    def entries(self, start: int, end: int, *, max_bytes: int | None = None) -> list[Entry]:
        """See :meth:`LogStore.entries`."""
        return self.parts.log.entries(start, end, max_bytes=max_bytes)

    def find_entry(self, node_id: NodeId, seq: int) -> Entry:
        """See :meth:`LogStore.find_entry`."""
        return self.parts.log.find_entry(node_id, seq)

    def root_at(self, size: int) -> bytes:
        """See :meth:`LogStore.root_at`."""
        return self.parts.log.root_at(size)

    def inclusion_proof(self, idx: int, size: int) -> list[bytes]:
        """See :meth:`LogStore.inclusion_proof`."""
        return self.parts.log.inclusion_proof(idx, size)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """See :meth:`LogStore.consistency_proof`."""
        return self.parts.log.consistency_proof(old_size, new_size)

    # --- CheckpointStore ----------------------------------------------------------------------

    def sign_checkpoint(
        self, origin: str, key_name: str, key: SigningKey, *, now: datetime
    ) -> StoredCheckpoint | None:
        """See :meth:`CheckpointStore.sign_checkpoint`."""
        return self.parts.checkpoints.sign_checkpoint(origin, key_name, key, now=now)

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        """See :meth:`CheckpointStore.latest_checkpoint`."""
        return self.parts.checkpoints.latest_checkpoint()

    def checkpoint_at_least(self, size: int) -> StoredCheckpoint | None:
        """See :meth:`CheckpointStore.checkpoint_at_least`."""
        return self.parts.checkpoints.checkpoint_at_least(size)

    def checkpoint(self, size: int) -> StoredCheckpoint:
        """See :meth:`CheckpointStore.checkpoint`."""
        return self.parts.checkpoints.checkpoint(size)

    # --- NodeStore ----------------------------------------------------------------------------

    def create_token(
        self, node_id: NodeId, token_sha256: str, expires_at: datetime, *, now: datetime
    ) -> None:
        """See :meth:`NodeStore.create_token`."""
        self.parts.nodes.create_token(node_id, token_sha256, expires_at, now=now)

    def consume_token(self, token_sha256: str, node_id: NodeId, now: datetime) -> None:
        """See :meth:`NodeStore.consume_token`."""
        self.parts.nodes.consume_token(token_sha256, node_id, now)

    def register_node(
        self,
        node_id: NodeId,
        public_key: PublicKey,
        *,
        now: datetime,
        token_sha256: str | None = None,
        checkpoint: CheckpointSigner | None = None,
    ) -> int:
        """See :meth:`NodeStore.register_node`."""
        return self.parts.nodes.register_node(
            node_id, public_key, now=now, token_sha256=token_sha256, checkpoint=checkpoint
        )

    def rotate_node_key(
        self, node_id: NodeId, new_key: PublicKey, signature: bytes, *, now: datetime,
        checkpoint: CheckpointSigner | None = None,
    ) -> int:
        """See :meth:`NodeStore.rotate_node_key`."""
        return self.parts.nodes.rotate_node_key(
            node_id, new_key, signature, now=now, checkpoint=checkpoint
        )

    def node_key(self, node_id: NodeId) -> PublicKey:
        """See :meth:`NodeStore.node_key`."""
        return self.parts.nodes.node_key(node_id)

    def node(self, node_id: NodeId) -> NodeInfo:
        """See :meth:`NodeStore.node`."""
        return self.parts.nodes.node(node_id)

    def nodes(self) -> list[NodeInfo]:
        """See :meth:`NodeStore.nodes`."""
        return self.parts.nodes.nodes()

    def node_keys(self, node_id: NodeId) -> list[NodeKey]:
        """See :meth:`NodeStore.node_keys`."""
        return self.parts.nodes.node_keys(node_id)

    # --- PolicyStore --------------------------------------------------------------------------

    def add_policy(
        self, name: str, version: int, digest: str, envelope: bytes, *, now: datetime,
        checkpoint: CheckpointSigner | None = None,
    ) -> StoredPolicy:
        """See :meth:`PolicyStore.add_policy`."""
        return self.parts.policies.add_policy(
            name, version, digest, envelope, now=now, checkpoint=checkpoint
        )

    def latest_policy(self, name: str | None = None) -> StoredPolicy | None:
        """See :meth:`PolicyStore.latest_policy`."""
        return self.parts.policies.latest_policy(name)

    def get_policy(self, name: str, version: int) -> StoredPolicy:
        """See :meth:`PolicyStore.get_policy`."""
        return self.parts.policies.get_policy(name, version)

    def policies(self) -> list[StoredPolicy]:
        """See :meth:`PolicyStore.policies`."""
        return self.parts.policies.policies()

    def add_approval(
        self, role: str, subject: str, envelope: bytes, *, now: datetime,
        checkpoint: CheckpointSigner | None = None,
    ) -> StoredApproval:
        """See :meth:`PolicyStore.add_approval`."""
        return self.parts.policies.add_approval(
            role, subject, envelope, now=now, checkpoint=checkpoint
        )

    def approvals(
        self, subject: str | None = None, role: str | None = None
    ) -> list[StoredApproval]:
        """See :meth:`PolicyStore.approvals`."""
        return self.parts.policies.approvals(subject, role)

    # --- RootStore ----------------------------------------------------------------------------

    def add_root(
        self, version: int, envelope: bytes, *, now: datetime,
        checkpoint: CheckpointSigner | None = None,
    ) -> StoredRoot:
        """See :meth:`RootStore.add_root`."""
        return self.parts.roots.add_root(version, envelope, now=now, checkpoint=checkpoint)

    def roots(self, after_version: int = 0) -> list[StoredRoot]:
        """See :meth:`RootStore.roots`."""
        return self.parts.roots.roots(after_version)

    def latest_root(self) -> StoredRoot | None:
        """See :meth:`RootStore.latest_root`."""
        return self.parts.roots.latest_root()

    # --- HeartbeatStore -----------------------------------------------------------------------

    def record_heartbeat(
        self,
        node_id: NodeId,
        *,
        now: datetime,
        agent_version: str,
        policy_name: str | None = None,
        policy_version: int | None = None,
    ) -> None:
        """See :meth:`HeartbeatStore.record_heartbeat`."""
        self.parts.heartbeats.record_heartbeat(
            node_id, now=now, agent_version=agent_version, policy_name=policy_name,
            policy_version=policy_version,
        )

    def heartbeats(self) -> list[Heartbeat]:
        """See :meth:`HeartbeatStore.heartbeats`."""
        return self.parts.heartbeats.heartbeats()


def _start_hint(exc: StorageUnavailableError, engine: Engine) -> str:
    """What an operator should do when the database fails the start-up checks."""
    if isinstance(exc, StorageFullError):
        return "free space for the database (or raise its quota), then start the hub again"
    if db.is_sqlite(engine):
        return "make the database file, its -wal/-shm files and its directory writable by the hub"
    return ("check the host, port and database in the 'database' URL, that PostgreSQL runs"
            " there, and that it is a writable primary (not a standby or read-only database)")
