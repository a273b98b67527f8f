"""The agent's durable outbox: the node's own signed audit records, kept until proved included.

Every event the agent reports becomes an :class:`~trust.record.AuditRecord` signed by the node
key and chained by ``seq``/``prev`` (:mod:`trust.stream`). :meth:`Outbox.append` builds, signs
and **commits** the next record before it returns, so the caller touches the outside world
(promotes a model, applies a bundle) only once its record is on disk. The daemon then pushes
:meth:`Outbox.pending` to the hub, records each ack with :meth:`Outbox.acknowledge`, proves
inclusion under a verified checkpoint, calls :meth:`Outbox.mark_proved`, and :meth:`Outbox.prune`
drops what is proved.

Invariants:

* One SQLite file, WAL mode, ``synchronous=FULL`` (as the hub's database): a transaction that
  has returned from ``COMMIT`` survives kill -9 and power loss. Every write is one
  ``BEGIN IMMEDIATE`` transaction, so a crash leaves the state before or after it, never
  between (no gap, no duplicate, no half-acknowledged batch).
* The chain head (``seq``, digest of the last envelope, its time) lives in its own row,
  updated in the same transaction as the record it names, so it survives pruning every row.
  ``seq`` starts at 1; ``prev`` of record *n* is the digest of the exact envelope bytes of
  record *n − 1*, or :data:`~trust.stream.GENESIS_PREV` for the first.
* Acknowledgements move forward in ``seq`` order, one record at a time, with strictly
  increasing ledger indices: acknowledging a seq that was never written, or skipping an
  unacknowledged one, is refused; re-acknowledging with the same index is a no-op, with
  another index an error (the hub would be telling two stories).
* A row is deleted only once it is acknowledged **and** its inclusion was proved
  (:meth:`Outbox.mark_proved`); an unproved record is never pruned.
* One process owns an outbox: :meth:`Outbox.open` takes an exclusive, non-blocking ``flock``
  on ``<file>.lock`` beside the database and holds it until :meth:`Outbox.close`; a second
  opener (another agent on the same state dir) is refused with the holder's pid.
* Storage that cannot take a write raises a typed error and leaves the previous state intact:
  full (``SQLITE_FULL``, or the optional ``max_bytes`` cap, which keeps a reserve so a full
  outbox can still record acks and prune) is
  :class:`~trust.errors.StorageFullError`; read-only, unopenable, I/O errors, corruption are
  :class:`~trust.errors.StorageUnavailableError`.

Why the stdlib :mod:`sqlite3` and not SQLAlchemy Core like ``hub/db.py``: the outbox is one
small table on one local file with one writer (the lock guarantees it), never PostgreSQL and
never migrated by Alembic, so SQLAlchemy's engines, pools and dialects would buy nothing here
and would cost the idle daemon an import of tens of megabytes (issue 10 keeps it light). The
agent may not import ``hub`` anyway (``tests/test_layering.py``).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from trust.canonical import Sha256
from trust.errors import (
    ConfigError,
    FormatError,
    LedgerError,
    SequenceGapError,
    StorageFullError,
    StorageUnavailableError,
    WardenError,
)
from trust.keys import SigningKey
from trust.record import (
    AuditRecord,
    Decision,
    EventType,
    PolicyRef,
    Subject,
    build_record,
    sign_record,
)
from trust.stream import GENESIS_PREV, HUB_NODE_ID, NodeId, check_node_id, envelope_digest
from trust.timeutil import format_time, parse_time

__all__ = [
    "SCHEMA_VERSION",
    "ChainHead",
    "OutboxEntry",
    "OutboxStatus",
    "Outbox",
    "read_status",
]

SCHEMA_VERSION = 1
"""``PRAGMA user_version`` of an outbox this code writes; any other version is refused."""

_SCHEMA = (
    """
    CREATE TABLE records (
        seq INTEGER PRIMARY KEY CHECK (seq >= 1),
        digest TEXT NOT NULL CHECK (length(digest) = 64),
        envelope BLOB NOT NULL,
        ledger_index INTEGER CHECK (ledger_index IS NULL OR ledger_index >= 0),
        proved INTEGER NOT NULL DEFAULT 0 CHECK (proved IN (0, 1)),
        CHECK (proved = 0 OR ledger_index IS NOT NULL)
    ) STRICT
    """,
    """
    CREATE TABLE head (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        node_id TEXT NOT NULL,
        seq INTEGER NOT NULL CHECK (seq >= 0),
        digest TEXT NOT NULL CHECK (length(digest) = 64),
        time TEXT,
        acked_seq INTEGER NOT NULL CHECK (acked_seq >= 0 AND acked_seq <= seq),
        acked_index INTEGER
    ) STRICT
    """,
)

_MIN_RESERVE_PAGES = 4
"""Pages an append never takes from a capped outbox (see :meth:`Outbox.open`)."""
_FULL_HINT = "free disk space (or raise the outbox size limit); the agent retries the write"
_UNAVAILABLE_HINT = "check the agent's state directory: permissions, disk, mount"


@dataclass(frozen=True)
class ChainHead:
    """The last record written: ``seq`` 0 and :data:`GENESIS_PREV` before the first one.

    ``digest`` is what the next record names as ``prev``; ``time`` (``None`` before the first
    record) lets the daemon notice a clock that moved backwards.
    """

    seq: int
    digest: Sha256
    time: datetime | None


@dataclass(frozen=True)
class OutboxEntry:
    """One stored record: its exact envelope bytes and what the hub has said about it.

    ``ledger_index`` is ``None`` until acknowledged; ``proved`` only once acknowledged.
    """

    seq: int
    digest: Sha256
    envelope: bytes
    ledger_index: int | None
    proved: bool


@dataclass(frozen=True)
class OutboxStatus:
    """What ``warden agent status`` shows: the head, and how many records await the hub."""

    node_id: NodeId
    head: ChainHead
    acknowledged_seq: int
    depth: int
    unproved: int


class Outbox:
    """An open, locked outbox. Build with :meth:`open`; use as a context manager or
    :meth:`close` it. Safe to share between threads (one internal lock serialises calls)."""

    def __init__(
        self,
        *,
        path: Path,
        conn: sqlite3.Connection,
        lock_fd: int,
        node_id: NodeId,
        key: SigningKey,
    ) -> None:
        self.path = path
        self.node_id = node_id
        self._conn = conn
        self._lock_fd = lock_fd
        self._key = key
        self._append_pages: int | None = None
        self._mutex = threading.Lock()
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | Path,
        node_id: str,
        key: SigningKey,
        *,
        max_bytes: int | None = None,
    ) -> Outbox:
        """Open (creating on first use) the outbox at ``path`` for ``node_id``, signing with
        ``key``; take its exclusive lock.

        ``max_bytes`` caps the database size (``PRAGMA max_page_count``). Appends stop short
        of the cap (:class:`StorageFullError`) and leave an eighth of it in reserve, so that
        acknowledging, marking proved and pruning still succeed on a full outbox and free
        its space: otherwise a full outbox could never drain. Raises
        :class:`ConfigError` when the file belongs to another node id,
        :class:`StorageUnavailableError` when another process holds the lock or the file
        cannot be opened, and :class:`FormatError` for an unknown schema version.
        """
        nid = check_node_id(node_id)
        if nid == HUB_NODE_ID:
            raise ConfigError(f"node id {HUB_NODE_ID!r} is reserved for the hub")
        p = Path(path)
        lock_fd = _take_lock(p)
        try:
            conn = _connect(p)
            try:
                hard_pages = _configure(conn, p, max_bytes)
                outbox = cls(path=p, conn=conn, lock_fd=lock_fd, node_id=nid, key=key)
                if hard_pages is not None:
                    outbox._append_pages = hard_pages - max(_MIN_RESERVE_PAGES, hard_pages // 8)
                outbox._init_schema()
                outbox._check_integrity()
            except BaseException:
                conn.close()
                raise
        except BaseException:
            os.close(lock_fd)
            raise
        return outbox

    def close(self) -> None:
        """Close the database and release the lock (idempotent)."""
        with self._mutex:
            if self._closed:
                return
            self._closed = True
            try:
                self._conn.close()
            finally:
                os.close(self._lock_fd)  # closing the descriptor releases the flock

    def __enter__(self) -> Outbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------------

    def append(
        self,
        *,
        event: EventType | str,
        subject: Subject,
        now: datetime,
        policy: PolicyRef | None = None,
        decision: Decision | None = None,
        evidence: Mapping[str, Any] | None = None,
    ) -> AuditRecord:
        """Build, sign and durably commit the next record; return it, verified.

        When this returns the record is on disk (``synchronous=FULL``); when it raises
        (:class:`StorageFullError`, :class:`StorageUnavailableError`, :class:`FormatError` for
        a bad field) nothing was written and the head is unchanged.
        """
        with self._write() as conn:
            seq, prev, _time = _read_head(conn)
            payload = build_record(
                node_id=self.node_id,
                seq=seq + 1,
                prev=prev,
                time=now,
                event=event,
                subject=subject,
                policy=policy,
                decision=decision,
                evidence=evidence,
            )
            envelope = sign_record(payload, self._key)
            record = AuditRecord.from_envelope(envelope, self._key.public)
            conn.execute(
                "INSERT INTO records (seq, digest, envelope) VALUES (?, ?, ?)",
                (record.seq, record.digest, envelope),
            )
            conn.execute(
                "UPDATE head SET seq = ?, digest = ?, time = ? WHERE id = 1",
                (record.seq, record.digest, format_time(record.time)),
            )
            if self._append_pages is not None:
                self._check_room(conn)
        return record

    def acknowledge(self, seq: int, ledger_index: int) -> None:
        """Record that the hub appended record ``seq`` at ``ledger_index`` (see
        :meth:`acknowledge_many`)."""
        self.acknowledge_many([(seq, ledger_index)])

    def acknowledge_many(self, acks: Iterable[tuple[int, int]]) -> None:
        """Record a batch of hub acks ``(seq, ledger_index)``, in one transaction.

        Each seq must be the next unacknowledged one (or already acknowledged at the same
        index: a resend's ack is a no-op) and each index larger than the previous record's.
        Raises :class:`SequenceGapError` for a seq never written or acknowledged out of order
        (``expected`` is the next seq to acknowledge) and :class:`LedgerError` for an index
        that contradicts an earlier ack or goes backwards; nothing of the batch is kept then.
        """
        batch = [(_check_index(s, "seq", 1), _check_index(i, "ledger index", 0)) for s, i in acks]
        if not batch:
            return
        with self._write() as conn:
            head_seq, acked_seq, acked_index = conn.execute(
                "SELECT seq, acked_seq, acked_index FROM head WHERE id = 1"
            ).fetchone()
            for seq, index in batch:
                if seq <= acked_seq:
                    self._check_reack(conn, seq, index)
                    continue
                if seq > head_seq:
                    raise SequenceGapError(
                        f"outbox {self.path}: cannot acknowledge seq {seq}: only {head_seq} "
                        "records were ever written",
                        expected=acked_seq + 1,
                    )
                if seq != acked_seq + 1:
                    raise SequenceGapError(
                        f"outbox {self.path}: cannot acknowledge seq {seq} before seq "
                        f"{acked_seq + 1}",
                        expected=acked_seq + 1,
                    )
                if acked_index is not None and index <= acked_index:
                    raise LedgerError(
                        f"outbox {self.path}: hub acknowledged seq {seq} at ledger index "
                        f"{index}, not after seq {acked_seq}'s index {acked_index}",
                        hint="the hub reordered this node's records; stop pruning and report",
                    )
                conn.execute("UPDATE records SET ledger_index = ? WHERE seq = ?", (index, seq))
                acked_seq, acked_index = seq, index
            conn.execute(
                "UPDATE head SET acked_seq = ?, acked_index = ? WHERE id = 1",
                (acked_seq, acked_index),
            )

    def mark_proved(self, seq: int, *, ledger_index: int) -> None:
        """Record that inclusion of record ``seq`` at ``ledger_index`` was proved under a
        verified checkpoint, so :meth:`prune` may delete it.

        Idempotent (also for a record already pruned). Raises :class:`LedgerError` for a
        record not yet acknowledged, never written, or acknowledged at another index.
        """
        _check_index(seq, "seq", 1)
        _check_index(ledger_index, "ledger index", 0)
        with self._write() as conn:
            head_seq, acked_seq = conn.execute(
                "SELECT seq, acked_seq FROM head WHERE id = 1"
            ).fetchone()
            if seq > acked_seq:
                state = "was never written" if seq > head_seq else "is not acknowledged yet"
                raise LedgerError(f"outbox {self.path}: record seq {seq} {state}; cannot be "
                                  "marked proved")
            row = conn.execute(
                "SELECT ledger_index FROM records WHERE seq = ?", (seq,)
            ).fetchone()
            if row is None:
                return  # proved and pruned before
            if row[0] != ledger_index:
                raise LedgerError(
                    f"outbox {self.path}: record seq {seq} was acknowledged at ledger index "
                    f"{row[0]}, but proved at {ledger_index}",
                    hint="the hub contradicts itself; stop pruning and report",
                )
            conn.execute("UPDATE records SET proved = 1 WHERE seq = ?", (seq,))

    def prune(self) -> int:
        """Delete every record whose inclusion was proved; return how many were deleted."""
        with self._write() as conn:
            cur = conn.execute(
                "DELETE FROM records WHERE proved = 1 AND ledger_index IS NOT NULL"
            )
            return cur.rowcount

    # -- reading ---------------------------------------------------------------------------

    def head(self) -> ChainHead:
        """The last record written (``seq`` 0, :data:`GENESIS_PREV` when there is none)."""
        with self._read() as conn:
            seq, digest, time = _read_head(conn)
        return ChainHead(seq, digest, time)

    def depth(self) -> int:
        """How many records the hub has not acknowledged yet."""
        with self._read() as conn:
            head_seq, acked_seq = conn.execute(
                "SELECT seq, acked_seq FROM head WHERE id = 1"
            ).fetchone()
        return int(head_seq - acked_seq)

    def pending(self, limit: int = 100) -> tuple[OutboxEntry, ...]:
        """Up to ``limit`` unacknowledged records, lowest seq first: the next batch to push."""
        return self._entries("ledger_index IS NULL", limit)

    def unproved(self, limit: int = 100) -> tuple[OutboxEntry, ...]:
        """Up to ``limit`` acknowledged records whose inclusion is not proved yet, in seq
        order: what the daemon fetches inclusion proofs for."""
        return self._entries("ledger_index IS NOT NULL AND proved = 0", limit)

    def entries(self) -> Iterator[OutboxEntry]:
        """Every stored record in seq order (for inspection and tests)."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT seq, digest, envelope, ledger_index, proved FROM records ORDER BY seq"
            ).fetchall()
        return iter([_entry(r) for r in rows])

    def status(self) -> OutboxStatus:
        """Head, acknowledged seq, depth and unproved count, from one snapshot."""
        with self._read() as conn:
            return _status(conn)

    # -- internals -------------------------------------------------------------------------

    def _entries(self, where: str, limit: int) -> tuple[OutboxEntry, ...]:
        _check_index(limit, "limit", 1)
        with self._read() as conn:
            rows = conn.execute(
                "SELECT seq, digest, envelope, ledger_index, proved FROM records "
                f"WHERE {where} ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
        return tuple(_entry(r) for r in rows)

    def _check_room(self, conn: sqlite3.Connection) -> None:
        """Refuse (and so roll back) an append that ate into the reserve kept for draining."""
        used = (conn.execute("PRAGMA page_count").fetchone()[0]
                - conn.execute("PRAGMA freelist_count").fetchone()[0])
        if self._append_pages is not None and used > self._append_pages:
            raise StorageFullError(
                f"outbox {self.path} is full: its size limit is reached ({used} pages in use)",
                hint="the hub must acknowledge and prove records before more can be written",
            )

    def _check_reack(self, conn: sqlite3.Connection, seq: int, index: int) -> None:
        row = conn.execute("SELECT ledger_index FROM records WHERE seq = ?", (seq,)).fetchone()
        if row is not None and row[0] != index:
            raise LedgerError(
                f"outbox {self.path}: hub acknowledged seq {seq} at ledger index {index}, "
                f"but earlier at {row[0]}",
                hint="the hub contradicts itself; stop pruning and report",
            )

    def _init_schema(self) -> None:
        with self._write() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO head (id, node_id, seq, digest, time, acked_seq, acked_index)"
                    " VALUES (1, ?, 0, ?, NULL, 0, NULL)",
                    (self.node_id, GENESIS_PREV),
                )
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            elif version != SCHEMA_VERSION:
                raise FormatError(
                    f"outbox {self.path}: schema version {version}, this agent knows "
                    f"{SCHEMA_VERSION}",
                    hint="run the agent version that wrote it, or move the file aside",
                )

    def _check_integrity(self) -> None:
        """The head names the last stored row (when rows remain) and this node's id."""
        with self._read() as conn:
            node_id = conn.execute("SELECT node_id FROM head WHERE id = 1").fetchone()[0]
            if node_id != self.node_id:
                raise ConfigError(
                    f"outbox {self.path} belongs to node {node_id!r}, not {self.node_id!r}",
                    hint="each node keeps its own state directory",
                )
            seq, digest, _time = _read_head(conn)
            last = conn.execute(
                "SELECT seq, digest, envelope FROM records ORDER BY seq DESC LIMIT 1"
            ).fetchone()
        if last is not None and (
            last[0] != seq or last[1] != digest or envelope_digest(last[2]) != digest
        ):
            raise StorageUnavailableError(
                f"outbox {self.path}: head (seq {seq}) does not match the last stored record "
                f"(seq {last[0]})",
                hint="the file was altered outside the agent; restore it from a backup",
            )

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: committed on success, rolled back on any
        error, with SQLite errors turned into typed storage errors."""
        with self._mutex:
            self._require_open()
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                _rollback(conn)
                if isinstance(exc, sqlite3.Error):
                    raise _storage_error(exc, self.path) from exc
                raise

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._mutex:
            self._require_open()
            try:
                self._conn.execute("BEGIN")
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException as exc:
                _rollback(self._conn)
                if isinstance(exc, sqlite3.Error):
                    raise _storage_error(exc, self.path) from exc
                raise

    def _require_open(self) -> None:
        if self._closed:
            raise StorageUnavailableError(f"outbox {self.path} is closed")


def read_status(path: str | Path) -> OutboxStatus:
    """The status of the outbox at ``path`` without taking its lock (``warden agent status``
    beside a running daemon): a query-only connection that never writes."""
    p = Path(path)
    if not p.is_file():
        raise StorageUnavailableError(f"outbox {p}: no such file", hint=_UNAVAILABLE_HINT)
    conn = _connect(p)
    try:
        conn.execute("PRAGMA query_only = ON")
        conn.execute("BEGIN")
        if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            raise FormatError(f"outbox {p}: not an outbox of schema version {SCHEMA_VERSION}")
        return _status(conn)
    except sqlite3.Error as exc:
        raise _storage_error(exc, p) from exc
    finally:
        conn.close()


def _take_lock(path: Path) -> int:
    lock_path = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise StorageUnavailableError(
            f"outbox lock {lock_path}: cannot open ({exc.strerror or exc})",
            hint=_UNAVAILABLE_HINT,
        ) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise StorageUnavailableError(
            f"outbox {path} is in use by another agent (pid {holder}, lock {lock_path})",
            hint="a second agent may not share a state directory; stop the other one first",
        ) from exc
    except OSError as exc:
        os.close(fd)
        raise StorageUnavailableError(
            f"outbox lock {lock_path}: cannot lock ({exc.strerror or exc})",
            hint=_UNAVAILABLE_HINT,
        ) from exc
    with suppress(OSError):  # the holder's pid, for the refusal above (best effort, not the lock)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _connect(path: Path) -> sqlite3.Connection:
    try:
        # isolation_level=None: this module issues BEGIN/COMMIT itself (BEGIN IMMEDIATE for
        # writes); check_same_thread=False: Outbox serialises calls with its own mutex.
        return sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise _storage_error(exc, path) from exc


def _configure(conn: sqlite3.Connection, path: Path, max_bytes: int | None) -> int | None:
    """Set the connection's pragmas; the page cap from ``max_bytes`` (``None``: no cap)."""
    pages: int | None = None
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        conn.execute("PRAGMA synchronous = FULL")
        if max_bytes is not None:
            page_size = conn.execute("PRAGMA page_size").fetchone()[0]
            pages = max(_check_index(max_bytes, "max_bytes", 1) // page_size,
                        4 * _MIN_RESERVE_PAGES)
            conn.execute(f"PRAGMA max_page_count = {pages}")
    except sqlite3.Error as exc:
        raise _storage_error(exc, path) from exc
    if str(mode).lower() != "wal":
        raise StorageUnavailableError(
            f"outbox {path}: the file system does not support SQLite's WAL mode (got {mode})",
            hint="put the agent's state directory on a local disk",
        )
    return pages


def _read_head(conn: sqlite3.Connection) -> tuple[int, Sha256, datetime | None]:
    seq, digest, time = conn.execute(
        "SELECT seq, digest, time FROM head WHERE id = 1"
    ).fetchone()
    return int(seq), Sha256(digest), None if time is None else parse_time(time, what="head")


def _status(conn: sqlite3.Connection) -> OutboxStatus:
    node_id, acked_seq = conn.execute("SELECT node_id, acked_seq FROM head WHERE id = 1").fetchone()
    seq, digest, time = _read_head(conn)
    unproved = conn.execute(
        "SELECT count(*) FROM records WHERE ledger_index IS NOT NULL AND proved = 0"
    ).fetchone()[0]
    return OutboxStatus(NodeId(node_id), ChainHead(seq, digest, time), int(acked_seq),
                        seq - int(acked_seq), int(unproved))


def _entry(row: tuple[Any, ...]) -> OutboxEntry:
    seq, digest, envelope, index, proved = row
    return OutboxEntry(int(seq), Sha256(digest), bytes(envelope), index, bool(proved))


def _check_index(value: object, what: str, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise FormatError(f"{what} must be an integer ≥ {minimum}, got {value!r}")
    return value


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        # SQLite may have rolled back already (e.g. after SQLITE_FULL); nothing was kept.
        with suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def _storage_error(exc: sqlite3.Error, path: Path) -> WardenError:
    """A typed error for a storage condition; other SQLite errors are bugs and pass through."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    reason = str(exc) or type(exc).__name__
    if name == "SQLITE_FULL":
        return StorageFullError(f"outbox {path} is full: {reason}", hint=_FULL_HINT)
    if name.startswith(("SQLITE_READONLY", "SQLITE_IOERR", "SQLITE_CANTOPEN", "SQLITE_BUSY",
                        "SQLITE_LOCKED", "SQLITE_PERM")):
        return StorageUnavailableError(f"outbox {path} cannot be written: {reason}",
                                       hint=_UNAVAILABLE_HINT)
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return StorageUnavailableError(
            f"outbox {path} is not a readable outbox: {reason}",
            hint="the file is damaged or not an outbox; restore it from a backup",
        )
    raise exc
