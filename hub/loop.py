"""An asyncio event loop running in a thread of its own, driven from synchronous code.

The hub serves gRPC with ``grpc.aio`` but its callers (``warden hub serve``, the tests, the
benchmarks) are synchronous: :func:`hub.server.start` returns once the server listens, and
:meth:`hub.server.RunningHub.stop` blocks until it has drained. This class is the bridge:
:meth:`run` submits a coroutine to the loop and waits for its result in the calling thread.

Invariant: the loop thread only runs the event loop; blocking work (database, signatures)
goes to the hub's worker pool, never onto this thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["EventLoopThread"]

T = TypeVar("T")


class EventLoopThread:
    """A new event loop, run forever in a daemon thread until :meth:`close`."""

    def __init__(self, name: str = "hub-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and return its result here (its exception is raised)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        """Cancel what is still pending, stop the loop, join the thread (idempotent)."""
        if self.loop.is_closed():
            return
        if self._thread.is_alive():
            self.run(_cancel_pending())
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join()
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()


async def _cancel_pending() -> None:
    me = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not me]
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
