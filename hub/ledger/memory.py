"""The in-memory :class:`LedgerStore`, for unit tests: the SQL store's behaviour without a database.

:class:`~hub.ledger.memory_state.MemoryLedger` (re-exported here) plays the database: every
table as a Python container, one lock. :class:`MemoryLedgerStore` is the store over it, so
several stores over one ledger behave like several hub processes over one database. It runs
the same code as the SQL store wherever the rules live: :class:`~hub.ledger.verify.RecordVerifier`
parses and verifies each envelope once before the lock, :func:`hub.ledger.history.plan_append`
applies the history rules under it, :mod:`trust.merkle` plans and folds the tree, and
:mod:`hub.ledger.rules` holds every backend-neutral check, refusal message and hub-event
body, so both stores refuse alike. The abstract store suite (``tests/ledger``) runs on it as
on SQLite and PostgreSQL.

Invariants:

* Every write holds the ledger's lock and goes through one
  :class:`~hub.ledger.memory_state.Tx`, which records how to undo each change: an operation
  that raises leaves nothing behind (a batch is all-or-nothing, a hub event commits with its
  state change and its checkpoint or not at all), exactly as a rolled-back SQL transaction
  would. An equivocation is flagged after the batch was rolled back, in a write of its own.
* Entries, subtrees, checkpoints, equivocations and roots are only ever appended (there is
  no API that changes or removes them); values handed out are frozen snapshots.
* Bounds and refusals are the SQL store's, with the same typed errors and messages: numbers
  above :data:`~hub.ledger.rules.MAX_INT` are simply not in the store.

What it does not have: durability (nothing survives the process), sharing across processes,
and the storage conditions (read-only, full, unreachable) a database can be in.

Why one module of ~600 lines: it implements the whole :class:`LedgerStore` interface (six
parts, ~50 methods) over one state under one lock, each method the in-memory form of the SQL
part's method of the same name, in the same order (sections: log, checkpoints, nodes,
policies, roots, heartbeats). Split by part, each piece would need the others' private state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from hub.ledger import (
    BatchAppended,
    CheckedBatch,
    CheckpointSigner,
    Entry,
    Equivocation,
    Heartbeat,
    HeldKey,
    KeyRing,
    LedgerStore,
    NodeInfo,
    NodeKey,
    StoredApproval,
    StoredCheckpoint,
    StoredPolicy,
    StoredRoot,
)
from hub.ledger.errors import AlreadyEnrolledError
from hub.ledger.history import Equivocated, plan_append, stored_seqs
from hub.ledger.memory_state import MemoryLedger, Token, Tx
from hub.ledger.rules import (
    ACTIVE,
    MAX_INT,
    check_append_batch,
    check_approval_args,
    check_enroll_args,
    check_heartbeat_version,
    check_hub_keys,
    check_key_unchanged,
    check_policy_args,
    check_root_args,
    check_rotation,
    check_token_args,
    enrollment_body,
    equivocation_error,
    hub_event_record,
    new_checkpoint,
    not_enrolled_error,
    refuse_token,
    require_hub_key,
    require_hub_public,
    rollback_error,
    root_rollback_error,
    rotation_body,
)
from hub.ledger.verify import RecordVerifier, check_hub_event
from trust import merkle
from trust.canonical import Sha256, sha256_hex
from trust.errors import EquivocationError, NotFoundError, UsageError
from trust.keys import PublicKey, SigningKey
from trust.record import GENESIS_PREV, HUB_NODE_ID, HubEventKind
from trust.stream import NodeId

__all__ = ["MemoryLedger", "MemoryLedgerStore"]



class MemoryLedgerStore(LedgerStore):
    """:class:`LedgerStore` over a :class:`MemoryLedger` (a fresh one by default).

    Takes the arguments of :meth:`LedgerStore.open` that mean something without a database.
    """

    def __init__(
        self,
        ledger: MemoryLedger | None = None,
        *,
        hub_key: SigningKey | None = None,
        hub_public_key: PublicKey | None = None,
        verifier: RecordVerifier | None = None,
        max_record_bytes: int | None = None,
        page_bytes: int | None = None,
    ) -> None:
        self._hub_public = check_hub_keys(hub_key, hub_public_key)
        self.ledger = ledger if ledger is not None else MemoryLedger()
        self._hub_key = hub_key
        self._verifier = verifier or RecordVerifier(0)
        self._max_record_bytes = max_record_bytes
        self._page_bytes = page_bytes

    def close(self) -> None:
        """Nothing to release (the verifier belongs to whoever passed it)."""

    # --- LogStore: appends --------------------------------------------------------------------

    def append_records(
        self,
        node_id: NodeId,
        envelopes: Sequence[bytes],
        *,
        now: datetime,
        checkpoint: CheckpointSigner | None = None,
    ) -> BatchAppended:
        """See :meth:`LogStore.append_records`."""
        check_append_batch(node_id, envelopes, self._max_record_bytes)
        with self.ledger.lock:
            ring = self._key_ring(node_id)
        # Verified outside the lock, as the SQL store does (possibly in worker processes).
        batch = self._verifier.check_batch(ring, envelopes)
        return self._append_checked(batch, now, checkpoint)

    def _append_checked(
        self, batch: CheckedBatch, now: datetime, checkpoint: CheckpointSigner | None
    ) -> BatchAppended:
        node_id = batch.node_id
        signed = None
        with self.ledger.lock:
            try:
                with self.ledger.write() as tx:
                    check_key_unchanged(node_id, self._current_key_id(node_id), batch.ring)
                    head = self.ledger.heads.get(node_id, (0, GENESIS_PREV))
                    stored = self.ledger.stored_at(node_id, stored_seqs(batch, head[0]))
                    plan = plan_append(batch, head, stored)
                    root: bytes | None = None
                    new_idx: list[int] = []
                    if plan.fresh:
                        new_idx, size, root = self.ledger.append_locked(tx, plan.fresh, now)
                    else:
                        size = len(self.ledger.entries)
                    if checkpoint is not None:
                        signed = self._sign_locked(tx, checkpoint, size, root, now)
            except Equivocated as exc:  # rolled back above; the flag is a write of its own
                raise self._flag_equivocation(exc, now) from None
        return BatchAppended(plan.indexes(new_idx), plan.duplicates, size, signed)

    def _flag_equivocation(self, exc: Equivocated, now: datetime) -> EquivocationError:
        with self.ledger.write() as tx:
            flags = self.ledger.equivocations
            flag = Equivocation(len(flags) + 1, NodeId(exc.node_id), exc.seq, exc.existing,
                                bytes(exc.offered), now)
            tx.append(flags, flag)
        return equivocation_error(exc)

    # --- LogStore: hub events -----------------------------------------------------------------

    def append_hub_event(self, envelope: bytes, *, now: datetime) -> int:
        """See :meth:`LogStore.append_hub_event`."""
        public = require_hub_public(self._hub_public)
        record = check_hub_event(envelope, public)
        batch = CheckedBatch(KeyRing(HUB_NODE_ID, public), (record,))
        return self._append_checked(batch, now, None).indexes[0]

    def _emit(self, tx: Tx, kind: HubEventKind, body: dict[str, Any], now: datetime) -> int:
        """Build, sign and append a hub event inside the caller's write."""
        head = self.ledger.heads.get(HUB_NODE_ID, (0, GENESIS_PREV))
        record = hub_event_record(require_hub_key(self._hub_key), head, kind, body, now)
        return self.ledger.append_locked(tx, [record], now)[0][0]

    # --- LogStore: heads, flags, reads, proofs ------------------------------------------------

    def node_head(self, node_id: NodeId) -> tuple[int, Sha256]:
        """See :meth:`LogStore.node_head`."""
        with self.ledger.lock:
            return self.ledger.heads.get(node_id, (0, GENESIS_PREV))

    def hub_head(self) -> tuple[int, Sha256]:
        """See :meth:`LogStore.hub_head`."""
        return self.node_head(NodeId(HUB_NODE_ID))

    def equivocations(self, node_id: NodeId | None = None) -> list[Equivocation]:
        """See :meth:`LogStore.equivocations`."""
        with self.ledger.lock:
            return [f for f in self.ledger.equivocations if node_id in (None, f.node_id)]

    def size(self) -> int:
        """See :meth:`LogStore.size`."""
        with self.ledger.lock:
            return len(self.ledger.entries)

    def entry(self, idx: int) -> Entry:
        """See :meth:`LogStore.entry`."""
        with self.ledger.lock:
            if not 0 <= idx < len(self.ledger.entries):
                raise NotFoundError(f"ledger entry {idx} does not exist")
            return self.ledger.entries[idx]

    def entries(self, start: int, end: int, *, max_bytes: int | None = None) -> list[Entry]:
        """See :meth:`LogStore.entries`."""
        start, end = max(start, 0), min(end, MAX_INT)
        budget = self._page_bytes if max_bytes is None else max_bytes
        with self.ledger.lock:
            page = self.ledger.entries[start:end] if start < end else []
        if budget is None:
            return page
        total = 0
        for n, e in enumerate(page):
            total += len(e.envelope)
            if total > budget and n > 0:  # always at least one entry
                return page[:n]
        return page

    def find_entry(self, node_id: NodeId, seq: int) -> Entry:
        """See :meth:`LogStore.find_entry`."""
        with self.ledger.lock:
            found = self.ledger.seq_index.get((node_id, seq))
            if found is None:
                raise NotFoundError(
                    f"node {node_id!r} has no record with seq {seq} in the ledger"
                )
            return self.ledger.entries[found[0]]

    def root_at(self, size: int) -> bytes:
        """See :meth:`LogStore.root_at`."""
        with self.ledger.lock:
            self.ledger.check_size(size)
            if not size:
                return merkle.EMPTY_ROOT
            return merkle.resolve(merkle.root_plan(size), self.ledger.subtree)[0]

    def inclusion_proof(self, idx: int, size: int) -> list[bytes]:
        """See :meth:`LogStore.inclusion_proof`."""
        if not 0 <= idx < size:
            raise UsageError(f"entry {idx} is not inside a tree of size {size}")
        with self.ledger.lock:
            self.ledger.check_size(size)
            return merkle.resolve(merkle.inclusion_plan(idx, size), self.ledger.subtree)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """See :meth:`LogStore.consistency_proof`."""
        if not 0 < old_size <= new_size:
            raise UsageError(f"no consistency proof from size {old_size} to {new_size}")
        with self.ledger.lock:
            self.ledger.check_size(new_size)
            return merkle.resolve(merkle.consistency_plan(old_size, new_size), self.ledger.subtree)

    # --- CheckpointStore ----------------------------------------------------------------------

    def sign_checkpoint(
        self, origin: str, key_name: str, key: SigningKey, *, now: datetime
    ) -> StoredCheckpoint | None:
        """See :meth:`CheckpointStore.sign_checkpoint`."""
        with self.ledger.write() as tx:
            size = len(self.ledger.entries)
            if size == 0:
                return self.latest_checkpoint()
            return self._sign_locked(tx, CheckpointSigner(origin, key_name, key), size, None, now)

    def _sign_locked(
        self, tx: Tx, signer: CheckpointSigner, size: int, root: bytes | None, now: datetime
    ) -> StoredCheckpoint:
        """Under the write lock: the latest checkpoint if it covers ``size``, else a new one."""
        latest = self.latest_checkpoint()
        if latest is not None and latest.size >= size:
            return latest
        if root is None:
            root = merkle.resolve(merkle.root_plan(size), self.ledger.subtree)[0]
        stored = new_checkpoint(signer, latest, size, root, now)
        tx.append(self.ledger.checkpoints, stored)
        return stored

    def _cover(self, tx: Tx, signer: CheckpointSigner | None, now: datetime) -> None:
        """Inside a hub event's write: make a checkpoint cover the new size."""
        if signer is not None:
            self._sign_locked(tx, signer, len(self.ledger.entries), None, now)

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        """See :meth:`CheckpointStore.latest_checkpoint`."""
        with self.ledger.lock:  # sizes only grow, so the last one is the largest
            return self.ledger.checkpoints[-1] if self.ledger.checkpoints else None

    def checkpoint_at_least(self, size: int) -> StoredCheckpoint | None:
        """See :meth:`CheckpointStore.checkpoint_at_least`."""
        with self.ledger.lock:
            return next((c for c in self.ledger.checkpoints if c.size >= size), None)

    def checkpoint(self, size: int) -> StoredCheckpoint:
        """See :meth:`CheckpointStore.checkpoint`."""
        with self.ledger.lock:
            for c in self.ledger.checkpoints:
                if c.size == size:
                    return c
        raise NotFoundError(f"no checkpoint was signed at tree size {size}")

    # --- NodeStore ----------------------------------------------------------------------------

    def _key_ring(self, node_id: NodeId) -> KeyRing:
        """The keys an enrolled, active node has held; :class:`NodeNotEnrolledError` otherwise."""
        info = self.ledger.nodes.get(node_id)
        if info is None or info.status != ACTIVE:
            raise not_enrolled_error(node_id)
        history = self.ledger.node_keys.get(node_id, ())
        return KeyRing(
            node_id, info.public_key, tuple(HeldKey(k.public_key, k.ledger_idx) for k in history)
        )

    def _current_key_id(self, node_id: NodeId) -> str | None:
        info = self.ledger.nodes.get(node_id)
        return info.key_id if info is not None and info.status == ACTIVE else None

    def create_token(
        self, node_id: NodeId, token_sha256: str, expires_at: datetime, *, now: datetime
    ) -> None:
        """See :meth:`NodeStore.create_token`."""
        check_token_args(node_id, token_sha256, expires_at, now)
        with self.ledger.write() as tx:
            if token_sha256 in self.ledger.tokens:
                raise UsageError("an enrollment token with this hash already exists")
            tx.set(self.ledger.tokens, token_sha256, Token(node_id, now, expires_at, None))

    def consume_token(self, token_sha256: str, node_id: NodeId, now: datetime) -> None:
        """See :meth:`NodeStore.consume_token`."""
        with self.ledger.write() as tx:
            self._consume(tx, token_sha256, node_id, now)

    def _consume(self, tx: Tx, token_sha256: str, node_id: NodeId, now: datetime) -> None:
        tok = refuse_token(self.ledger.tokens.get(token_sha256), node_id, now)
        tx.set(self.ledger.tokens, token_sha256, replace(tok, used_at=now))

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
        check_enroll_args(node_id)
        require_hub_key(self._hub_key)
        with self.ledger.write() as tx:
            if token_sha256 is not None:
                self._consume(tx, token_sha256, node_id, now)
            if node_id in self.ledger.nodes:
                raise AlreadyEnrolledError(
                    f"node {node_id!r} is already enrolled", hint="rotate its key instead"
                )
            idx = self._emit(
                tx,
                HubEventKind.ENROLLMENT,
                enrollment_body(node_id, public_key, now, token_sha256),
                now,
            )
            tx.set(self.ledger.nodes, node_id,
                   NodeInfo(node_id, public_key.key_id, public_key, now, ACTIVE))
            tx.set(self.ledger.node_keys, node_id,
                   (NodeKey(node_id, public_key.key_id, public_key, now, None, idx),))
            self._cover(tx, checkpoint, now)
        return idx

    def rotate_node_key(
        self, node_id: NodeId, new_key: PublicKey, signature: bytes, *, now: datetime,
        checkpoint: CheckpointSigner | None = None,
    ) -> int:
        """See :meth:`NodeStore.rotate_node_key`."""
        require_hub_key(self._hub_key)
        with self.ledger.write() as tx:
            found = self.ledger.nodes.get(node_id)
            history = self.ledger.node_keys.get(node_id, ())
            old = check_rotation(
                node_id, found.public_key if found and found.status == ACTIVE else None,
                new_key, any(k.key_id == new_key.key_id for k in history), signature,
            )
            info = self.ledger.nodes[node_id]  # enrolled and active: check_rotation passed
            idx = self._emit(
                tx, HubEventKind.KEY_ROTATION, rotation_body(node_id, old, new_key, signature),
                now,
            )
            retired = tuple(k if k.retired_at is not None else replace(k, retired_at=now)
                            for k in history)
            tx.set(self.ledger.node_keys, node_id,
                   (*retired, NodeKey(node_id, new_key.key_id, new_key, now, None, idx)))
            tx.set(self.ledger.nodes, node_id,
                   replace(info, key_id=new_key.key_id, public_key=new_key))
            self._cover(tx, checkpoint, now)
        return idx

    def node_key(self, node_id: NodeId) -> PublicKey:
        """See :meth:`NodeStore.node_key`."""
        with self.ledger.lock:
            info = self.ledger.nodes.get(node_id)
        if info is None or info.status != ACTIVE:
            raise NotFoundError(f"node {node_id!r} is not enrolled (or no longer active)")
        return info.public_key

    def node(self, node_id: NodeId) -> NodeInfo:
        """See :meth:`NodeStore.node`."""
        with self.ledger.lock:
            info = self.ledger.nodes.get(node_id)
        if info is None:
            raise NotFoundError(f"node {node_id!r} is not enrolled")
        return info

    def nodes(self) -> list[NodeInfo]:
        """See :meth:`NodeStore.nodes`."""
        with self.ledger.lock:
            return [self.ledger.nodes[n] for n in sorted(self.ledger.nodes)]

    def node_keys(self, node_id: NodeId) -> list[NodeKey]:
        """See :meth:`NodeStore.node_keys`."""
        with self.ledger.lock:
            return list(self.ledger.node_keys.get(node_id, ()))

    def set_node_status(self, node_id: NodeId, status: str) -> None:
        """Change a node's status (an operator's revocation; no hub event is built yet, as
        in the SQL store, where it is a plain UPDATE of ``nodes.status``)."""
        with self.ledger.write() as tx:
            tx.set(self.ledger.nodes, node_id, replace(self.node(node_id), status=status))

    # --- PolicyStore --------------------------------------------------------------------------

    def add_policy(
        self, name: str, version: int, digest: str, envelope: bytes, *, now: datetime,
        checkpoint: CheckpointSigner | None = None,
    ) -> StoredPolicy:
        """See :meth:`PolicyStore.add_policy`."""
        check_policy_args(name, version, digest)
        with self.ledger.write() as tx:
            latest = self.latest_policy(name)
            if latest is not None and version <= latest.version:
                same = next((p for p in self.ledger.policies
                             if p.name == name and p.version == version), None)
                if same is not None and same.digest == digest:
                    return same  # a retried publication
                raise rollback_error(name, version, latest.version)
            idx = self._emit(
                tx,
                HubEventKind.POLICY_PUBLICATION,
                {"name": name, "version": version, "digest": digest},
                now,
            )
            record = StoredPolicy.of(name, version, Sha256(digest), bytes(envelope), now, idx)
            tx.append(self.ledger.policies, record)
            self._cover(tx, checkpoint, now)
        return record

    def latest_policy(self, name: str | None = None) -> StoredPolicy | None:
        """See :meth:`PolicyStore.latest_policy`."""
        with self.ledger.lock:  # stored in ledger order: the last one is the latest published
            if name is None:
                return self.ledger.policies[-1] if self.ledger.policies else None
            named = [p for p in self.ledger.policies if p.name == name]
        return max(named, key=lambda p: p.version, default=None)

    def get_policy(self, name: str, version: int) -> StoredPolicy:
        """See :meth:`PolicyStore.get_policy`."""
        with self.ledger.lock:
            for p in self.ledger.policies:
                if p.name == name and p.version == version:
                    return p
        raise NotFoundError(f"policy {name!r} version {version} was never published here")

    def policies(self) -> list[StoredPolicy]:
        """See :meth:`PolicyStore.policies`."""
        with self.ledger.lock:
            return list(self.ledger.policies)

    def add_approval(
        self, role: str, subject: str, envelope: bytes, *, now: datetime,
        checkpoint: CheckpointSigner | None = None,
    ) -> StoredApproval:
        """See :meth:`PolicyStore.add_approval`."""
        check_approval_args(role, subject)
        digest = sha256_hex(bytes(envelope))
        with self.ledger.write() as tx:
            stored = self.ledger.approvals
            same = next((a for a in stored if a.approval_id == digest), None)
            if same is not None:
                return same
            idx = self._emit(
                tx, HubEventKind.APPROVAL, {"digest": digest, "role": role, "subject": subject},
                now,
            )
            record = StoredApproval(approval_id=digest, role=role, envelope=bytes(envelope),
                                    index=idx, received_at=now, subject=subject)
            tx.append(stored, record)
            self._cover(tx, checkpoint, now)
        return record

    def approvals(
        self, subject: str | None = None, role: str | None = None
    ) -> list[StoredApproval]:
        """See :meth:`PolicyStore.approvals`."""
        with self.ledger.lock:
            return [a for a in self.ledger.approvals
                    if subject in (None, a.subject) and role in (None, a.role)]

    # --- RootStore ----------------------------------------------------------------------------

    def add_root(
        self, version: int, envelope: bytes, *, now: datetime,
        checkpoint: CheckpointSigner | None = None,
    ) -> StoredRoot:
        """See :meth:`RootStore.add_root`."""
        check_root_args(version, envelope)
        digest = sha256_hex(bytes(envelope))
        with self.ledger.write() as tx:
            stored = self.ledger.roots
            same = next((r for r in stored if r.version == version), None)
            if same is not None and same.digest == digest:
                return same  # a retried publication
            if stored and version <= stored[-1].version:
                raise root_rollback_error(version, stored[-1].version, same is not None)
            idx = self._emit(
                tx, HubEventKind.ROOT_PUBLICATION, {"version": version, "digest": digest}, now
            )
            record = StoredRoot(version=version, digest=Sha256(digest), index=idx,
                                envelope=bytes(envelope), published_at=now)
            tx.append(stored, record)
            self._cover(tx, checkpoint, now)
        return record

    def roots(self, after_version: int = 0) -> list[StoredRoot]:
        """See :meth:`RootStore.roots`."""
        with self.ledger.lock:
            return [r for r in self.ledger.roots if r.version > after_version]

    def latest_root(self) -> StoredRoot | None:
        """See :meth:`RootStore.latest_root`."""
        with self.ledger.lock:
            return self.ledger.roots[-1] if self.ledger.roots else None

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
        check_heartbeat_version(policy_version)
        with self.ledger.write() as tx:
            tx.set(self.ledger.heartbeats, node_id,
                   Heartbeat(node_id, now, agent_version, policy_name, policy_version))

    def heartbeats(self) -> list[Heartbeat]:
        """See :meth:`HeartbeatStore.heartbeats`."""
        with self.ledger.lock:
            return [self.ledger.heartbeats[n] for n in sorted(self.ledger.heartbeats)]
