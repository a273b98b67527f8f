"""The policy watcher (agent/watcher.py) against a scripted hub client.

:class:`ScriptedHub` stands in for :class:`protos.client.HubClient`: each ``watch_policies``
call takes the next scripted item — a :class:`Stream` (records, then a graceful end, an error,
or held open until cancelled) or an exception raised at once — and every call is logged with
its monotonic time, so the tests read the watcher's reconnection schedule from the log. Every
wait is on that log (a condition with a deadline), never a bare sleep.

What is pinned:

* a bundle delivered on the stream lands in the inbox and sets ``wake``; ``stop()`` cancels an
  open stream and returns at once;
* a stream that ends gracefully is followed by a ``Get`` poll, then a new stream, and each
  (re)connection asks ``after_version`` = the version held at that moment;
* :func:`backoff_delays`: attempt *n* waits in ``[d/2, d]``, ``d = min(max, initial·2ⁿ)``;
* a hub that refuses Watch (its stream cap) but answers Get is not hammered: the gaps between
  Watch attempts keep growing; the backoff resets only after a healthy stream (one that
  delivered a bundle, or stayed open for ``HEALTHY_STREAM_S``, at least 10 s);
* ``stop()`` during a backoff wait returns promptly.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from types import SimpleNamespace
from typing import Any

import pytest

from agent import watcher as watcher_module
from agent.watcher import PolicyWatcher, backoff_delays
from trust.errors import LimitExceededError, TransportError, WardenError

NAME = "standard"
# Event.wait may return a hair before its timeout (clock granularity).
EARLY = 0.005
# Scheduling slack on a loaded 2-core machine, for upper bounds only.
SLACK = 0.25


def record(envelope: bytes) -> Any:
    """What Watch and Get hand the watcher (it reads only ``envelope``)."""
    return SimpleNamespace(name=NAME, version=0, revision="r", envelope=envelope)


@dataclass
class Stream:
    """One scripted WatchPolicies stream: yields ``records``; then stays open ``open_for``
    seconds (or, with ``hold``, until cancelled); then ends gracefully, or raises ``error``."""

    records: tuple[Any, ...] = ()
    error: WardenError | None = None
    hold: bool = False
    open_for: float = 0.0
    cancelled: threading.Event = field(default_factory=threading.Event)
    ended_at: float | None = None

    def __iter__(self) -> Iterator[Any]:
        try:
            for r in self.records:
                if self.cancelled.is_set():
                    return
                yield r
            if self.open_for:
                self.cancelled.wait(self.open_for)
            if self.hold:
                self.cancelled.wait(30)  # bounded: a failed test must not hang the thread
            if self.error is not None and not self.cancelled.is_set():
                raise self.error
        finally:
            self.ended_at = time.monotonic()

    def cancel(self) -> None:
        self.cancelled.set()


Item = Stream | WardenError


class ScriptedHub:
    """A hub client whose Watch answers follow a script (then ``after``) and whose Get answers
    with ``get()``. ``log`` holds ``(kind, monotonic time, after_version)`` per call."""

    def __init__(self, script: list[Item], *, after: Callable[[], Item] | None = None,
                 get: Callable[[], Any] = lambda: None) -> None:
        self._script = list(script)
        self._after = after or (lambda: Stream(hold=True))
        self._get = get
        self.log: list[tuple[str, float, int | None]] = []
        self.streams: list[Stream] = []
        self._cond = threading.Condition()

    def watch_policies(self, name: str = "", after_version: int | None = None) -> Stream:
        assert name == NAME
        item = self._script.pop(0) if self._script else self._after()
        with self._cond:
            self.log.append(("watch", time.monotonic(), after_version))
            if isinstance(item, Stream):
                self.streams.append(item)
            self._cond.notify_all()
        if isinstance(item, BaseException):
            raise item
        return item

    def get_policy(self, name: str = "") -> Any:
        assert name == NAME
        with self._cond:
            self.log.append(("get", time.monotonic(), None))
            self._cond.notify_all()
        return self._get()

    def watches(self) -> list[tuple[str, float, int | None]]:
        with self._cond:
            return [x for x in self.log if x[0] == "watch"]

    def wait_for(self, pred: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}; "
                                         f"calls: {[(k, v) for k, _, v in self.log]}")
                self._cond.wait(min(left, 0.1))

    def wait_watches(self, n: int, timeout: float = 10.0) -> list[tuple[str, float, int | None]]:
        self.wait_for(lambda: sum(1 for x in self.log if x[0] == "watch") >= n, timeout,
                      f"{n} watch calls")
        return self.watches()[:n]


@dataclass
class World:
    hub: ScriptedHub
    watcher: PolicyWatcher
    inbox: queue.Queue[bytes]
    wake: threading.Event
    contacts: list[float]


@pytest.fixture
def make() -> Iterator[Callable[..., World]]:
    """Build and start watchers; every one is stopped at the end of the test."""
    started: list[PolicyWatcher] = []

    def build(hub: ScriptedHub, *, initial: float, maximum: float, seed: int = 1,
              version: Callable[[], int | None] = lambda: None) -> World:
        inbox: queue.Queue[bytes] = queue.Queue()
        wake = threading.Event()
        contacts: list[float] = []
        w = PolicyWatcher(hub, NAME, version, inbox, wake, backoff_initial_s=initial,
                          backoff_max_s=maximum, on_contact=lambda: contacts.append(1.0),
                          rng=random.Random(seed))
        started.append(w)
        w.start()
        return World(hub, w, inbox, wake, contacts)

    yield build
    for w in started:
        w.stop(timeout=2)


def gaps(watches: list[tuple[str, float, int | None]]) -> list[float]:
    """Seconds between consecutive Watch attempts."""
    return [b[1] - a[1] for a, b in zip(watches, watches[1:], strict=False)]


def _alive(w: PolicyWatcher) -> bool:
    return w._thread.is_alive()  # no public handle on the thread; stop() joins it


def refused() -> WardenError:
    """What the client raises when the hub's Watch stream cap is reached (RESOURCE_EXHAUSTED)."""
    return LimitExceededError("hub: too many open watch streams (limit 2)")


# -- delivery and stop -------------------------------------------------------------------------


def test_a_bundle_on_the_stream_reaches_the_inbox_and_wakes_the_loop_and_stop_cancels_it(
    make: Callable[..., World],
) -> None:
    stream = Stream((record(b"bundle v3"),), hold=True)
    w = make(ScriptedHub([stream]), initial=5.0, maximum=5.0, version=lambda: 2)
    assert w.inbox.get(timeout=5) == b"bundle v3"
    assert w.wake.wait(5)
    assert w.watcher.connected.is_set()  # set when the stream delivered
    assert w.contacts, "a delivered bundle is contact with the hub"
    assert [(k, v) for k, _, v in w.hub.log] == [("watch", 2)]  # no Get while streaming

    t = time.monotonic()
    w.watcher.stop()
    assert time.monotonic() - t < 1.0
    assert stream.cancelled.is_set(), "stop() must cancel the open stream"
    assert not _alive(w.watcher)
    assert not w.watcher.connected.is_set()


def test_a_stream_that_ends_gracefully_is_followed_by_a_get_poll_then_a_new_stream(
    make: Callable[..., World],
) -> None:
    current = record(b"bundle v5")
    hub = ScriptedHub([Stream()], get=lambda: current)  # ends at once, without error
    w = make(hub, initial=0.02, maximum=0.05)
    hub.wait_watches(2)
    assert [k for k, _, _ in hub.log[:3]] == ["watch", "get", "watch"]
    # What Get answered is handed over like a streamed bundle (the daemon dedups it).
    assert w.inbox.get(timeout=5) == b"bundle v5"
    assert w.wake.is_set()


def test_each_reconnection_asks_after_the_version_held_at_that_moment(
    make: Callable[..., World],
) -> None:
    held: list[int | None] = [None]
    applied = iter([4, 9, 12])

    def get() -> Any:
        # The daemon applies what the poll brought before the watcher reconnects.
        held[0] = next(applied, held[0])
        return record(f"bundle v{held[0]}".encode())

    hub = ScriptedHub([Stream(), Stream(error=TransportError("hub: connection reset")),
                       Stream()], get=get)
    make(hub, initial=0.01, maximum=0.02, version=lambda: held[0])
    watches = hub.wait_watches(4)
    assert [v for _, _, v in watches] == [None, 4, 9, 12]


# -- backoff -------------------------------------------------------------------------------------


def test_backoff_delays_are_jittered_in_the_upper_half_and_capped() -> None:
    initial, cap = 0.5, 8.0
    runs = {}
    for seed in range(6):
        ds = list(islice(backoff_delays(initial, cap, random.Random(seed)), 12))
        for n, x in enumerate(ds):
            d = min(cap, initial * 2**n)
            assert d / 2 <= x <= d, (seed, n, x)
        assert all(cap / 2 <= x <= cap for x in ds[5:]), "capped from attempt 5 on"
        assert ds[:5] == sorted(ds[:5]), "grows until the cap"
        runs[seed] = tuple(ds)
    # Reproducible from the seed, and different per agent: a fleet does not reconnect in step.
    assert tuple(islice(backoff_delays(initial, cap, random.Random(3)), 12)) == runs[3]
    assert len(set(runs.values())) == len(runs)


def test_watch_refused_while_get_answers_backs_off_instead_of_reopening_at_once(
    make: Callable[..., World],
) -> None:
    # The hub's stream cap refuses every Watch, yet Get works. Each successful poll reopens
    # the stream; the backoff must keep growing (before the fix it restarted at `initial`
    # after every poll: a reconnect about every `initial` seconds, for ever).
    initial, cap = 0.02, 0.64
    hub = ScriptedHub([], after=refused, get=lambda: record(b"current"))
    make(hub, initial=initial, maximum=cap)
    watches = hub.wait_watches(7)
    g = gaps(watches)
    for n, gap in enumerate(g):
        floor = min(cap, initial * 2**n) / 2
        assert gap >= floor - EARLY, f"attempt {n + 1} came after {gap:.3f} s, < {floor} s: {g}"
    assert g[-1] >= 8 * initial, g
    # Each gap held exactly one successful poll: the watcher polled, then reopened.
    kinds = [k for k, _, _ in hub.log]
    assert kinds[: 2 * 7 - 1] == ["watch", "get"] * 6 + ["watch"]


def test_a_stream_that_delivered_a_bundle_resets_the_backoff(make: Callable[..., World]) -> None:
    initial, cap = 0.02, 1.28
    script: list[Item] = [refused() for _ in range(5)]
    script.append(Stream((record(b"bundle v2"),)))  # delivers, then the hub ends it
    hub = ScriptedHub(script, after=refused, get=lambda: record(b"current"))
    w = make(hub, initial=initial, maximum=cap)
    watches = hub.wait_watches(8)
    g = gaps(watches)
    assert g[4] >= initial * 2**4 / 2 - EARLY, g  # grown before the healthy stream
    assert g[5] <= initial + SLACK, f"no reset after a stream that delivered: {g}"
    assert g[6] >= initial - EARLY, g  # and it grows again from there
    delivered = []
    while not w.inbox.empty():
        delivered.append(w.inbox.get_nowait())
    assert b"bundle v2" in delivered


def test_only_a_stream_open_for_the_healthy_period_resets_the_backoff(
    make: Callable[..., World], monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The rule: healthy means open for at least 10 s (or having delivered a bundle).
    assert watcher_module.HEALTHY_STREAM_S >= 10.0
    monkeypatch.setattr(watcher_module, "HEALTHY_STREAM_S", 0.3)  # the rule, not the wait
    initial, cap = 0.02, 1.28
    short, long_ = Stream(open_for=0.05), Stream(open_for=0.45)
    script: list[Item] = [refused() for _ in range(4)]
    script += [short, refused(), long_]
    hub = ScriptedHub(script, after=refused, get=lambda: record(b"current"))
    make(hub, initial=initial, maximum=cap)
    watches = hub.wait_watches(8)
    assert short.ended_at is not None and long_.ended_at is not None
    after_short = watches[5][1] - short.ended_at
    after_long = watches[7][1] - long_.ended_at
    # A short-lived stream (opened, then dropped at once) keeps the backoff growing: the
    # wait after it is at least the 5th delay's floor.
    assert after_short >= initial * 2**4 / 2 - EARLY, after_short
    assert after_long <= initial + SLACK, f"no reset after a healthy stream: {after_long:.3f} s"


def test_stop_during_a_backoff_wait_returns_promptly(make: Callable[..., World]) -> None:
    failed = threading.Event()

    class Seen(logging.Handler):
        def emit(self, rec: logging.LogRecord) -> None:
            if "watch failed" in rec.getMessage():
                failed.set()

    log = logging.getLogger("warden.agent.watch")
    handler, level = Seen(), log.level
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        hub = ScriptedHub([], after=lambda: TransportError("hub: connection refused"))
        w = make(hub, initial=30.0, maximum=60.0)
        assert failed.wait(5), "the watcher never reported the failed watch"
        # It is now waiting out a backoff delay of 15-30 s.
        t = time.monotonic()
        w.watcher.stop()
        assert time.monotonic() - t < 1.0
        assert not _alive(w.watcher)
        assert [k for k, _, _ in hub.log] == ["watch"], "no poll or reconnect after stop()"
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
