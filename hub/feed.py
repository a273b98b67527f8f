"""Wakes Watch streams when a policy is published, in this process or another one.

One :class:`PolicyFeed` per hub process. A publication in this process calls :meth:`notify`
and every waiting stream wakes at once. Publications by *other* hub processes sharing the
database are caught by one poller thread that reads a cheap marker (the store's latest
publication sequence) every ``poll_ms`` and notifies when it moves — so the delay there is at
most one poll period, and the database sees one query per period per process, not one per
connected agent.

Streams never trust the feed for content: on wake-up they ask the store what is newer than
what they have sent. A spurious wake-up costs one query; a missed one is impossible because
the generation counter is checked under the condition's lock.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

__all__ = ["PolicyFeed"]

log = logging.getLogger("warden.hub.feed")


class PolicyFeed:
    """A generation counter with a condition variable, plus a database poller."""

    def __init__(self, marker: Callable[[], object], poll_ms: int) -> None:
        self._cond = threading.Condition()
        self._generation = 0
        self._marker = marker
        self._poll_s = poll_ms / 1000
        self._closed = threading.Event()
        self._last_marker: object = None
        self._thread: threading.Thread | None = None

    @property
    def generation(self) -> int:
        """Increases on every notification."""
        with self._cond:
            return self._generation

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

    def notify(self) -> None:
        """Something may have been published: wake every waiting stream."""
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def wake_all(self) -> None:
        """Wake every stream (used on shutdown so streams see the stop flag)."""
        self.notify()

    def wait(self, seen_generation: int, timeout: float) -> int:
        """Block until the generation moves past ``seen_generation`` or ``timeout`` passes."""
        with self._cond:
            self._cond.wait_for(lambda: self._generation != seen_generation, timeout)
            return self._generation

    def close(self) -> None:
        """Stop the poller and wake everyone."""
        self._closed.set()
        self.wake_all()
        if self._thread is not None:
            self._thread.join(timeout=2)
