"""The checkpointer: interval, on-demand signing, and no inconsistent checkpoints across hubs."""

from __future__ import annotations

import threading
from collections.abc import Callable

from hub.ledger.checkpointer import Checkpointer
from hub.ledger.store import LedgerStore
from tests.ledger.ledger_helpers import verify_whole_ledger
from tests.sim import NOW, SimNode
from trust import checkpoint as ck
from trust import keys

ORIGIN = "warden.test/ledger"


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_interval_and_on_demand(store: LedgerStore, hub_key: keys.SigningKey) -> None:
    clock = Clock()
    cp = Checkpointer(store, ORIGIN, hub_key, interval=10, clock=clock, now=lambda: NOW)
    assert cp.checkpoint_now() is None  # nothing to commit to yet
    node = SimNode("n1")
    store.register_node("n1", node.key.public, now=NOW)
    first = cp.maybe_checkpoint()
    assert first is None  # checkpoint_now just ran at t=0: the interval has not passed
    clock.t = 10
    first = cp.maybe_checkpoint()
    assert first is not None and first.size == 1
    store.append_records("n1", node.records(3), now=NOW)
    clock.t = 15
    assert cp.maybe_checkpoint() is None  # within the interval
    now_cp = cp.checkpoint_now()  # on demand
    assert now_cp is not None and now_cp.size == 4
    assert ck.verify_checkpoint(now_cp.note, ORIGIN, hub_key.public, ORIGIN).size == 4
    assert cp.wait_covering(4, timeout=0) == now_cp
    assert cp.wait_covering(5, timeout=0.1) is None


def test_background_loop_covers_appends(store: LedgerStore, hub_key: keys.SigningKey) -> None:
    node = SimNode("n1")
    store.register_node("n1", node.key.public, now=NOW)
    cp = Checkpointer(store, ORIGIN, hub_key, interval=0.05)
    cp.start()
    try:
        res = store.append_records("n1", node.records(5), now=NOW)
        covering = cp.wait_covering(res.tree_size, timeout=5)
        assert covering is not None and covering.size >= res.tree_size
    finally:
        cp.stop()
    latest = store.latest_checkpoint()
    assert latest is not None and latest.size == store.size()


def test_two_hubs_checkpointing_concurrently_stay_consistent(
    make_store: Callable[[], LedgerStore], hub_key: keys.SigningKey
) -> None:
    hubs = [make_store(), make_store()]
    node = SimNode("n1")
    hubs[0].register_node("n1", node.key.public, now=NOW)
    stop = threading.Event()

    def sign_forever(hub: LedgerStore) -> None:
        c = Checkpointer(hub, ORIGIN, hub_key, interval=0.001)
        while not stop.is_set():
            c.checkpoint_now()

    signers = [threading.Thread(target=sign_forever, args=(h,)) for h in hubs]
    for th in signers:
        th.start()
    try:
        for i in range(15):
            hubs[i % 2].append_records("n1", node.records(3), now=NOW)
    finally:
        stop.set()
        for th in signers:
            th.join()
    verify_whole_ledger(hubs[0], hub_key.public, {"n1": node.key.public})
