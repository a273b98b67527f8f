"""Parsing and verifying a batch of records once, before the write lock, here or in a pool.

The expensive part of an append is per-record and independent: parse the DSSE envelope,
verify its ed25519 signature, parse and check the payload (:meth:`AuditRecord.from_envelope`).
``cryptography`` holds the GIL while it verifies, so threads cannot spread that work over
cores; :class:`RecordVerifier` can hand it to worker processes instead, splitting a batch
into one chunk per worker. Only ``(seq, prev, digest, leaf hash, which key)`` comes back per
record.

The append path goes through here exactly once: :meth:`RecordVerifier.check_batch` turns the
exact envelope bytes into a :class:`CheckedBatch` of :class:`CheckedRecord` values, and the
store applies its history rules (:func:`hub.ledger.history.plan_append`) to those only.

Invariants:

* :func:`check_batch` is the one definition of "each record of this batch, taken alone, is the
  node's": every envelope verifies under a key of the node's :class:`KeyRing` (the current key
  tried first; older keys only for the records it did not sign) and its payload names the
  calling node. A record no key of the ring verifies raises the error it gets under the
  current key. In a worker or in-process it runs the same code and raises the same typed error
  (:class:`FormatError`, :class:`SignatureError`, :class:`AccessDeniedError`) naming the batch
  position. Whether a key the node held may sign *that* record (its current key for a new
  record, a key held at the stored seq for an equivocation) is a history rule, left to the store.
* A :class:`CheckedRecord` holds the exact bytes that were verified (never a re-encoding) and
  their digest and RFC 9162 leaf hash.
* Workers hold no database connection and no lock; they see only public keys and envelope
  bytes. The store re-checks, under the write lock, that the ring's current key is still the
  node's current key, and applies every ordering rule (seq, prev, duplicates, equivocation) there.
* Workers are started with ``spawn`` (never ``fork``: the hub's gRPC threads must not be
  forked), all at once when the verifier is built, and ignore SIGINT, so a Ctrl-C drains the
  hub instead of killing its verifiers; a worker exits by itself within a second of its
  hub's death (even by SIGKILL). A worker that dies breaks only the pool: it is replaced and
  the batch in flight is checked in-process (if no replacement starts, checking stays
  in-process, logged once).
* Building a verifier with workers waits until every worker answered: a pool that cannot
  start raises :class:`ConfigError` saying why, so a hub never serves without it (and never
  exits silently on the :class:`BrokenPipeError` a dead child leaves behind).
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import multiprocessing.spawn
import os
import signal
import sys
import threading
import time
import types
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NamedTuple

from hub.ledger.checked import CheckedBatch, CheckedRecord, HeldKey, KeyRing
from trust.canonical import Sha256
from trust.errors import AccessDeniedError, ConfigError, SignatureError, WardenError
from trust.keys import KeyId, PublicKey
from trust.merkle import leaf_hash
from trust.record import HUB_NODE_ID, AuditRecord, HubEvent
from trust.stream import NodeId

__all__ = [
    "Checked",
    "CheckedBatch",
    "CheckedRecord",
    "HeldKey",
    "KeyRing",
    "RecordVerifier",
    "check_batch",
    "check_hub_event",
    "check_records",
]

log = logging.getLogger("warden.hub.verify")
_PARENT_POLL_S = 0.5
_START_TIMEOUT_S = 120.0
"""How long a new pool may take until every worker has imported this module and answered."""

_Row = tuple[int, str, str, bytes, int]
"""One checked record as it travels back from a worker: seq, prev, digest, leaf hash, and the
position in the key list of the key that verified it (plain tuples: cheap to pickle)."""


class Checked(NamedTuple):
    """One record checked under a single key: what :func:`check_records` returns."""

    seq: int
    prev: Sha256
    digest: Sha256
    leaf_hash: bytes


def _check_one(node_id: NodeId, keys: Sequence[PublicKey], envelope: bytes, pos: int) -> _Row:
    """Parse and verify one envelope under the first of ``keys`` that signed it.

    ``keys[0]`` is tried first and its error is the one raised when no key verifies; a later
    key is tried only after a :class:`SignatureError` (a malformed envelope is malformed under
    every key, and the signature is checked before the payload is read).
    """
    what = f"record {pos} of the batch"
    found: tuple[AuditRecord, int] | None = None
    first: SignatureError | None = None
    for position, key in enumerate(keys):
        try:
            found = AuditRecord.from_envelope(envelope, key, what=what), position
            break
        except SignatureError as exc:
            first = first or exc
    if found is None:
        raise first or SignatureError(f"{what}: the node holds no key to verify it under")
    record, k = found
    if record.node_id != node_id:
        raise AccessDeniedError(
            f"record {pos} of the batch names node {record.node_id!r}, but {node_id!r} sent it"
        )
    data = record.envelope
    return record.seq, record.prev, hashlib.sha256(data).hexdigest(), leaf_hash(data), k


def _check_rows(
    node_id: NodeId, keys: Sequence[PublicKey], envelopes: Sequence[bytes], offset: int
) -> list[_Row]:
    return [_check_one(node_id, keys, bytes(env), i)
            for i, env in enumerate(envelopes, start=offset)]


def _batch(ring: KeyRing, envelopes: Sequence[bytes], rows: Sequence[_Row]) -> CheckedBatch:
    """The checked batch of ``rows`` (in batch order), keeping the caller's exact bytes."""
    key_ids: list[KeyId] = [k.key_id for k in ring.keys]
    node_id = ring.node_id
    return CheckedBatch(ring, tuple(
        CheckedRecord(node_id, seq, Sha256(prev), bytes(env), Sha256(digest), leaf,
                      key_ids[k])
        for (seq, prev, digest, leaf, k), env in zip(rows, envelopes, strict=True)
    ))


def check_records(
    node_id: NodeId, key: PublicKey, envelopes: Sequence[bytes], *, offset: int = 0
) -> list[Checked]:
    """Verify and parse each envelope as a record of ``node_id`` signed by ``key``.

    ``offset`` is the batch position of ``envelopes[0]`` (for error messages).
    """
    return [Checked(seq, Sha256(prev), Sha256(digest), leaf)
            for seq, prev, digest, leaf, _ in _check_rows(node_id, [key], envelopes, offset)]


def check_batch(ring: KeyRing, envelopes: Sequence[bytes]) -> CheckedBatch:
    """Verify and parse each envelope as a record of ``ring.node_id`` under a key of ``ring``
    (in this process; :meth:`RecordVerifier.check_batch` spreads it over workers)."""
    return _batch(ring, envelopes, _check_rows(ring.node_id, ring.keys, envelopes, 0))


def check_hub_event(envelope: bytes, hub_key: PublicKey) -> CheckedRecord:
    """Verify a pre-built hub event under the hub key (:meth:`HubEvent.from_envelope`)."""
    event = HubEvent.from_envelope(bytes(envelope), hub_key)
    return CheckedRecord.signed_here(HUB_NODE_ID, event.seq, event.prev, event.envelope,
                                     hub_key.key_id)


@dataclass(frozen=True)
class _Refused:
    """A :class:`WardenError` carried back from a worker (its class, message and hint)."""

    kind: type[WardenError]
    message: str
    hint: str | None

    def raise_(self) -> None:
        raise self.kind(self.message, hint=self.hint)


def _worker_check(
    node_id: NodeId, key_raws: list[bytes], envelopes: list[bytes], offset: int
) -> list[_Row] | _Refused:
    # Runs in a worker. Plain tuples travel back (a named tuple would be rebuilt by pickle
    # through Python code, per record); typed errors travel as values (pickling drops hints).
    try:
        return _check_rows(node_id, [PublicKey(k) for k in key_raws], envelopes, offset)
    except WardenError as exc:
        return _Refused(type(exc), exc.message, exc.hint)


def _worker_init(hub_pid: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A worker's call queue never reports EOF (every worker holds its write end too), so a
    # worker would outlive a hub killed with SIGKILL. It watches its parent instead (by the
    # pid the hub passed: the hub may have died before this worker finished starting).

    def watch() -> None:
        while os.getppid() == hub_pid:
            time.sleep(_PARENT_POLL_S)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _ready() -> bool:
    return True


def _interpreter() -> str:
    """The interpreter ``spawn`` starts workers with."""
    return os.fsdecode(multiprocessing.spawn.get_executable() or sys.executable)


def _start_failure(workers: int, exc: BaseException) -> ConfigError:
    """Why ``workers`` verifier processes did not start, as the operator needs to hear it."""
    exe = _interpreter()
    if not os.access(exe, os.X_OK):
        why = f"the interpreter {exe} does not exist or is not executable"
    elif isinstance(exc, TimeoutError):
        why = f"they did not answer within {_START_TIMEOUT_S:.0f} s"
    elif isinstance(exc, BrokenProcessPool | BrokenPipeError) or (
        isinstance(exc, OSError) and exc.errno is None
    ):
        why = (f"they exited during start-up ({exe}; out of memory, a process limit, or an"
               " interpreter that cannot import Warden)")
    else:
        why = f"{exc.strerror or exc}" if isinstance(exc, OSError) else str(exc)
    return ConfigError(
        f"cannot start {workers} record-verifier process{'es' if workers != 1 else ''}: {why}",
        hint="fix the cause, or set 'verify_workers: 0' in hub.yaml to verify records in the"
             " RPC threads (slower)",
    )


@contextmanager
def _without_main() -> Iterator[None]:
    """Launch workers without re-running the parent's ``__main__`` in them.

    ``spawn`` normally imports the parent's main module in every child. The workers need only
    this module, and the parent's main may be anything (the CLI, pytest, a script read from
    stdin that cannot be re-imported, which would kill every worker at start).
    """
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


class RecordVerifier:
    """Runs :func:`check_batch` in-process (``workers=0``) or in ``workers`` processes.

    Thread-safe: concurrent appends share the pool and their chunks interleave.
    """

    def __init__(self, workers: int = 0, *, min_chunk: int = 16) -> None:
        if workers < 0:
            raise ValueError("workers must be ≥ 0")
        self.workers = workers
        self._min_chunk = max(1, min_chunk)
        self._lock = threading.Lock()
        self._closed = False
        self._pool = self._start() if workers else None

    def _start(self) -> ProcessPoolExecutor:
        """A pool whose every worker is running; :class:`ConfigError` if they cannot start."""
        exe = _interpreter()
        if not os.access(exe, os.X_OK):  # before anything is spawned (the resource tracker too)
            raise _start_failure(self.workers, FileNotFoundError(2, "not found", exe))
        pool: ProcessPoolExecutor | None = None
        # Start every worker now so the first append does not wait, and wait until each has
        # answered: with all of them running, later submissions never launch another process,
        # and a pool that cannot start fails here, saying why, not on some later append.
        try:
            pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_init,
                initargs=(os.getpid(),),
            )
            with _without_main():
                ready = [pool.submit(_ready) for _ in range(self.workers)]
            for f in ready:
                f.result(timeout=_START_TIMEOUT_S)
        except (OSError, BrokenProcessPool, TimeoutError) as exc:
            # OSError covers the BrokenPipeError of a child (or the resource tracker, also
            # spawned) that died before reading its start-up data.
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
            raise _start_failure(self.workers, exc) from exc
        return pool

    def check(self, node_id: NodeId, key: PublicKey, envelopes: Sequence[bytes]) -> list[Checked]:
        """:func:`check_records` over the batch, split across the workers."""
        batch = self.check_batch(KeyRing(node_id, key), envelopes)
        return [Checked(r.seq, r.prev, r.digest, r.leaf_hash) for r in batch.records]

    def check_batch(self, ring: KeyRing, envelopes: Sequence[bytes]) -> CheckedBatch:
        """:func:`check_batch` over the batch, split across the workers."""
        pool = self._pool
        if pool is None or len(envelopes) < 2 * self._min_chunk:
            return check_batch(ring, envelopes)
        items = list(envelopes)
        keys = ring.keys
        key_raws = [k.raw for k in keys]
        chunks = min(self.workers, len(items) // self._min_chunk)
        step = -(-len(items) // chunks)
        try:
            futures: list[Future[list[_Row] | _Refused]] = [
                pool.submit(_worker_check, ring.node_id, key_raws, items[i : i + step], i)
                for i in range(0, len(items), step)
            ]
            results = [f.result() for f in futures]
        except BrokenProcessPool:
            # A worker died (killed, out of memory): replace the pool, check this batch here.
            log.error("a record verifier process died; restarting the pool")
            self._restart(pool)
            return check_batch(ring, items)
        rows: list[_Row] = []
        for r in results:  # the first refusal in batch order wins
            if isinstance(r, _Refused):
                r.raise_()
            else:
                rows.extend(r)
        return _batch(ring, items, rows)

    def _restart(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is broken and not self._closed:
                broken.shutdown(wait=False, cancel_futures=True)
                self._pool = None  # check in-process until (unless) a new pool runs
                try:
                    self._pool = self._start()
                except ConfigError as exc:
                    # Appends still verify (in the RPC threads, the same checks): slower,
                    # never weaker. Logged once: no pool, no further restarts.
                    log.error("record verifier processes cannot be restarted (%s); verifying"
                              " in-process from now on", exc.message)

    def close(self) -> None:
        """Stop the workers (waits for chunks in flight)."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
