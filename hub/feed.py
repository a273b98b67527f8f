"""Wakes Watch streams when a policy is published, in this process or another one.

One :class:`PolicyFeed` per hub process. A publication in this process calls :meth:`notify`
and every listener is called at once. Publications by *other* hub processes sharing the
database are caught by one poller thread that reads a cheap marker (the store's latest
publication sequence) every ``poll_ms`` and notifies when it moves — so the delay there is at
most one poll period, and the database sees one query per period per process, not one per
connected agent.

Streams never trust the feed for content: on wake-up they ask the store what is newer than
what they have sent, so a spurious wake-up costs one query. Listeners (:meth:`add_listener`)
are called on every notification, from whichever thread notified; the hub's asyncio side uses
one to move the wake-up onto its event loop (:mod:`hub.watch`, which keeps the generation
counter that makes a missed wake-up impossible), so parked Watch streams hold no thread. A
listener must not block.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

__all__ = ["PolicyFeed"]

log = logging.getLogger("warden.hub.feed")


class PolicyFeed:
    """Listeners to call on every publication, plus a database poller."""

    def __init__(self, marker: Callable[[], object], poll_ms: int) -> None:
        self._lock = threading.Lock()
        self._marker = marker
        self._poll_s = poll_ms / 1000
        self._closed = threading.Event()
        self._last_marker: object = None
        self._thread: threading.Thread | None = None
        self._listeners: list[Callable[[], None]] = []

    def start(self) -> None:
        """Start the database poller (idempotent)."""
        if self._thread is not None:
            return
        try:
            self._last_marker = self._marker()
        except Exception:  # noqa: BLE001 - a failing poll must not stop the hub starting
            log.exception("policy marker poll failed")
        self._thread = threading.Thread(target=self._poll, name="policy-feed", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._closed.wait(self._poll_s):
            try:
                marker = self._marker()
            except Exception:  # noqa: BLE001 - transient DB errors: retry next period
                log.exception("policy marker poll failed")
                continue
            if marker != self._last_marker:
                self._last_marker = marker
                self.notify()

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after every notification (from the notifying thread)."""
        with self._lock:
            self._listeners = [*self._listeners, listener]

    def remove_listener(self, listener: Callable[[], None]) -> None:
        """Stop calling ``listener`` (no error if it was not added)."""
        with self._lock:
            self._listeners = [fn for fn in self._listeners if fn != listener]  # bound methods: ==

    def notify(self) -> None:
        """Something may have been published: call every listener."""
        with self._lock:
            listeners = self._listeners
        # Outside the lock: a listener may take its own locks (the event loop's, for one).
        for listener in listeners:
            try:
                listener()
            except Exception:  # noqa: BLE001 - one bad listener must not starve the others
                log.exception("policy feed listener failed")

    def wake_all(self) -> None:
        """Wake every stream (used on shutdown so streams see the stop flag)."""
        self.notify()

    def close(self) -> None:
        """Stop the poller and wake everyone."""
        self._closed.set()
        self.wake_all()
        if self._thread is not None:
            self._thread.join(timeout=2)
