"""kill -9 during ingest loses no acknowledged record (SQLite, WAL, synchronous=FULL).

A child process appends batches and prints each acknowledged index only after
``append_records`` returned; the parent SIGKILLs it mid-stream, reopens the database and
checks every acknowledged index is there, intact, and the whole ledger still verifies.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from hub.ledger.store import LedgerStore
from tests.ledger.ledger_helpers import HUB_SEED, verify_whole_ledger
from tests.sim import NOW
from trust import keys

CHILD = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[3])
    from tests.sim import NOW, SimNode
    from hub.ledger.store import LedgerStore
    from trust import keys

    store = LedgerStore.open(sys.argv[1], hub_key=keys.SigningKey.from_seed(bytes(range(32))))
    node = SimNode("durable", keys.SigningKey.from_seed(bytes.fromhex(sys.argv[2])))
    node.seq, node.prev = store.node_head("durable")
    print("ready", flush=True)
    while True:
        result = store.append_records("durable", node.records(7), now=NOW)
        print(" ".join(map(str, result.indexes)), flush=True)
    """
)


def test_kill_9_loses_no_acknowledged_record(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    hub = keys.SigningKey.from_seed(HUB_SEED)
    node_key = keys.SigningKey.from_seed(b"\x07" * 32)
    store = LedgerStore.open(str(db), hub_key=hub)
    store.register_node("durable", node_key.public, now=NOW)
    store.close()

    acked: list[int] = []
    for round_ in range(2):  # kill twice: the second run resumes from what survived
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(db), node_key.raw_private().hex(),
             str(Path(__file__).resolve().parents[2])],
            stdout=subprocess.PIPE, text=True,
        )
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 30
        lines = 0
        while lines < 15 + 10 * round_ and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            acked.extend(int(x) for x in line.split())
            lines += 1
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        # Anything printed before the kill but not yet read was acknowledged too.
        for line in child.stdout.read().splitlines():
            if line.strip():
                acked.extend(int(x) for x in line.split())
        assert lines >= 10, "the child acknowledged too few batches before the deadline"

    store = LedgerStore.open(str(db), hub_key=hub)
    try:
        size = store.size()
        assert acked and max(acked) < size
        assert len(set(acked)) == len(acked)
        for idx in acked:
            assert store.entry(idx).node_id == "durable"
        verify_whole_ledger(store, hub.public, {"durable": node_key.public})
    finally:
        store.close()
