"""The in-memory :class:`LedgerStore`, for unit tests: the SQL store's behaviour without a database.

:class:`MemoryLedger` plays the database (every table as a Python container, one lock);
:class:`MemoryLedgerStore` is the store over it, so several stores over one ledger behave like
several hub processes over one database. It runs the same code as the SQL store wherever the
rules live: :class:`~hub.ledger.verify.RecordVerifier` parses and verifies each envelope once
before the lock, :func:`hub.ledger.history.plan_append` applies the history rules under it,
:mod:`trust.merkle` plans and folds the tree, :func:`trust.checkpoint.sign_checkpoint` signs.
The abstract store suite (``tests/ledger``) runs on it as on SQLite and PostgreSQL.

Invariants:

* Every write holds :attr:`MemoryLedger.lock` and goes through one :class:`_Tx`, which records
  how to undo each change: an operation that raises leaves nothing behind (a batch is
  all-or-nothing, a hub event commits with its state change and its checkpoint or not at
  all), exactly as a rolled-back SQL transaction would. An equivocation is flagged after the
  batch was rolled back, in a write of its own.
* Entries, subtrees, checkpoints and equivocations are only ever appended (there is no API
  that changes or removes them); values handed out are frozen snapshots.
* Bounds and refusals are the SQL store's, with the same typed errors and messages: numbers
  above :data:`~hub.ledger.sql.tx.MAX_INT` are simply not in the store.

What it does not have: durability (nothing survives the process), sharing across processes,
and the storage conditions (read-only, full, unreachable) a database can be in.

Why one module of ~770 lines: the whole store is one state under one lock, and each method is
the in-memory form of the SQL part's method of the same name, in the same order (sections:
log, checkpoints, nodes, policies, heartbeats). Most of its length is the backend-neutral
checks, messages and hub-event bodies it repeats from :mod:`hub.ledger.sql` so that both
backends refuse alike; moved into one module both call, they would leave ~550 lines here.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar

from hub.ledger import (
    MAX_BATCH,
    BatchAppended,
    CheckedBatch,
    CheckedRecord,
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
)
from hub.ledger.errors import (
    AlreadyEnrolledError,
    NodeNotEnrolledError,
    TokenExpiredError,
    TokenNodeMismatchError,
    TokenUnknownError,
    TokenUsedError,
)
from hub.ledger.history import Equivocated, plan_append, stored_seqs
from hub.ledger.sql.tx import ACTIVE, MAX_INT, check_hex
from hub.ledger.verify import RecordVerifier, check_hub_event
from trust import merkle
from trust.canonical import Sha256, sha256_hex
from trust.checkpoint import Checkpoint, sign_checkpoint
from trust.errors import (
    AccessDeniedError,
    EquivocationError,
    LedgerError,
    NotFoundError,
    RecordTooLargeError,
    RollbackError,
    SignatureError,
    UsageError,
)
from trust.keys import PublicKey, SigningKey
from trust.record import (
    GENESIS_PREV,
    HUB_NODE_ID,
    HubEventKind,
    build_hub_event,
    check_node_id,
    rotation_message,
    sign_hub_event,
)
from trust.stream import NodeId
from trust.timeutil import format_time

__all__ = ["MemoryLedger", "MemoryLedgerStore"]

_K = TypeVar("_K")
_V = TypeVar("_V")
_CHAIN_GENESIS = bytes(32)
_Subtree = tuple[int, int]
"""A perfect subtree of the Merkle tree: ``(level, index)``."""


@dataclass(frozen=True)
class _Token:
    """An enrollment token as stored: its hash only, never the token."""

    node_id: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None


@dataclass
class MemoryLedger:
    """The state one ledger holds — the in-memory counterpart of its database.

    Only :class:`MemoryLedgerStore` reads and writes it, holding :attr:`lock`; several stores
    may share one ledger (like several hub processes sharing one database).
    """

    lock: threading.RLock = field(default_factory=threading.RLock)
    entries: list[Entry] = field(default_factory=list)
    seq_index: dict[tuple[str, int], tuple[int, Sha256]] = field(default_factory=dict)
    """(stream, seq) → (ledger index, envelope digest)."""
    heads: dict[str, tuple[int, Sha256]] = field(default_factory=dict)
    subtrees: dict[_Subtree, bytes] = field(default_factory=dict)
    checkpoints: list[StoredCheckpoint] = field(default_factory=list)
    equivocations: list[Equivocation] = field(default_factory=list)
    tokens: dict[str, _Token] = field(default_factory=dict)
    nodes: dict[str, NodeInfo] = field(default_factory=dict)
    node_keys: dict[str, tuple[NodeKey, ...]] = field(default_factory=dict)
    policies: list[StoredPolicy] = field(default_factory=list)
    approvals: list[StoredApproval] = field(default_factory=list)
    heartbeats: dict[str, Heartbeat] = field(default_factory=dict)


class _Tx:
    """One write: every change goes through :meth:`set` or :meth:`append`, which remember how
    to undo it, so :meth:`rollback` restores the state exactly as it was."""

    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] = []

    def set(self, table: dict[_K, _V], key: _K, value: _V) -> None:
        """``table[key] = value``, undoably."""
        if key in table:
            old = table[key]
            self._undo.append(lambda: table.__setitem__(key, old))
        else:
            self._undo.append(lambda: table.__delitem__(key))
        table[key] = value

    def append(self, table: list[_V], value: _V) -> None:
        """``table.append(value)``, undoably."""
        table.append(value)
        self._undo.append(lambda: table.__delitem__(-1))

    def rollback(self) -> None:
        """Undo every change, newest first."""
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()


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
        if hub_key and hub_public_key and hub_key.public != hub_public_key:
            raise UsageError("hub_key and hub_public_key are different keys")
        self.ledger = ledger if ledger is not None else MemoryLedger()
        self._hub_key = hub_key
        self._hub_public = hub_public_key or (hub_key.public if hub_key else None)
        self._verifier = verifier or RecordVerifier(0)
        self._max_record_bytes = max_record_bytes
        self._page_bytes = page_bytes

    def close(self) -> None:
        """Nothing to release (the verifier belongs to whoever passed it)."""

    @contextmanager
    def _write(self) -> Iterator[_Tx]:
        """The write lock and one all-or-nothing write under it."""
        with self.ledger.lock:
            tx = _Tx()
            try:
                yield tx
            except BaseException:
                tx.rollback()
                raise

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
        check_node_id(node_id)
        if not envelopes:
            raise UsageError("an append batch must hold at least one record")
        if len(envelopes) > MAX_BATCH:
            raise UsageError(
                f"an append batch holds at most {MAX_BATCH} records, got {len(envelopes)}"
            )
        if node_id == HUB_NODE_ID:
            raise AccessDeniedError(f"node id {HUB_NODE_ID!r} is reserved for the hub's own events")
        self._check_record_sizes(envelopes)
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
                with self._write() as tx:
                    if (node_id != HUB_NODE_ID
                            and self._current_key_id(node_id) != batch.ring.current.key_id):
                        raise SignatureError(
                            f"node {node_id}'s key changed while the batch was verified;"
                            " resend it"
                        )
                    head = self.ledger.heads.get(node_id, (0, GENESIS_PREV))
                    plan = plan_append(batch, head, self._stored_at(node_id, batch, head[0]))
                    root: bytes | None = None
                    new_idx: list[int] = []
                    if plan.fresh:
                        new_idx, size, root = self._append_locked(tx, plan.fresh, now)
                    else:
                        size = len(self.ledger.entries)
                    if checkpoint is not None:
                        signed = self._sign_locked(tx, checkpoint, size, root, now)
            except Equivocated as exc:  # rolled back above; the flag is a write of its own
                raise self._flag_equivocation(exc, now) from None
        return BatchAppended(plan.indexes(new_idx), plan.duplicates, size, signed)

    def _check_record_sizes(self, envelopes: Sequence[bytes]) -> None:
        """Refuse the batch if a record exceeds ``max_record_bytes`` (before any parsing)."""
        limit = self._max_record_bytes
        if limit is None:
            return
        for i, env in enumerate(envelopes):
            if len(env) > limit:
                raise RecordTooLargeError(
                    f"record {i} of the batch is {len(env)} bytes; this hub accepts records of"
                    f" at most {limit} bytes (max_record_bytes); nothing was stored",
                    hint="keep large evidence out of the record: sign its digest instead",
                )

    def _stored_at(
        self, node_id: str, batch: CheckedBatch, head_seq: int
    ) -> dict[int, tuple[int, Sha256]]:
        """The stream's stored records at the seqs the history rules must look up."""
        out: dict[int, tuple[int, Sha256]] = {}
        for seq in stored_seqs(batch, head_seq):
            found = self.ledger.seq_index.get((node_id, seq))
            if found is not None:
                out[seq] = found
        return out

    def _append_locked(
        self, tx: _Tx, records: Sequence[CheckedRecord], now: datetime
    ) -> tuple[list[int], int, bytes]:
        """Append checked records that passed the history rules; return their indexes, the
        new size and the new root (folded from the new frontier)."""
        led = self.ledger
        start = len(led.entries)
        frontier = [self._subtree(n) for n in merkle.frontier_nodes(start)]
        chain = led.entries[-1].chain_hash if start else _CHAIN_GENESIS
        for i, item in enumerate(records):
            chain = hashlib.sha256(chain + item.leaf_hash).digest()
            tx.append(led.entries, Entry(
                index=start + i, node_id=NodeId(item.node_id), seq=item.seq,
                envelope=item.envelope, leaf_hash=item.leaf_hash, chain_hash=chain,
                received_at=now,
            ))
            tx.set(led.seq_index, (item.node_id, item.seq), (start + i, item.digest))
            tx.set(led.heads, item.node_id, (item.seq, item.digest))
        new_frontier, created = merkle.extend(start, frontier, [r.leaf_hash for r in records])
        for level, index, digest in created:
            tx.set(led.subtrees, (level, index), digest)
        n = len(records)
        return [start + i for i in range(n)], start + n, merkle.fold(new_frontier)

    def _flag_equivocation(self, exc: Equivocated, now: datetime) -> EquivocationError:
        with self._write() as tx:
            flags = self.ledger.equivocations
            flag = Equivocation(len(flags) + 1, NodeId(exc.node_id), exc.seq, exc.existing,
                                bytes(exc.offered), now)
            tx.append(flags, flag)
        return EquivocationError(
            f"node {exc.node_id} signed two different records with seq {exc.seq}"
            f" (stored {exc.existing[:16]}…, offered {sha256_hex(exc.offered)[:16]}…);"
            " flagged as equivocation"
        )

    # --- LogStore: hub events -----------------------------------------------------------------

    def _require_hub_key(self) -> SigningKey:
        if self._hub_key is None:
            raise UsageError("this ledger store was opened without the hub signing key")
        return self._hub_key

    def append_hub_event(self, envelope: bytes, *, now: datetime) -> int:
        """See :meth:`LogStore.append_hub_event`."""
        if self._hub_public is None:
            raise UsageError("this ledger store was opened without the hub key")
        record = check_hub_event(envelope, self._hub_public)
        batch = CheckedBatch(KeyRing(HUB_NODE_ID, self._hub_public), (record,))
        return self._append_checked(batch, now, None).indexes[0]

    def _emit(self, tx: _Tx, kind: HubEventKind, body: dict[str, Any], now: datetime) -> int:
        """Build, sign and append a hub event inside the caller's write."""
        key = self._require_hub_key()
        seq, prev = self.ledger.heads.get(HUB_NODE_ID, (0, GENESIS_PREV))
        payload = build_hub_event(seq=seq + 1, prev=prev, time=now, kind=kind, body=body)
        record = CheckedRecord.signed_here(
            HUB_NODE_ID, seq + 1, prev, sign_hub_event(payload, key), key.public.key_id
        )
        return self._append_locked(tx, [record], now)[0][0]

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

    def _subtree(self, node: _Subtree) -> bytes:
        found = self.ledger.subtrees.get(node)
        if found is None:
            raise LedgerError(f"Merkle subtree {node} is missing from the store")
        return found

    def _check_size(self, tree_size: int) -> None:
        current = len(self.ledger.entries)
        if not 0 <= tree_size <= current:
            raise NotFoundError(f"tree size {tree_size} is beyond the ledger's size {current}")

    def root_at(self, size: int) -> bytes:
        """See :meth:`LogStore.root_at`."""
        with self.ledger.lock:
            self._check_size(size)
            if not size:
                return merkle.EMPTY_ROOT
            return merkle.resolve(merkle.root_plan(size), self._subtree)[0]

    def inclusion_proof(self, idx: int, size: int) -> list[bytes]:
        """See :meth:`LogStore.inclusion_proof`."""
        if not 0 <= idx < size:
            raise UsageError(f"entry {idx} is not inside a tree of size {size}")
        with self.ledger.lock:
            self._check_size(size)
            return merkle.resolve(merkle.inclusion_plan(idx, size), self._subtree)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """See :meth:`LogStore.consistency_proof`."""
        if not 0 < old_size <= new_size:
            raise UsageError(f"no consistency proof from size {old_size} to {new_size}")
        with self.ledger.lock:
            self._check_size(new_size)
            return merkle.resolve(merkle.consistency_plan(old_size, new_size), self._subtree)

    # --- CheckpointStore ----------------------------------------------------------------------

    def sign_checkpoint(
        self, origin: str, key_name: str, key: SigningKey, *, now: datetime
    ) -> StoredCheckpoint | None:
        """See :meth:`CheckpointStore.sign_checkpoint`."""
        with self._write() as tx:
            size = len(self.ledger.entries)
            if size == 0:
                return self.latest_checkpoint()
            return self._sign_locked(tx, CheckpointSigner(origin, key_name, key), size, None, now)

    def _sign_locked(
        self, tx: _Tx, signer: CheckpointSigner, size: int, root: bytes | None, now: datetime
    ) -> StoredCheckpoint:
        """Under the write lock: the latest checkpoint if it covers ``size``, else a new one."""
        latest = self.latest_checkpoint()
        if latest is not None and latest.size >= size:
            return latest
        if root is None:
            root = merkle.resolve(merkle.root_plan(size), self._subtree)[0]
        cp = Checkpoint(signer.origin, size, root)
        note = sign_checkpoint(cp, signer.key_name, signer.key)  # refuses a malformed origin
        if latest is not None and latest.origin != signer.origin:
            raise LedgerError(
                f"this ledger's checkpoints are signed under origin {latest.origin!r}; refusing"
                f" to sign one under {signer.origin!r} (a ledger keeps one origin for life)"
            )
        stored = StoredCheckpoint(cp, note, now)
        tx.append(self.ledger.checkpoints, stored)
        return stored

    def _cover(self, tx: _Tx, signer: CheckpointSigner | None, now: datetime) -> None:
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
            raise NodeNotEnrolledError(
                f"node {node_id!r} is not enrolled",
                hint="enroll it with a token from 'warden hub token create'",
            )
        history = self.ledger.node_keys.get(node_id, ())
        return KeyRing(
            node_id, info.public_key, tuple(HeldKey(k.public_key, k.ledger_idx) for k in history)
        )

    def _current_key_id(self, node_id: str) -> str | None:
        info = self.ledger.nodes.get(node_id)
        return info.key_id if info is not None and info.status == ACTIVE else None

    def create_token(
        self, node_id: NodeId, token_sha256: str, expires_at: datetime, *, now: datetime
    ) -> None:
        """See :meth:`NodeStore.create_token`."""
        check_node_id(node_id)
        if node_id == HUB_NODE_ID:
            raise UsageError(f"node id {HUB_NODE_ID!r} is reserved for the hub's own events")
        check_hex(token_sha256, "token_sha256")
        if expires_at <= now:
            raise UsageError("an enrollment token must expire in the future")
        with self._write() as tx:
            if token_sha256 in self.ledger.tokens:
                raise UsageError("an enrollment token with this hash already exists")
            tx.set(self.ledger.tokens, token_sha256, _Token(node_id, now, expires_at, None))

    def consume_token(self, token_sha256: str, node_id: NodeId, now: datetime) -> None:
        """See :meth:`NodeStore.consume_token`."""
        with self._write() as tx:
            self._consume(tx, token_sha256, node_id, now)

    def _consume(self, tx: _Tx, token_sha256: str, node_id: NodeId, now: datetime) -> None:
        tok = self.ledger.tokens.get(token_sha256)
        if tok is None:
            raise TokenUnknownError("enrollment token is not known to this hub")
        if tok.used_at is not None:
            raise TokenUsedError(
                f"enrollment token was already used at {format_time(tok.used_at)}",
                hint="tokens are single use; create a new one with 'warden hub token create'",
            )
        if tok.node_id != node_id:
            raise TokenNodeMismatchError(
                f"enrollment token was issued for node {tok.node_id!r}, not {node_id!r}"
            )
        if tok.expires_at <= now:
            raise TokenExpiredError(
                f"enrollment token expired at {format_time(tok.expires_at)}",
                hint="create a new one with 'warden hub token create'",
            )
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
        check_node_id(node_id)
        if node_id == HUB_NODE_ID:
            raise UsageError(f"node id {HUB_NODE_ID!r} is reserved for the hub")
        self._require_hub_key()
        with self._write() as tx:
            if token_sha256 is not None:
                self._consume(tx, token_sha256, node_id, now)
            if node_id in self.ledger.nodes:
                raise AlreadyEnrolledError(
                    f"node {node_id!r} is already enrolled", hint="rotate its key instead"
                )
            idx = self._emit(
                tx,
                HubEventKind.ENROLLMENT,
                {
                    "node_id": node_id,
                    "public_key": public_key.b64,
                    "key_id": public_key.key_id,
                    "enrolled_at": format_time(now),
                    "token_sha256": token_sha256 or GENESIS_PREV,
                },
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
        self._require_hub_key()
        with self._write() as tx:
            info = self.ledger.nodes.get(node_id)
            if info is None or info.status != ACTIVE:
                raise NodeNotEnrolledError(f"node {node_id!r} is not enrolled")
            old = info.public_key
            if old == new_key:
                raise UsageError(f"node {node_id!r} already uses key {new_key.key_id[:16]}…")
            history = self.ledger.node_keys.get(node_id, ())
            if any(k.key_id == new_key.key_id for k in history):
                raise UsageError(f"node {node_id!r} already used key {new_key.key_id[:16]}…")
            try:
                old.verify(signature, rotation_message(node_id, old, new_key))
            except SignatureError as exc:
                raise SignatureError(
                    f"key rotation for node {node_id!r} is not signed by its current key"
                ) from exc
            idx = self._emit(
                tx,
                HubEventKind.KEY_ROTATION,
                {
                    "node_id": node_id,
                    "old_key": old.b64,
                    "old_key_id": old.key_id,
                    "new_key": new_key.b64,
                    "new_key_id": new_key.key_id,
                    "signature": base64.b64encode(signature).decode("ascii"),
                },
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
        with self._write() as tx:
            tx.set(self.ledger.nodes, node_id, replace(self.node(node_id), status=status))

    # --- PolicyStore --------------------------------------------------------------------------

    def add_policy(
        self, name: str, version: int, digest: str, envelope: bytes, *, now: datetime,
        checkpoint: CheckpointSigner | None = None,
    ) -> StoredPolicy:
        """See :meth:`PolicyStore.add_policy`."""
        check_hex(digest, "policy digest")
        if not name or version < 1:
            raise UsageError(
                f"policy name must be non-empty and version ≥ 1 (got {name!r} {version})"
            )
        with self._write() as tx:
            latest = self.latest_policy(name)
            if latest is not None and version <= latest.version:
                same = next((p for p in self.ledger.policies
                             if p.name == name and p.version == version), None)
                if same is not None and same.digest == digest:
                    return same  # a retried publication
                raise RollbackError(
                    f"policy {name!r} version {version} is not newer than the published"
                    f" version {latest.version}",
                    hint="bump the bundle's version and sign it again",
                )
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
        if not role or not subject:
            raise UsageError("an approval needs a role and a subject")
        digest = sha256_hex(bytes(envelope))
        with self._write() as tx:
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
        if policy_version is not None and not 0 <= policy_version <= MAX_INT:
            raise UsageError(f"heartbeat policy_version {policy_version} is out of range"
                             f" (at most {MAX_INT})")
        with self._write() as tx:
            tx.set(self.ledger.heartbeats, node_id,
                   Heartbeat(node_id, now, agent_version, policy_name, policy_version))

    def heartbeats(self) -> list[Heartbeat]:
        """See :meth:`HeartbeatStore.heartbeats`."""
        with self.ledger.lock:
            return [self.ledger.heartbeats[n] for n in sorted(self.ledger.heartbeats)]
