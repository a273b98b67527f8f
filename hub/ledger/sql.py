"""The SQLAlchemy implementation of :class:`LedgerStore` (SQLite and PostgreSQL).

How the invariants of :mod:`hub.ledger.store` and :mod:`hub.ledger.schema` are kept:

* Signatures are verified *before* the write lock is taken, by the store's
  :class:`~hub.ledger.verify.RecordVerifier` (in worker processes when it has any, since
  ``cryptography`` holds the GIL); under the lock only cheap checks run: the key is still the
  one used, seq/prev continuity, duplicates. Every write happens in one
  :func:`hub.db.write_transaction`, so a batch is all-or-nothing and several hub processes
  produce one linear chain. An append may sign its covering checkpoint in that same
  transaction (one commit, one fsync), exactly as :meth:`sign_checkpoint` would; so does
  every hub event when given a signer, so a state change never commits without the
  checkpoint its reply needs.
* A batch that does not verify under the node's current key is checked again record by
  record (:meth:`SqlLedgerStore._check_with_history`): a byte-identical resend of a stored
  record is acknowledged without verification (it was verified when appended, perhaps under
  a key rotated away since); a conflicting record at a stored seq counts as equivocation only
  if a key the node held from that seq on signed it. This slow path runs in-process.
* Numbers from the wire are uint64; the columns are signed 64-bit. A value above
  :data:`MAX_INT` is not in the store (reads say :class:`NotFoundError`) and is never written.
* The hot inserts (entries, subtrees) go to the driver's ``executemany`` with values already
  in driver form; SQLAlchemy's per-row parameter processing cost more than the inserts.
* The Merkle tree is kept as perfect-subtree hashes: an append reads the O(log n) frontier,
  computes the new nodes in memory (:func:`trust.merkle.extend`) and inserts them in one
  ``executemany``; a proof reads O(log n) rows in one query.
* Rows of ``entries``, ``subtrees`` and ``checkpoints`` are only ever INSERTed.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from hub import db
from hub.ledger import schema as t
from hub.ledger.errors import (
    AlreadyEnrolledError,
    NodeNotEnrolledError,
    TokenExpiredError,
    TokenNodeMismatchError,
    TokenUnknownError,
    TokenUsedError,
)
from hub.ledger.store import (
    MAX_BATCH,
    AppendResult,
    ApprovalRecord,
    CheckpointSigner,
    Entry,
    Equivocation,
    Heartbeat,
    LedgerStore,
    NodeInfo,
    NodeKey,
    PolicyRecord,
    StoredCheckpoint,
)
from hub.ledger.verify import Checked, RecordVerifier, check_records
from trust import dsse, merkle
from trust.canonical import Sha256, sha256_hex
from trust.checkpoint import Checkpoint, parse_checkpoint, parse_note, sign_checkpoint
from trust.errors import (
    AccessDeniedError,
    ChainBrokenError,
    ConfigError,
    EquivocationError,
    FormatError,
    LedgerError,
    NotFoundError,
    RecordTooLargeError,
    RollbackError,
    SequenceGapError,
    SignatureError,
    StorageFullError,
    StorageUnavailableError,
    UsageError,
    WardenError,
)
from trust.keys import KeyId, PublicKey, SigningKey
from trust.record import (
    GENESIS_PREV,
    HUB_NODE_ID,
    HubEvent,
    HubEventKind,
    build_hub_event,
    check_node_id,
    rotation_message,
    sign_hub_event,
)
from trust.timeutil import format_time

__all__ = ["SqlLedgerStore"]

CHAIN_GENESIS = bytes(32)
# One cached statement; the expanding IN list is the proof's O(log n) node keys.
_SUBTREES_BY_KEY = sa.select(t.subtrees.c.id, t.subtrees.c.hash).where(
    t.subtrees.c.id.in_(sa.bindparam("keys", expanding=True))
)
ACTIVE = "active"
MAX_INT = (1 << 63) - 1
"""The largest value a BIGINT column holds; wire fields are uint64, so a larger index, size
or version is simply not in the store (and may not be written to it)."""
_ENTRY_COLUMNS = (
    "idx", "node_id", "seq", "envelope", "envelope_sha256", "leaf_hash", "chain_hash",
    "received_at",
)


def _bind(conn: Connection, column: sa.Column[Any], value: Any) -> Any:
    """``value`` as the driver receives it for ``column`` (its type's bind processing)."""
    process = column.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return value if process is None else process(value)


def _insert_many(
    conn: Connection, table: sa.Table, columns: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """A driver-level ``executemany`` of ``rows`` (values already in driver form).

    The append path inserts a few hundred rows per batch; SQLAlchemy's per-row parameter
    processing cost more than the insert itself. Only ints, str and bytes (which both drivers
    take as they are) and values passed through :func:`_bind` may appear in ``rows``.
    """
    if not rows:
        return
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "
        f"VALUES ({', '.join([mark] * len(columns))})"
    )
    conn.exec_driver_sql(sql, rows)


class _Pending:
    """A verified record waiting for its index."""

    __slots__ = ("node_id", "seq", "prev", "envelope", "digest", "leaf")

    def __init__(
        self, node_id: str, seq: int, prev: str, envelope: bytes,
        digest: Sha256 | None = None, leaf: bytes | None = None,
    ) -> None:
        self.node_id = node_id
        self.seq = seq
        self.prev = prev
        self.envelope = envelope
        self.digest = sha256_hex(envelope) if digest is None else digest
        self.leaf = merkle.leaf_hash(envelope) if leaf is None else leaf


class _Equivocated(Exception):
    """Raised inside the write transaction so it rolls back before the flag is written."""

    def __init__(self, node_id: str, seq: int, existing: str, offered: bytes) -> None:
        super().__init__(node_id, seq)
        self.node_id, self.seq, self.existing, self.offered = node_id, seq, existing, offered


def _entry(row: Any) -> Entry:
    return Entry(
        idx=row.idx,
        node_id=row.node_id,
        seq=row.seq,
        envelope=bytes(row.envelope),
        envelope_sha256=Sha256(row.envelope_sha256),
        leaf_hash=bytes(row.leaf_hash),
        chain_hash=bytes(row.chain_hash),
        received_at=row.received_at,
    )


def _checkpoint(row: Any) -> StoredCheckpoint:
    note = bytes(row.note)
    cp = parse_checkpoint(parse_note(note).text)
    if cp.size != row.size or cp.root_hash != bytes(row.root_hash):
        raise LedgerError(f"stored checkpoint {row.size} does not match its note")
    return StoredCheckpoint(cp, note, row.created_at)


def _policy(row: Any) -> PolicyRecord:
    return PolicyRecord(
        row.name, row.version, Sha256(row.digest), bytes(row.envelope), row.published_at,
        row.ledger_idx,
    )


def _approval(row: Any) -> ApprovalRecord:
    return ApprovalRecord(
        row.id, row.role, row.subject, Sha256(row.digest), bytes(row.envelope), row.created_at,
        row.ledger_idx,
    )


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
        self._verifier = verifier or RecordVerifier(0)
        self._max_record_bytes = max_record_bytes
        self._page_bytes = page_bytes
        self._hub_key = hub_key
        self._hub_public = hub_public_key or (hub_key.public if hub_key else None)
        if hub_key and hub_public_key and hub_key.public != hub_public_key:
            raise UsageError("hub_key and hub_public_key are different keys")

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

    # --- tree internals ------------------------------------------------------------------------

    @staticmethod
    def _size(conn: Connection) -> int:
        last = conn.scalar(sa.select(sa.func.max(t.entries.c.idx)))
        return 0 if last is None else int(last) + 1

    @staticmethod
    def _nodes(conn: Connection, ids: Iterable[merkle.NodeId]) -> dict[merkle.NodeId, bytes]:
        keys = sorted({t.subtree_key(level, idx) for level, idx in ids})
        if not keys:
            return {}
        rows = conn.execute(_SUBTREES_BY_KEY, {"keys": keys}).all()
        found = {t.subtree_of(r.id): bytes(r.hash) for r in rows}
        if len(found) != len(keys):
            missing = sorted(set(map(t.subtree_of, keys)) - set(found))
            raise LedgerError(f"Merkle subtree {missing[0]} is missing from the store")
        return found

    def _resolve(self, conn: Connection, plan: merkle.Plan) -> list[bytes]:
        return merkle.resolve(plan, self._nodes(conn, (n for el in plan for n in el)))

    def _append_locked(
        self, conn: Connection, items: Sequence[_Pending], now: datetime
    ) -> tuple[list[int], int, bytes]:
        """Insert verified, continuity-checked items; return their indexes, the new size and
        the new root (folded from the new frontier, which is in hand)."""
        size = self._size(conn)
        frontier_ids = merkle.frontier_nodes(size)
        found = self._nodes(conn, frontier_ids)
        frontier = [found[n] for n in frontier_ids]
        chain = CHAIN_GENESIS
        if size:
            chain = bytes(
                conn.execute(
                    sa.select(t.entries.c.chain_hash).where(t.entries.c.idx == size - 1)
                ).scalar_one()
            )
        received = _bind(conn, t.entries.c.received_at, now)
        rows: list[tuple[Any, ...]] = []
        leaves: list[bytes] = []
        sha256 = hashlib.sha256
        for i, item in enumerate(items):
            leaf = item.leaf
            chain = sha256(chain + leaf).digest()
            leaves.append(leaf)
            rows.append(
                (size + i, item.node_id, item.seq, item.envelope, item.digest, leaf, chain,
                 received)
            )
        new_frontier, created = merkle.extend(size, frontier, leaves)
        _insert_many(conn, t.entries, _ENTRY_COLUMNS, rows)
        _insert_many(
            conn, t.subtrees, ("id", "hash"),
            [(t.subtree_key(lv, ix), h) for lv, ix, h in created],
        )
        heads: dict[str, _Pending] = {}
        for item in items:
            heads[item.node_id] = item
        for node_id, item in heads.items():
            self._set_head(conn, node_id, item.seq, item.digest)
        return [size + i for i in range(len(items))], size + len(items), merkle.fold(new_frontier)

    @staticmethod
    def _head(conn: Connection, node_id: str) -> tuple[int, Sha256] | None:
        row = conn.execute(
            sa.select(t.node_heads.c.last_seq, t.node_heads.c.last_envelope_sha256).where(
                t.node_heads.c.node_id == node_id
            )
        ).first()
        return None if row is None else (int(row.last_seq), Sha256(row.last_envelope_sha256))

    @staticmethod
    def _set_head(conn: Connection, node_id: str, seq: int, digest: str) -> None:
        updated = conn.execute(
            sa.update(t.node_heads)
            .where(t.node_heads.c.node_id == node_id)
            .values(last_seq=seq, last_envelope_sha256=digest)
        ).rowcount
        if not updated:
            conn.execute(
                sa.insert(t.node_heads).values(
                    node_id=node_id, last_seq=seq, last_envelope_sha256=digest
                )
            )

    def _sequence(
        self, conn: Connection, node_id: str, items: Sequence[_Pending]
    ) -> tuple[list[_Pending], list[tuple[bool, int]], list[int]]:
        """Sort a batch into new items and resends; raise on gaps, forks and equivocation.

        Returns the new items; per batch position ``(True, k)`` for the k-th new item (whose
        index is only known at insert time) or ``(False, idx)`` for a stored record; and the
        positions of resends.
        """
        head = self._head(conn, node_id) or (0, GENESIS_PREV)
        head_seq, head_digest = head
        old_seqs = sorted({it.seq for it in items if it.seq <= head_seq})
        stored: dict[int, tuple[int, str]] = {}
        if old_seqs:
            rows = conn.execute(
                sa.select(t.entries.c.seq, t.entries.c.idx, t.entries.c.envelope_sha256).where(
                    t.entries.c.node_id == node_id, t.entries.c.seq.in_(old_seqs)
                )
            ).all()
            stored = {r.seq: (int(r.idx), r.envelope_sha256) for r in rows}
        fresh: list[_Pending] = []
        positions: list[tuple[bool, int]] = []
        duplicates: list[int] = []
        seq, digest = head_seq, head_digest
        for pos, it in enumerate(items):
            if it.seq <= seq:
                if it.seq <= head_seq:
                    if it.seq not in stored:
                        raise LedgerError(f"node {node_id} seq {it.seq} is missing from the ledger")
                    idx, existing = stored[it.seq]
                    where = (False, idx)
                    if existing != it.digest:
                        raise _Equivocated(node_id, it.seq, existing, it.envelope)
                else:  # a resend of a record earlier in this same batch
                    k = it.seq - head_seq - 1
                    if fresh[k].digest != it.digest:
                        # Neither version is stored, so nothing is flagged: a flag must name
                        # a record the ledger keeps, and a refused batch forks no history.
                        raise FormatError(
                            f"node {node_id}: the batch holds two different records with seq"
                            f" {it.seq}; refused as malformed (nothing was stored)"
                        )
                    where = (True, k)
                positions.append(where)
                duplicates.append(pos)
                continue
            if it.seq != seq + 1:
                raise SequenceGapError(
                    f"node {node_id} record seq {it.seq} does not follow seq {seq}",
                    expected=seq + 1,
                    hint=f"send seq {seq + 1} next",
                )
            if it.prev != digest:
                raise ChainBrokenError(
                    f"node {node_id} record seq {it.seq}: prev {it.prev[:16]}… is not the digest"
                    f" of record {seq} ({digest[:16]}…)"
                )
            positions.append((True, len(fresh)))
            fresh.append(it)
            seq, digest = it.seq, it.digest
        return fresh, positions, duplicates

    def _flag_equivocation(self, exc: _Equivocated, now: datetime) -> EquivocationError:
        with db.write_transaction(self.engine, lock=None) as conn:
            conn.execute(
                sa.insert(t.equivocations).values(
                    node_id=exc.node_id,
                    seq=exc.seq,
                    existing_sha256=exc.existing,
                    offered_envelope=exc.offered,
                    flagged_at=now,
                )
            )
        return EquivocationError(
            f"node {exc.node_id} signed two different records with seq {exc.seq}"
            f" (stored {exc.existing[:16]}…, offered {sha256_hex(exc.offered)[:16]}…);"
            " flagged as equivocation"
        )

    # --- records -------------------------------------------------------------------------------

    def append_records(
        self,
        node_id: str,
        envelopes: Sequence[bytes],
        *,
        now: datetime,
        checkpoint: CheckpointSigner | None = None,
    ) -> AppendResult:
        """See :meth:`LedgerStore.append_records`."""
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
        key = self._current_key(node_id)
        # The expensive checks run before the write lock, possibly in worker processes.
        try:
            checked = self._verifier.check(node_id, key, envelopes)
        except SignatureError:
            # Some record is not signed by the current key: it may be a resend of a record
            # signed before a key rotation, or evidence of equivocation under an older key.
            checked = self._check_with_history(node_id, key, envelopes)
        items = [
            _Pending(node_id, c.seq, c.prev, bytes(env), c.digest, c.leaf_hash)
            for c, env in zip(checked, envelopes, strict=True)
        ]
        signed: StoredCheckpoint | None = None
        try:
            with db.write_transaction(self.engine) as conn:
                current = conn.scalar(
                    sa.select(t.nodes.c.key_id).where(
                        t.nodes.c.node_id == node_id, t.nodes.c.status == ACTIVE
                    )
                )
                if current != key.key_id:
                    raise SignatureError(
                        f"node {node_id}'s key changed while the batch was verified; resend it"
                    )
                fresh, positions, duplicates = self._sequence(conn, node_id, items)
                root: bytes | None = None
                if fresh:
                    new_idx, size, root = self._append_locked(conn, fresh, now)
                else:
                    size = self._size(conn)
                    new_idx = []
                if checkpoint is not None:
                    signed = self._checkpoint_locked(conn, checkpoint, size, root, now)
        except _Equivocated as exc:
            raise self._flag_equivocation(exc, now) from None
        indexes = [new_idx[v] if is_new else v for is_new, v in positions]
        return AppendResult(indexes, duplicates, size, signed)

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

    def _check_with_history(
        self, node_id: str, current: PublicKey, envelopes: Sequence[bytes]
    ) -> list[Checked]:
        """Check a batch record by record, allowing for the node's earlier keys.

        * A record byte-identical to the stored record at the seq it claims is a resend: it is
          not verified again (its signature was verified when it was first appended, under the
          key then current, which may have been rotated away since) and becomes a duplicate.
        * A different record claiming a seq already stored must verify under a key the node
          held when that seq was appended or later (its current key included); only then is it
          equivocation by the node. A signature by anyone else is a :class:`SignatureError`,
          so nobody but a holder of the node's keys can get an equivocation flagged against it.
        * Every other record must verify under the current key.

        The claimed seq is read from the unverified payload only to find the stored record to
        compare with; nothing unverified is trusted unless its bytes equal a stored envelope.
        """
        digests = [sha256_hex(bytes(env)) for env in envelopes]
        claimed = [_claimed_chain(bytes(env)) for env in envelopes]
        seqs = sorted({c[0] for c in claimed if c is not None})
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.entries.c.seq, t.entries.c.idx, t.entries.c.envelope_sha256).where(
                    t.entries.c.node_id == node_id, t.entries.c.seq.in_(seqs)
                )
            ).all() if seqs else []
            history = conn.execute(
                sa.select(t.node_keys.c.public_key, t.node_keys.c.ledger_idx)
                .where(t.node_keys.c.node_id == node_id)
                .order_by(t.node_keys.c.id)
            ).all()
        stored = {int(r.seq): (int(r.idx), str(r.envelope_sha256)) for r in rows}
        out: list[Checked] = []
        for i, env in enumerate(envelopes):
            seq_prev = claimed[i]
            if seq_prev is None or seq_prev[0] not in stored:
                out.extend(check_records(node_id, current, [env], offset=i))
                continue
            idx, digest = stored[seq_prev[0]]
            if digest == digests[i]:
                out.append(Checked(seq_prev[0], Sha256(seq_prev[1]), Sha256(digest),
                                   merkle.leaf_hash(bytes(env))))
                continue
            out.extend(_check_under_keys_from(node_id, history, idx, current, env, i))
        return out

    def _current_key(self, node_id: str) -> PublicKey:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(t.nodes.c.public_key, t.nodes.c.status).where(
                    t.nodes.c.node_id == node_id
                )
            ).first()
        if row is None or row.status != ACTIVE:
            raise NodeNotEnrolledError(
                f"node {node_id!r} is not enrolled",
                hint="enroll it with a token from 'warden hub token create'",
            )
        return PublicKey(bytes(row.public_key))

    def node_head(self, node_id: str) -> tuple[int, Sha256]:
        """See :meth:`LedgerStore.node_head`."""
        with self.engine.connect() as conn:
            return self._head(conn, node_id) or (0, GENESIS_PREV)

    def hub_head(self) -> tuple[int, Sha256]:
        """See :meth:`LedgerStore.hub_head`."""
        return self.node_head(HUB_NODE_ID)

    # --- hub events ----------------------------------------------------------------------------

    def _require_hub_public(self) -> PublicKey:
        if self._hub_public is None:
            raise UsageError("this ledger store was opened without the hub key")
        return self._hub_public

    def _require_hub_key(self) -> SigningKey:
        if self._hub_key is None:
            raise UsageError("this ledger store was opened without the hub signing key")
        return self._hub_key

    def append_hub_event(self, envelope: bytes, *, now: datetime) -> int:
        """See :meth:`LedgerStore.append_hub_event`."""
        event = HubEvent.from_envelope(bytes(envelope), self._require_hub_public())
        item = _Pending(HUB_NODE_ID, event.seq, event.prev, event.envelope)
        try:
            with db.write_transaction(self.engine) as conn:
                fresh, positions, _ = self._sequence(conn, HUB_NODE_ID, [item])
                if not fresh:
                    return positions[0][1]
                return self._append_locked(conn, fresh, now)[0][0]
        except _Equivocated as exc:
            raise self._flag_equivocation(exc, now) from None

    def _emit(
        self, conn: Connection, kind: HubEventKind, body: dict[str, Any], now: datetime
    ) -> int:
        """Build, sign and append a hub event inside the caller's write transaction."""
        key = self._require_hub_key()
        seq, prev = self._head(conn, HUB_NODE_ID) or (0, GENESIS_PREV)
        payload = build_hub_event(seq=seq + 1, prev=prev, time=now, kind=kind, body=body)
        envelope = sign_hub_event(payload, key)
        item = _Pending(HUB_NODE_ID, seq + 1, prev, envelope)
        return self._append_locked(conn, [item], now)[0][0]

    # --- nodes and tokens ------------------------------------------------------------------------

    def create_token(
        self, node_id: str, token_sha256: str, expires_at: datetime, *, now: datetime
    ) -> None:
        """See :meth:`LedgerStore.create_token`."""
        check_node_id(node_id)
        if node_id == HUB_NODE_ID:
            raise UsageError(f"node id {HUB_NODE_ID!r} is reserved for the hub's own events")
        _check_hex(token_sha256, "token_sha256")
        if expires_at <= now:
            raise UsageError("an enrollment token must expire in the future")
        try:
            with db.write_transaction(self.engine, lock=None) as conn:
                conn.execute(
                    sa.insert(t.enrollment_tokens).values(
                        token_sha256=token_sha256, node_id=node_id, created_at=now,
                        expires_at=expires_at, used_at=None,
                    )
                )
        except sa.exc.IntegrityError as exc:
            raise UsageError("an enrollment token with this hash already exists") from exc

    def consume_token(self, token_sha256: str, node_id: str, now: datetime) -> None:
        """See :meth:`LedgerStore.consume_token`."""
        with db.write_transaction(self.engine, lock=None) as conn:
            self._consume(conn, token_sha256, node_id, now)

    @staticmethod
    def _consume(conn: Connection, token_sha256: str, node_id: str, now: datetime) -> None:
        tok = t.enrollment_tokens
        # One conditional UPDATE: two concurrent enrollments cannot both consume the token.
        done = conn.execute(
            sa.update(tok)
            .where(
                tok.c.token_sha256 == token_sha256,
                tok.c.used_at.is_(None),
                tok.c.node_id == node_id,
                tok.c.expires_at > now,
            )
            .values(used_at=now)
        ).rowcount
        if done == 1:
            return
        row = conn.execute(sa.select(tok).where(tok.c.token_sha256 == token_sha256)).first()
        if row is None:
            raise TokenUnknownError("enrollment token is not known to this hub")
        if row.used_at is not None:
            raise TokenUsedError(
                f"enrollment token was already used at {format_time(row.used_at)}",
                hint="tokens are single use; create a new one with 'warden hub token create'",
            )
        if row.node_id != node_id:
            raise TokenNodeMismatchError(
                f"enrollment token was issued for node {row.node_id!r}, not {node_id!r}"
            )
        raise TokenExpiredError(
            f"enrollment token expired at {format_time(row.expires_at)}",
            hint="create a new one with 'warden hub token create'",
        )

    def register_node(
        self,
        node_id: str,
        public_key: PublicKey,
        *,
        now: datetime,
        token_sha256: str | None = None,
        checkpoint: CheckpointSigner | None = None,
    ) -> int:
        """See :meth:`LedgerStore.register_node`."""
        check_node_id(node_id)
        if node_id == HUB_NODE_ID:
            raise UsageError(f"node id {HUB_NODE_ID!r} is reserved for the hub")
        self._require_hub_key()
        with db.write_transaction(self.engine) as conn:
            if token_sha256 is not None:
                self._consume(conn, token_sha256, node_id, now)
            exists = conn.scalar(sa.select(t.nodes.c.node_id).where(t.nodes.c.node_id == node_id))
            if exists is not None:
                raise AlreadyEnrolledError(
                    f"node {node_id!r} is already enrolled", hint="rotate its key instead"
                )
            idx = self._emit(
                conn,
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
            conn.execute(
                sa.insert(t.nodes).values(
                    node_id=node_id, key_id=public_key.key_id, public_key=public_key.raw,
                    enrolled_at=now, status=ACTIVE,
                )
            )
            conn.execute(
                sa.insert(t.node_keys).values(
                    node_id=node_id, key_id=public_key.key_id, public_key=public_key.raw,
                    added_at=now, retired_at=None, ledger_idx=idx,
                )
            )
            self._cover(conn, checkpoint, now)
        return idx

    def rotate_node_key(
        self, node_id: str, new_key: PublicKey, signature: bytes, *, now: datetime,
        checkpoint: CheckpointSigner | None = None,
    ) -> int:
        """See :meth:`LedgerStore.rotate_node_key`."""
        self._require_hub_key()
        with db.write_transaction(self.engine) as conn:
            row = conn.execute(sa.select(t.nodes).where(t.nodes.c.node_id == node_id)).first()
            if row is None or row.status != ACTIVE:
                raise NodeNotEnrolledError(f"node {node_id!r} is not enrolled")
            old = PublicKey(bytes(row.public_key))
            if old == new_key:
                raise UsageError(f"node {node_id!r} already uses key {new_key.key_id[:16]}…")
            used = conn.scalar(
                sa.select(t.node_keys.c.id).where(
                    t.node_keys.c.node_id == node_id, t.node_keys.c.key_id == new_key.key_id
                )
            )
            if used is not None:
                raise UsageError(f"node {node_id!r} already used key {new_key.key_id[:16]}…")
            try:
                old.verify(signature, rotation_message(node_id, old, new_key))
            except SignatureError as exc:
                raise SignatureError(
                    f"key rotation for node {node_id!r} is not signed by its current key"
                ) from exc
            idx = self._emit(
                conn,
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
            conn.execute(
                sa.update(t.node_keys)
                .where(t.node_keys.c.node_id == node_id, t.node_keys.c.retired_at.is_(None))
                .values(retired_at=now)
            )
            conn.execute(
                sa.insert(t.node_keys).values(
                    node_id=node_id, key_id=new_key.key_id, public_key=new_key.raw,
                    added_at=now, retired_at=None, ledger_idx=idx,
                )
            )
            conn.execute(
                sa.update(t.nodes)
                .where(t.nodes.c.node_id == node_id)
                .values(key_id=new_key.key_id, public_key=new_key.raw)
            )
            self._cover(conn, checkpoint, now)
        return idx

    def node_key(self, node_id: str) -> PublicKey:
        """See :meth:`LedgerStore.node_key`."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(t.nodes.c.public_key).where(
                    t.nodes.c.node_id == node_id, t.nodes.c.status == ACTIVE
                )
            ).first()
        if row is None:
            raise NotFoundError(f"node {node_id!r} is not enrolled (or no longer active)")
        return PublicKey(bytes(row.public_key))

    def node(self, node_id: str) -> NodeInfo:
        """See :meth:`LedgerStore.node`."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.nodes).where(t.nodes.c.node_id == node_id)).first()
        if row is None:
            raise NotFoundError(f"node {node_id!r} is not enrolled")
        return _node(row)

    def nodes(self) -> list[NodeInfo]:
        """See :meth:`LedgerStore.nodes`."""
        with self.engine.connect() as conn:
            return [_node(r) for r in conn.execute(sa.select(t.nodes).order_by(t.nodes.c.node_id))]

    def node_keys(self, node_id: str) -> list[NodeKey]:
        """See :meth:`LedgerStore.node_keys`."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.node_keys)
                .where(t.node_keys.c.node_id == node_id)
                .order_by(t.node_keys.c.id)
            ).all()
        return [
            NodeKey(
                r.node_id, KeyId(r.key_id), PublicKey(bytes(r.public_key)), r.added_at,
                r.retired_at, r.ledger_idx,
            )
            for r in rows
        ]

    # --- policies, approvals, heartbeats -------------------------------------------------------

    def add_policy(
        self, name: str, version: int, digest: str, envelope: bytes, *, now: datetime,
        checkpoint: CheckpointSigner | None = None,
    ) -> PolicyRecord:
        """See :meth:`LedgerStore.add_policy`."""
        _check_hex(digest, "policy digest")
        if not name or version < 1:
            raise UsageError(
                f"policy name must be non-empty and version ≥ 1 (got {name!r} {version})"
            )
        p = t.policies
        with db.write_transaction(self.engine) as conn:
            latest = conn.execute(
                sa.select(p).where(p.c.name == name).order_by(p.c.version.desc()).limit(1)
            ).first()
            if latest is not None and version <= latest.version:
                if version == latest.version and latest.digest == digest:
                    return _policy(latest)
                same = conn.execute(
                    sa.select(p).where(p.c.name == name, p.c.version == version)
                ).first()
                if same is not None and same.digest == digest:
                    return _policy(same)
                raise RollbackError(
                    f"policy {name!r} version {version} is not newer than the published"
                    f" version {latest.version}",
                    hint="bump the bundle's version and sign it again",
                )
            idx = self._emit(
                conn,
                HubEventKind.POLICY_PUBLICATION,
                {"name": name, "version": version, "digest": digest},
                now,
            )
            values = dict(
                name=name, version=version, digest=digest, envelope=bytes(envelope),
                published_at=now, ledger_idx=idx,
            )
            conn.execute(sa.insert(p).values(**values))
            self._cover(conn, checkpoint, now)
        return PolicyRecord(name, version, Sha256(digest), bytes(envelope), now, idx)

    def latest_policy(self, name: str | None = None) -> PolicyRecord | None:
        """See :meth:`LedgerStore.latest_policy`."""
        p = t.policies
        q = sa.select(p)
        if name is not None:
            q = q.where(p.c.name == name).order_by(p.c.version.desc())
        else:
            q = q.order_by(p.c.ledger_idx.desc())
        with self.engine.connect() as conn:
            row = conn.execute(q.limit(1)).first()
        return None if row is None else _policy(row)

    def get_policy(self, name: str, version: int) -> PolicyRecord:
        """See :meth:`LedgerStore.get_policy`."""
        if not 0 <= version <= MAX_INT:
            raise NotFoundError(f"policy {name!r} version {version} was never published here")
        p = t.policies
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(p).where(p.c.name == name, p.c.version == version)).first()
        if row is None:
            raise NotFoundError(f"policy {name!r} version {version} was never published here")
        return _policy(row)

    def policies(self) -> list[PolicyRecord]:
        """See :meth:`LedgerStore.policies`."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.policies).order_by(t.policies.c.ledger_idx)).all()
        return [_policy(r) for r in rows]

    def add_approval(
        self, role: str, subject: str, envelope: bytes, *, now: datetime,
        checkpoint: CheckpointSigner | None = None,
    ) -> ApprovalRecord:
        """See :meth:`LedgerStore.add_approval`."""
        if not role or not subject:
            raise UsageError("an approval needs a role and a subject")
        digest = sha256_hex(bytes(envelope))
        a = t.approvals
        with db.write_transaction(self.engine) as conn:
            row = conn.execute(sa.select(a).where(a.c.digest == digest)).first()
            if row is not None:
                return _approval(row)
            idx = self._emit(
                conn,
                HubEventKind.APPROVAL,
                {"digest": digest, "role": role, "subject": subject},
                now,
            )
            new_id = conn.execute(
                sa.insert(a)
                .values(
                    role=role, subject=subject, digest=digest, envelope=bytes(envelope),
                    created_at=now, ledger_idx=idx,
                )
                .returning(a.c.id)
            ).scalar_one()
            self._cover(conn, checkpoint, now)
        return ApprovalRecord(new_id, role, subject, digest, bytes(envelope), now, idx)

    def approvals(
        self, subject: str | None = None, role: str | None = None
    ) -> list[ApprovalRecord]:
        """See :meth:`LedgerStore.approvals`."""
        a = t.approvals
        q = sa.select(a).order_by(a.c.id)
        if subject is not None:
            q = q.where(a.c.subject == subject)
        if role is not None:
            q = q.where(a.c.role == role)
        with self.engine.connect() as conn:
            return [_approval(r) for r in conn.execute(q)]

    def record_heartbeat(
        self,
        node_id: str,
        *,
        now: datetime,
        agent_version: str,
        policy_name: str | None = None,
        policy_version: int | None = None,
    ) -> None:
        """See :meth:`LedgerStore.record_heartbeat`."""
        if policy_version is not None and not 0 <= policy_version <= MAX_INT:
            raise UsageError(f"heartbeat policy_version {policy_version} is out of range"
                             f" (at most {MAX_INT})")
        h = t.heartbeats
        values = dict(
            last_seen=now, agent_version=agent_version, policy_name=policy_name,
            policy_version=policy_version,
        )
        with db.write_transaction(self.engine, lock=None) as conn:
            update = sa.update(h).where(h.c.node_id == node_id).values(**values)
            if not conn.execute(update).rowcount:
                try:
                    with conn.begin_nested():
                        conn.execute(sa.insert(h).values(node_id=node_id, **values))
                except sa.exc.IntegrityError:  # a concurrent first heartbeat won the insert
                    conn.execute(sa.update(h).where(h.c.node_id == node_id).values(**values))

    def heartbeats(self) -> list[Heartbeat]:
        """See :meth:`LedgerStore.heartbeats`."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.heartbeats).order_by(t.heartbeats.c.node_id)).all()
        return [
            Heartbeat(r.node_id, r.last_seen, r.agent_version, r.policy_name, r.policy_version)
            for r in rows
        ]

    def equivocations(self, node_id: str | None = None) -> list[Equivocation]:
        """See :meth:`LedgerStore.equivocations`."""
        e = t.equivocations
        q = sa.select(e).order_by(e.c.id)
        if node_id is not None:
            q = q.where(e.c.node_id == node_id)
        with self.engine.connect() as conn:
            return [
                Equivocation(
                    r.id, r.node_id, r.seq, Sha256(r.existing_sha256), bytes(r.offered_envelope),
                    r.flagged_at,
                )
                for r in conn.execute(q)
            ]

    # --- reads and proofs -------------------------------------------------------------------

    def size(self) -> int:
        """See :meth:`LedgerStore.size`."""
        with self.engine.connect() as conn:
            return self._size(conn)

    def entry(self, idx: int) -> Entry:
        """See :meth:`LedgerStore.entry`."""
        if not 0 <= idx <= MAX_INT:
            raise NotFoundError(f"ledger entry {idx} does not exist")
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.entries).where(t.entries.c.idx == idx)).first()
        if row is None:
            raise NotFoundError(f"ledger entry {idx} does not exist")
        return _entry(row)

    def entries(self, start: int, end: int, *, max_bytes: int | None = None) -> list[Entry]:
        """See :meth:`LedgerStore.entries`."""
        start, end = max(start, 0), min(end, MAX_INT)
        if start >= end:
            return []
        budget = self._page_bytes if max_bytes is None else max_bytes
        e = t.entries
        with self.engine.connect() as conn:
            if budget is not None:
                # Sizes first (both databases answer length() without reading the blob), so
                # a page of large envelopes is never loaded whole just to be cut.
                sizes = conn.execute(
                    sa.select(e.c.idx, sa.func.length(e.c.envelope))
                    .where(e.c.idx >= start, e.c.idx < end)
                    .order_by(e.c.idx)
                ).all()
                end = _page_end(sizes, budget, end)
            rows = conn.execute(
                sa.select(e).where(e.c.idx >= start, e.c.idx < end).order_by(e.c.idx)
            ).all()
        return [_entry(r) for r in rows]

    def find_entry(self, node_id: str, seq: int) -> Entry:
        """See :meth:`LedgerStore.find_entry`."""
        if not 0 <= seq <= MAX_INT:
            raise NotFoundError(f"node {node_id!r} has no record with seq {seq} in the ledger")
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(t.entries).where(t.entries.c.node_id == node_id, t.entries.c.seq == seq)
            ).first()
        if row is None:
            raise NotFoundError(f"node {node_id!r} has no record with seq {seq} in the ledger")
        return _entry(row)

    def _check_size(self, conn: Connection, size: int) -> None:
        current = self._size(conn)
        if not 0 <= size <= current:
            raise NotFoundError(f"tree size {size} is beyond the ledger's size {current}")

    def root_at(self, size: int) -> bytes:
        """See :meth:`LedgerStore.root_at`."""
        with self.engine.connect() as conn:  # nodes under a committed size never change
            self._check_size(conn, size)
            return self._resolve(conn, merkle.root_plan(size))[0] if size else merkle.EMPTY_ROOT

    def inclusion_proof(self, idx: int, size: int) -> list[bytes]:
        """See :meth:`LedgerStore.inclusion_proof`."""
        if not 0 <= idx < size:
            raise UsageError(f"entry {idx} is not inside a tree of size {size}")
        with self.engine.connect() as conn:
            self._check_size(conn, size)
            return self._resolve(conn, merkle.inclusion_plan(idx, size))

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """See :meth:`LedgerStore.consistency_proof`."""
        if not 0 < old_size <= new_size:
            raise UsageError(f"no consistency proof from size {old_size} to {new_size}")
        with self.engine.connect() as conn:
            self._check_size(conn, new_size)
            return self._resolve(conn, merkle.consistency_plan(old_size, new_size))

    # --- checkpoints -----------------------------------------------------------------------------

    def sign_checkpoint(
        self, origin: str, key_name: str, key: SigningKey, *, now: datetime
    ) -> StoredCheckpoint | None:
        """See :meth:`LedgerStore.sign_checkpoint`."""
        with db.write_transaction(self.engine) as conn:
            size = self._size(conn)
            if size == 0:
                return self._latest_checkpoint(conn)
            return self._checkpoint_locked(
                conn, CheckpointSigner(origin, key_name, key), size, None, now
            )

    def _checkpoint_locked(
        self,
        conn: Connection,
        signer: CheckpointSigner,
        size: int,
        root: bytes | None,
        now: datetime,
    ) -> StoredCheckpoint:
        """Inside the write lock: the latest checkpoint if it covers ``size`` (the committed
        size), else a new one of ``size``. ``root`` is that size's root when the caller holds
        it already; otherwise it is computed from the stored tree."""
        latest = self._latest_checkpoint(conn)
        if latest is not None and latest.size >= size:
            return latest
        if root is None:
            root = self._resolve(conn, merkle.root_plan(size))[0]
        cp = Checkpoint(signer.origin, size, root)
        note = sign_checkpoint(cp, signer.key_name, signer.key)  # refuses a malformed origin
        if latest is not None and latest.origin != signer.origin:
            raise LedgerError(
                f"this ledger's checkpoints are signed under origin {latest.origin!r}; refusing"
                f" to sign one under {signer.origin!r} (a ledger keeps one origin for life)"
            )
        conn.execute(
            sa.insert(t.checkpoints).values(size=size, root_hash=root, note=note, created_at=now)
        )
        return StoredCheckpoint(cp, note, now)

    def _cover(
        self, conn: Connection, signer: CheckpointSigner | None, now: datetime
    ) -> None:
        """Inside a hub event's write transaction: make a checkpoint cover the new size."""
        if signer is not None:
            self._checkpoint_locked(conn, signer, self._size(conn), None, now)

    @staticmethod
    def _latest_checkpoint(conn: Connection) -> StoredCheckpoint | None:
        c = t.checkpoints
        row = conn.execute(sa.select(c).order_by(c.c.size.desc()).limit(1)).first()
        return None if row is None else _checkpoint(row)

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        """See :meth:`LedgerStore.latest_checkpoint`."""
        c = t.checkpoints
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(c).order_by(c.c.size.desc()).limit(1)).first()
        return None if row is None else _checkpoint(row)

    def checkpoint_at_least(self, size: int) -> StoredCheckpoint | None:
        """See :meth:`LedgerStore.checkpoint_at_least`."""
        if size > MAX_INT:
            return None
        c = t.checkpoints
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(c).where(c.c.size >= size).order_by(c.c.size).limit(1)
            ).first()
        return None if row is None else _checkpoint(row)

    def checkpoint(self, size: int) -> StoredCheckpoint:
        """See :meth:`LedgerStore.checkpoint`."""
        if not 0 <= size <= MAX_INT:
            raise NotFoundError(f"no checkpoint was signed at tree size {size}")
        c = t.checkpoints
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(c).where(c.c.size == size)).first()
        if row is None:
            raise NotFoundError(f"no checkpoint was signed at tree size {size}")
        return _checkpoint(row)


def _page_end(sizes: Sequence[Any], budget: int, end: int) -> int:
    """The index a page stops before: envelopes up to ``budget`` bytes, at least one entry.

    ``sizes`` are ``(idx, envelope length)`` rows in index order from the page's start.
    """
    total = 0
    for n, (idx, length) in enumerate(sizes):
        total += int(length)
        if total > budget and n > 0:
            return int(idx)
    return end


def _start_hint(exc: StorageUnavailableError, engine: Engine) -> str:
    """What an operator should do when the database fails the start-up checks."""
    if isinstance(exc, StorageFullError):
        return "free space for the database (or raise its quota), then start the hub again"
    if db.is_sqlite(engine):
        return "make the database file, its -wal/-shm files and its directory writable by the hub"
    return ("check the host, port and database in the 'database' URL, that PostgreSQL runs"
            " there, and that it is a writable primary (not a standby or read-only database)")


def _claimed_chain(envelope: bytes) -> tuple[int, str] | None:
    """The (seq, prev) an envelope's payload claims, *unverified*; None if it has none."""
    try:
        payload = json.loads(dsse.Envelope.from_json(envelope).payload)
    except (WardenError, ValueError, RecursionError):
        return None
    if not isinstance(payload, dict):
        return None
    seq, prev = payload.get("seq"), payload.get("prev")
    if type(seq) is not int or not 1 <= seq <= MAX_INT or not isinstance(prev, str):
        return None
    return seq, prev


def _check_under_keys_from(
    node_id: str, history: Sequence[Any], stored_idx: int, current: PublicKey, envelope: bytes,
    position: int,
) -> list[Checked]:
    """Check ``envelope`` under any key the node held from ledger index ``stored_idx`` on.

    ``history`` is the node's ``node_keys`` rows in order; key j was current for the ledger
    indexes from its ``ledger_idx`` up to the next key's. The first key that verifies wins;
    if none does, the error under the key active at ``stored_idx`` is raised.
    """
    candidates: list[PublicKey] = []
    for j, row in enumerate(history):
        until = history[j + 1].ledger_idx if j + 1 < len(history) else None
        if until is None or until > stored_idx:
            candidates.append(PublicKey(bytes(row.public_key)))
    if current not in candidates:
        candidates.append(current)
    first: SignatureError | None = None
    for key in candidates:
        try:
            return check_records(node_id, key, [envelope], offset=position)
        except SignatureError as exc:
            first = first or exc
    assert first is not None
    raise first


def _node(row: Any) -> NodeInfo:
    return NodeInfo(
        row.node_id, KeyId(row.key_id), PublicKey(bytes(row.public_key)), row.enrolled_at,
        row.status,
    )


def _check_hex(value: str, what: str) -> None:
    if not isinstance(value, str) or len(value) != 64 or value.strip("0123456789abcdef"):
        raise FormatError(f"{what} must be 64 lowercase hex characters")
