"""Watch streams parked on the event loop: caps, wake-ups, one store query per publication.

A Watch stream is an async generator on the hub's event loop (:mod:`hub.rpc`); while it waits
for the next publication it holds no thread, so 100 agents each holding a stream — or
thousands — leave the worker pool to unary calls.

Invariants:

* **Caps.** At most ``max_watch_streams`` streams are open on this hub process and at most
  ``max_watch_streams_per_caller`` per caller (a node, or an operator by name). One more is
  refused with ``RESOURCE_EXHAUSTED`` whose message names the cap and its value. A slot is
  taken before the first query and released when the stream ends for any reason (client
  cancel, hub stop, error).
* **No missed publication.** The :class:`~hub.feed.PolicyFeed` (same-process publications,
  and its poller for other processes) notifies a listener that moves the wake-up onto the
  loop with ``call_soon_threadsafe``. There a generation counter is bumped and the current
  :class:`asyncio.Event` set. A stream reads the generation *before* it asks the store what
  is newer, and parks only while the generation is unchanged — so a publication during the
  query wakes it again at once. All of this happens on the loop thread, so no lock is needed.
* **One query per publication, not per stream.** Streams that wake for the same generation
  share one store query (run in the worker pool) and one serialization of each update; each
  stream then filters by what it has already sent. A stream never trusts the wake-up for
  content.
* **Stop.** :meth:`WatchStreams.close` ends every stream normally (status OK), so a drain
  does not wait ``drain_s`` for streams that would never finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncGenerator, Callable, Iterator
from concurrent.futures import Executor

from hub.feed import PolicyFeed
from hub.ledger.store import LedgerStore
from hub.ledger.types import StoredPolicy
from hub.rpc import ResourceLimitError

__all__ = ["Update", "WatchStreams", "latest_policies"]

log = logging.getLogger("warden.hub.watch")

Update = tuple[StoredPolicy, bytes]
"""A policy record and its serialized wire message (made once, sent to every stream)."""


def latest_policies(store: LedgerStore, name: str | None) -> list[StoredPolicy]:
    """The latest record of ``name`` (or of every name, in publication order)."""
    if name is not None:
        latest = store.latest_policy(name)
        return [] if latest is None else [latest]
    best: dict[str, StoredPolicy] = {}
    for rec in store.policies():
        if rec.name not in best or rec.version > best[rec.name].version:
            best[rec.name] = rec
    return sorted(best.values(), key=lambda r: r.index)


class WatchStreams:
    """The open Watch streams of one hub process. Use from the event loop thread only."""

    def __init__(
        self,
        store: LedgerStore,
        feed: PolicyFeed,
        executor: Executor,
        encode: Callable[[StoredPolicy], bytes],
        *,
        max_streams: int,
        max_per_caller: int,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._store = store
        self._feed = feed
        self._executor = executor
        self._encode = encode
        self._max = max_streams
        self._max_per_caller = max_per_caller
        self._loop = loop
        self._open: Counter[str] = Counter()
        self._generation = 0
        self._changed = asyncio.Event()
        self._closed = False
        # name -> (generation, the shared query for it); cleared on every generation.
        self._snapshots: dict[str | None, tuple[int, asyncio.Future[list[Update]]]] = {}
        feed.add_listener(self._notify_threadsafe)

    # -- caps ---------------------------------------------------------------------------------

    def open_streams(self, caller: str | None = None) -> int:
        """How many streams are open (of ``caller``, e.g. ``"node:emea-1"``, if given)."""
        return self._open[caller] if caller is not None else self._open.total()

    @contextlib.contextmanager
    def _slot(self, caller: str) -> Iterator[None]:
        if self._open.total() >= self._max:
            raise ResourceLimitError(
                f"this hub already serves {self._open.total()} Watch streams "
                f"(max_watch_streams {self._max})",
                hint="retry later, or raise max_watch_streams in hub.yaml")
        if self._open[caller] >= self._max_per_caller:
            raise ResourceLimitError(
                f"{caller} already holds {self._open[caller]} open Watch streams "
                f"(max_watch_streams_per_caller {self._max_per_caller})",
                hint="close a stream first: one stream per agent is enough")
        self._open[caller] += 1
        try:
            yield
        finally:
            self._open[caller] -= 1
            if self._open[caller] <= 0:
                del self._open[caller]

    # -- wake-ups -----------------------------------------------------------------------------

    def _notify_threadsafe(self) -> None:
        # Called by the feed from any thread; the loop may already be gone at shutdown.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._bump)

    def _bump(self) -> None:
        self._generation += 1
        self._snapshots.clear()
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _changed_since(self, seen: int) -> int:
        while self._generation == seen and not self._closed:
            await self._changed.wait()
        return self._generation

    async def _latest(self, name: str | None) -> list[Update]:
        generation = self._generation
        cached = self._snapshots.get(name)
        if cached is None or cached[0] != generation:
            future = self._loop.run_in_executor(self._executor, self._query, name)
            # A failed query is not kept: the next stream to ask tries again.
            future.add_done_callback(lambda f: self._forget(name, f))
            cached = (generation, future)
            self._snapshots[name] = cached
        # Shielded: one stream's cancellation must not cancel the query others await.
        return await asyncio.shield(cached[1])

    def _forget(self, name: str | None, future: asyncio.Future[list[Update]]) -> None:
        if future.cancelled() or future.exception() is not None:
            cached = self._snapshots.get(name)
            if cached is not None and cached[1] is future:
                del self._snapshots[name]

    def _query(self, name: str | None) -> list[Update]:  # in a worker thread
        return [(rec, self._encode(rec)) for rec in latest_policies(self._store, name)]

    # -- streams ------------------------------------------------------------------------------

    async def updates(
        self, caller: str, name: str | None, after_version: int | None
    ) -> AsyncGenerator[bytes, None]:
        """The current bundle(s) newer than ``after_version``, then each new publication.

        ``name=None`` watches every name (``after_version`` then applies to each). Raises
        :class:`ResourceLimitError` if a cap is reached; ends when the hub stops.
        """
        with self._slot(caller):
            floor = 0 if after_version is None else after_version
            sent: dict[str, int] = {}
            while not self._closed:
                generation = self._generation
                for record, payload in await self._latest(name):
                    if record.version > sent.get(record.name, floor):
                        sent[record.name] = record.version
                        yield payload
                await self._changed_since(generation)

    def close(self) -> None:
        """End every stream (normally) and stop listening to the feed (loop thread)."""
        self._closed = True
        self._feed.remove_listener(self._notify_threadsafe)
        self._bump()
