"""Checking a batch of audit records before the write lock, in this process or in a pool.

The expensive part of an append is per-record and independent: parse the DSSE envelope,
verify its ed25519 signature, parse and check the payload (:meth:`AuditRecord.from_envelope`).
``cryptography`` holds the GIL while it verifies, so threads cannot spread that work over
cores; :class:`RecordVerifier` can hand it to worker processes instead, splitting a batch
into one chunk per worker. Only ``(seq, prev, digest, leaf hash)`` comes back per record.

Invariants:

* :func:`check_records` is the one definition of "this batch may be appended by this node"
  as far as each record alone can tell: every envelope verifies under the given key and its
  payload names the calling node. In a worker or in-process it runs the same code and raises
  the same typed error (:class:`FormatError`, :class:`SignatureError`,
  :class:`AccessDeniedError`) naming the batch position.
* Workers hold no database connection and no lock; they see only public keys and envelope
  bytes. The store re-checks, under the write lock, that the key used is still the node's
  current key, and applies every ordering rule (seq, prev, duplicates, equivocation) there.
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

from trust.canonical import Sha256
from trust.errors import AccessDeniedError, ConfigError, WardenError
from trust.keys import PublicKey
from trust.merkle import leaf_hash
from trust.record import AuditRecord

__all__ = ["Checked", "RecordVerifier", "check_records"]

log = logging.getLogger("warden.hub.verify")
_PARENT_POLL_S = 0.5
_START_TIMEOUT_S = 120.0
"""How long a new pool may take until every worker has imported this module and answered."""


class Checked(NamedTuple):
    """What the write path needs of one verified record (a tuple: cheap to pickle)."""

    seq: int
    prev: Sha256
    digest: Sha256
    leaf_hash: bytes


def check_records(
    node_id: str, key: PublicKey, envelopes: Sequence[bytes], *, offset: int = 0
) -> list[Checked]:
    """Verify and parse each envelope as a record of ``node_id`` signed by ``key``.

    ``offset`` is the batch position of ``envelopes[0]`` (for error messages).
    """
    out: list[Checked] = []
    for i, env in enumerate(envelopes, start=offset):
        record = AuditRecord.from_envelope(bytes(env), key, what=f"record {i} of the batch")
        if record.node_id != node_id:
            raise AccessDeniedError(
                f"record {i} of the batch names node {record.node_id!r}, but {node_id!r} sent it"
            )
        data = record.envelope
        out.append(
            Checked(record.seq, record.prev, Sha256(hashlib.sha256(data).hexdigest()),
                    leaf_hash(data))
        )
    return out


@dataclass(frozen=True)
class _Refused:
    """A :class:`WardenError` carried back from a worker (its class, message and hint)."""

    kind: type[WardenError]
    message: str
    hint: str | None

    def raise_(self) -> None:
        raise self.kind(self.message, hint=self.hint)


def _worker_check(
    node_id: str, key_raw: bytes, envelopes: list[bytes], offset: int
) -> list[tuple[int, str, str, bytes]] | _Refused:
    # Runs in a worker. Plain tuples travel back (a named tuple would be rebuilt by pickle
    # through Python code, per record); typed errors travel as values (pickling drops hints).
    try:
        checked = check_records(node_id, PublicKey(key_raw), envelopes, offset=offset)
        return [(c.seq, c.prev, c.digest, c.leaf_hash) for c in checked]
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
    """Runs :func:`check_records` in-process (``workers=0``) or in ``workers`` processes.

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

    def check(self, node_id: str, key: PublicKey, envelopes: Sequence[bytes]) -> list[Checked]:
        """:func:`check_records` over the batch, split across the workers."""
        pool = self._pool
        if pool is None or len(envelopes) < 2 * self._min_chunk:
            return check_records(node_id, key, envelopes)
        items = list(envelopes)
        chunks = min(self.workers, len(items) // self._min_chunk)
        step = -(-len(items) // chunks)
        try:
            futures: list[Future[list[tuple[int, str, str, bytes]] | _Refused]] = [
                pool.submit(_worker_check, node_id, key.raw, items[i : i + step], i)
                for i in range(0, len(items), step)
            ]
            results = [f.result() for f in futures]
        except BrokenProcessPool:
            # A worker died (killed, out of memory): replace the pool, check this batch here.
            log.error("a record verifier process died; restarting the pool")
            self._restart(pool)
            return check_records(node_id, key, items)
        out: list[Checked] = []
        for r in results:  # the first refusal in batch order wins
            if isinstance(r, _Refused):
                r.raise_()
            else:
                out.extend(map(Checked._make, r))
        return out

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
