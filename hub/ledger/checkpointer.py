"""Periodic signed checkpoints of the ledger.

Invariants:

* A checkpoint is signed only by :meth:`LedgerStore.sign_checkpoint`, under the database
  write lock: its size is the committed size at that moment and its root is computed from the
  stored tree, and sizes only grow. So however many hub processes run a checkpointer, no two
  checkpoints are inconsistent and no size gets two roots (``checkpoints.size`` is the key).
* At most one checkpoint per ``interval`` from the background loop; :meth:`checkpoint_now`
  signs on demand (if the tree grew).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

from hub.ledger.store import LedgerStore, StoredCheckpoint
from trust.errors import StorageUnavailableError, UsageError
from trust.keys import SigningKey
from trust.timeutil import utcnow

__all__ = ["Checkpointer"]

_log = logging.getLogger("warden.hub.checkpointer")


class Checkpointer:
    """Signs checkpoints of ``store`` as ``origin`` with the hub key, every ``interval`` s."""

    def __init__(
        self,
        store: LedgerStore,
        origin: str,
        hub_signing_key: SigningKey,
        interval: float,
        *,
        key_name: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        if interval <= 0:
            raise UsageError(f"checkpoint interval must be positive, got {interval}")
        self.store = store
        self.origin = origin
        self.key_name = key_name or origin
        self.interval = interval
        self._key = hub_signing_key
        self._clock = clock
        self._now = now
        self._last = float("-inf")
        self._lock = threading.Lock()
        self._signed = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def checkpoint_now(self) -> StoredCheckpoint | None:
        """Sign the current size (unless already covered); ``None`` while the ledger is empty."""
        with self._lock:
            cp = self.store.sign_checkpoint(self.origin, self.key_name, self._key, now=self._now())
            self._last = self._clock()
        with self._signed:
            self._signed.notify_all()
        return cp

    def maybe_checkpoint(self) -> StoredCheckpoint | None:
        """Sign if ``interval`` has passed since the last signing by this checkpointer."""
        if self._clock() - self._last < self.interval:
            return None
        return self.checkpoint_now()

    def wait_covering(self, size: int, timeout: float) -> StoredCheckpoint | None:
        """The first checkpoint of at least ``size`` entries, waiting up to ``timeout`` s.

        Checkpoints signed by other hub processes count too (the database is polled).
        """
        deadline = time.monotonic() + timeout
        while True:
            cp = self.store.checkpoint_at_least(size)
            remaining = deadline - time.monotonic()
            if cp is not None or remaining <= 0:
                return cp
            with self._signed:
                self._signed.wait(min(remaining, 0.05))

    def start(self) -> None:
        """Run :meth:`maybe_checkpoint` in a background thread until :meth:`stop`."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="checkpointer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the background thread, signing a final checkpoint of what was appended."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        self.checkpoint_now()

    def _loop(self) -> None:
        while not self._stop.wait(min(self.interval, 0.25)):
            try:
                self.maybe_checkpoint()
            except StorageUnavailableError:
                pass  # hub.db logs each storage condition once; retry next interval
            except Exception:  # noqa: BLE001 - a transient DB error must not end checkpointing
                _log.exception("signing a checkpoint failed; retrying next interval")
