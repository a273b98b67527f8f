"""The policy watcher thread: holds ``WatchPolicies`` open and hands bundles to the daemon.

It never verifies or applies anything itself: every bundle it receives goes, as the exact
envelope bytes, into a queue the daemon's main loop drains (:class:`agent.policy_state.
PolicyState` verifies against the pinned root). So a lying or compromised hub can only make
the agent *look at* bytes, never act on them.

Invariants:

* While the stream is open, a publication reaches the queue as soon as the hub sends it (the
  main loop is woken through ``wake``): publish → applied is bounded by the hub's fan-out,
  not by a polling period.
* When the stream fails (hub down, network), the watcher polls ``Get`` with jittered
  exponential backoff, ``[initial, max]`` seconds, full jitter on the upper half (a fleet of
  agents restarted together does not reconnect in lockstep); the first successful poll
  reopens the stream. The backoff resets only after a *healthy* stream — one that delivered
  a bundle or stayed open for :data:`HEALTHY_STREAM_S` — so a hub that refuses Watch (its
  stream cap) but answers Get is not hammered at the initial delay.
* Each (re)connection asks for bundles newer than the version the daemon holds at that
  moment (``current_version``), so a reconnect does not resend what is applied.
* :meth:`stop` ends the thread promptly: it cancels the open stream and interrupts a backoff
  wait.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from trust.errors import NotFoundError, WardenError

__all__ = ["PolicyWatcher", "backoff_delays"]

_log = logging.getLogger("warden.agent.watch")

# A stream open this long (or one that delivered a bundle) was healthy: the backoff restarts.
HEALTHY_STREAM_S = 10.0


def backoff_delays(initial: float, maximum: float, rng: random.Random) -> Any:
    """Endless jittered delays: attempt *n* waits uniformly in ``[d/2, d]`` with
    ``d = min(maximum, initial · 2ⁿ)``."""
    delay = initial
    while True:
        yield rng.uniform(delay / 2, delay)
        delay = min(maximum, delay * 2)


class PolicyWatcher:
    """Runs the watch loop in a daemon thread (see the module docstring)."""

    def __init__(
        self,
        client: Any,
        name: str,
        current_version: Callable[[], int | None],
        inbox: queue.Queue[bytes],
        wake: threading.Event,
        *,
        backoff_initial_s: float,
        backoff_max_s: float,
        on_contact: Callable[[], None] = lambda: None,
        rng: random.Random | None = None,
    ) -> None:
        self._client = client
        self._name = name
        self._current_version = current_version
        self._inbox = inbox
        self._wake = wake
        self._initial = backoff_initial_s
        self._max = backoff_max_s
        self._on_contact = on_contact
        self._rng = rng or random.Random()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._stream: Any = None
        self._thread = threading.Thread(target=self._run, name="policy-watch", daemon=True)
        self.connected = threading.Event()

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """End the loop: cancel the stream, interrupt a wait, join the thread."""
        self._stop.set()
        with self._lock:
            if self._stream is not None:
                self._stream.cancel()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _deliver(self, envelope: bytes) -> None:
        self._inbox.put(envelope)
        self._wake.set()

    def _run(self) -> None:
        delays = backoff_delays(self._initial, self._max, self._rng)
        while not self._stop.is_set():
            opened = time.monotonic()
            delivered = False
            try:
                delivered = self._watch_once()
            except WardenError as exc:
                self.connected.clear()
                _log.warning("policy watch failed; polling with backoff",
                             extra={"fields": {"error": exc.message}})
            if self._stop.is_set():
                return
            if delivered or time.monotonic() - opened >= HEALTHY_STREAM_S:
                delays = backoff_delays(self._initial, self._max, self._rng)
            # Poll Get until it works; then reopen the stream.
            while not self._stop.wait(next(delays)):
                if self._poll():
                    break

    def _watch_once(self) -> bool:
        """Hold one stream until it ends; True when it delivered at least one bundle."""
        stream = self._client.watch_policies(self._name, after_version=self._current_version())
        with self._lock:
            if self._stop.is_set():
                stream.cancel()
                return False
            self._stream = stream
        delivered = False
        try:
            for record in stream:
                self.connected.set()
                self._on_contact()
                self._deliver(record.envelope)
                delivered = True
        finally:
            with self._lock:
                self._stream = None
            self.connected.clear()
        return delivered

    def _poll(self) -> bool:
        try:
            record = self._client.get_policy(self._name)
        except NotFoundError:
            self._on_contact()
            return True  # the hub answers; nothing of this name is published yet
        except WardenError as exc:
            _log.info("hub still unreachable", extra={"fields": {"error": exc.message}})
            return False
        self._on_contact()
        if record is not None:
            self._deliver(record.envelope)
        return True
