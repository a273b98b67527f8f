"""The durable outbox (issue 10 item 6): chained signed records on a real SQLite file, acks in
order, pruning only what was proved, one owner, typed storage errors, and kill -9 safety."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.outbox import Outbox, read_status
from trust.canonical import Sha256
from trust.errors import (
    ConfigError,
    FormatError,
    LedgerError,
    SequenceGapError,
    StorageFullError,
    StorageUnavailableError,
)
from trust.keys import SigningKey
from trust.record import GENESIS_PREV, AuditRecord, Decision, EventType, Subject, envelope_digest

REPO = Path(__file__).resolve().parents[2]
NODE = "emea-1"
KEY = SigningKey.from_seed(b"\x07" * 32)
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SUBJECT = Subject("credit", "7", Sha256("ab" * 32))


def _append(box: Outbox, i: int = 0) -> AuditRecord:
    return box.append(
        event=EventType.VALIDATION,
        subject=SUBJECT,
        now=NOW + timedelta(seconds=i),
        decision=Decision(True),
        evidence={"rows": 1000 + i},
    )


def _verify_chain(envelopes: list[bytes], first_seq: int = 1,
                  first_prev: str = GENESIS_PREV) -> list[AuditRecord]:
    """Every envelope verifies under the node key and links to its predecessor."""
    records = []
    prev = first_prev
    for offset, env in enumerate(envelopes):
        rec = AuditRecord.from_envelope(env, KEY.public)
        assert rec.node_id == NODE
        assert rec.seq == first_seq + offset
        assert rec.prev == prev
        prev = envelope_digest(env)
        records.append(rec)
    return records


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "outbox.db"


def test_records_verify_and_chain(db: Path) -> None:
    with Outbox.open(db, NODE, KEY) as box:
        assert box.head().seq == 0 and box.head().digest == GENESIS_PREV
        returned = [_append(box, i) for i in range(5)]
        envs = [e.envelope for e in box.pending(limit=100)]
        assert envs == [r.envelope for r in returned]
        records = _verify_chain(envs)
        assert [r.evidence["rows"] for r in records] == [1000, 1001, 1002, 1003, 1004]
        head = box.head()
        assert (head.seq, head.digest, head.time) == (5, records[-1].digest, records[-1].time)
        assert box.depth() == 5
        assert [e.seq for e in box.pending(limit=2)] == [1, 2]


def test_restart_resumes_chain(db: Path) -> None:
    with Outbox.open(db, NODE, KEY) as box:
        _append(box, 0)
        _append(box, 1)
    with Outbox.open(db, NODE, KEY) as box:
        third = _append(box, 2)
        assert third.seq == 3
        _verify_chain([e.envelope for e in box.entries()])


def test_wal_and_full_sync(db: Path) -> None:
    with Outbox.open(db, NODE, KEY) as box:
        _append(box)
        conn = box._conn  # the very connection the outbox writes through
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


_CHILD = """
import sys
from datetime import UTC, datetime
from agent.outbox import Outbox
from trust.canonical import Sha256
from trust.keys import SigningKey
from trust.record import EventType, Subject

box = Outbox.open(sys.argv[1], "emea-1", SigningKey.from_seed(b"\\x07" * 32))
print("ready", flush=True)
subject = Subject("credit", "7", "ab" * 32)
while True:
    rec = box.append(event=EventType.ALERT, subject=subject,
                     now=datetime(2026, 11, 26, 12, 0, tzinfo=UTC), evidence={"n": 1})
    print(rec.seq, flush=True)
"""


def test_kill_9_during_appends_loses_nothing(db: Path) -> None:
    """A child appends in a loop and prints each seq once ``append`` returned; it is killed
    at a random point (three times, resuming the same file): every printed seq is stored,
    exactly once, and the whole stored chain verifies without a gap."""
    rng = random.Random(10)
    printed: list[int] = []
    for _round in range(3):
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(db)],
            cwd=REPO, stdout=subprocess.PIPE, text=True,
        )
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        stop_after = rng.randint(3, 40)
        for _ in range(stop_after):
            printed.append(int(child.stdout.readline()))
        os.kill(child.pid, signal.SIGKILL)  # while it is in the middle of further appends
        child.wait()
        printed.extend(int(line) for line in child.stdout.read().split())
        child.stdout.close()
    assert len(printed) == len(set(printed))
    with Outbox.open(db, NODE, KEY) as box:
        stored = [e.envelope for e in box.entries()]
        records = _verify_chain(stored)
        seqs = [r.seq for r in records]
        assert seqs == list(range(1, len(seqs) + 1))
        assert set(printed) <= set(seqs)
        assert box.head().seq == seqs[-1]
        assert _append(box).seq == seqs[-1] + 1


def test_acknowledge_in_order_and_idempotent(db: Path) -> None:
    with Outbox.open(db, NODE, KEY) as box:
        for i in range(4):
            _append(box, i)
        box.acknowledge(1, 10)
        box.acknowledge(1, 10)  # a resend's ack: no-op
        box.acknowledge_many([(2, 11), (3, 15)])
        assert box.depth() == 1
        assert [e.seq for e in box.pending()] == [4]
        assert [(e.seq, e.ledger_index) for e in box.unproved()] == [(1, 10), (2, 11), (3, 15)]
        status = read_status(db)
        assert (status.head.seq, status.acknowledged_seq, status.depth, status.unproved) == (
            4, 3, 1, 3)


@pytest.mark.parametrize(
    ("acks", "error"),
    [
        pytest.param([(9, 20)], SequenceGapError, id="never-written"),
        pytest.param([(3, 20)], SequenceGapError, id="skips-unacked"),
        pytest.param([(1, 20), (1, 21)], LedgerError, id="re-ack-other-index"),
        pytest.param([(1, 20), (2, 20)], LedgerError, id="index-not-increasing"),
        pytest.param([(1, 20), (2, 21), (4, 22)], SequenceGapError, id="gap-in-batch"),
        pytest.param([(0, 20)], FormatError, id="seq-zero"),
        pytest.param([(1, -1)], FormatError, id="negative-index"),
    ],
)
def test_bad_acks_refused_and_batch_kept_whole(
    db: Path, acks: list[tuple[int, int]], error: type[Exception]
) -> None:
    with Outbox.open(db, NODE, KEY) as box:
        for i in range(4):
            _append(box, i)
        with pytest.raises(error):
            box.acknowledge_many(acks)
        assert box.depth() == 4  # no part of a refused batch is kept
        assert all(e.ledger_index is None for e in box.entries())


def test_sequence_gap_names_the_expected_seq(db: Path) -> None:
    with Outbox.open(db, NODE, KEY) as box:
        _append(box, 0)
        _append(box, 1)
        box.acknowledge(1, 0)
        with pytest.raises(SequenceGapError) as info:
            box.acknowledge(5, 3)
        assert info.value.expected == 2


def test_prune_deletes_only_proved(db: Path) -> None:
    with Outbox.open(db, NODE, KEY) as box:
        for i in range(4):
            _append(box, i)
        box.acknowledge_many([(1, 5), (2, 6), (3, 7)])
        with pytest.raises(LedgerError, match="not acknowledged"):
            box.mark_proved(4, ledger_index=8)
        with pytest.raises(LedgerError, match="never written"):
            box.mark_proved(9, ledger_index=8)
        with pytest.raises(LedgerError, match="acknowledged at ledger index 6"):
            box.mark_proved(2, ledger_index=99)
        assert box.prune() == 0  # acknowledged is not enough
        box.mark_proved(1, ledger_index=5)
        box.mark_proved(3, ledger_index=7)
        assert box.prune() == 2
        assert [e.seq for e in box.entries()] == [2, 4]
        box.mark_proved(1, ledger_index=5)  # already pruned: idempotent
        box.acknowledge(1, 5)  # a late duplicate ack of a pruned record: no-op
        box.mark_proved(2, ledger_index=6)
        box.acknowledge(4, 8)
        box.mark_proved(4, ledger_index=8)
        assert box.prune() == 2 and list(box.entries()) == []
        head = box.head()
    with Outbox.open(db, NODE, KEY) as box:  # the head survives pruning everything
        assert box.head() == head
        fifth = _append(box, 5)
        assert (fifth.seq, fifth.prev) == (5, head.digest)


def test_second_opener_refused(db: Path) -> None:
    with Outbox.open(db, NODE, KEY) as box:
        _append(box)
        busy = f"in use by another agent \\(pid {os.getpid()}"
        with pytest.raises(StorageUnavailableError, match=busy):
            Outbox.open(db, NODE, KEY)
        assert _append(box).seq == 2  # the owner is unaffected
    with Outbox.open(db, NODE, KEY) as box:  # released on close
        assert box.head().seq == 2


def test_other_node_refused(db: Path) -> None:
    Outbox.open(db, NODE, KEY).close()
    with pytest.raises(ConfigError, match="belongs to node 'emea-1'"):
        Outbox.open(db, "apac-1", KEY)
    with pytest.raises(ConfigError, match="reserved"):
        Outbox.open(db, "hub", KEY)


def test_disk_full_is_typed_and_keeps_state(db: Path) -> None:
    """The disk itself full: SQLite's own page cap set to the file's size, so the next write
    fails inside SQLite with SQLITE_FULL, as it would on ENOSPC."""
    with Outbox.open(db, NODE, KEY) as box:
        for i in range(3):
            _append(box, i)
        before, stored = box.head(), [e.envelope for e in box.entries()]
        conn = box._conn
        conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0]}")
        with pytest.raises(StorageFullError, match="database or disk is full"):
            for i in range(100):
                box.append(event=EventType.ALERT, subject=SUBJECT, now=NOW,
                           evidence={"blob": "x" * 3000, "i": i})
        assert box.head() == before
        assert [e.envelope for e in box.entries()] == stored
    with Outbox.open(db, NODE, KEY) as box:  # the file is whole; space back, the chain goes on
        assert box.head() == before
        assert _append(box, 9).prev == before.digest
        _verify_chain([e.envelope for e in box.entries()])


def test_size_cap_refuses_appends_but_still_drains(db: Path) -> None:
    with Outbox.open(db, NODE, KEY) as box:
        _append(box)
    big = {"blob": "x" * 3000}  # a few pages per record: the cap is reached quickly
    with Outbox.open(db, NODE, KEY, max_bytes=64 * 1024) as box:
        with pytest.raises(StorageFullError, match="is full"):
            for i in range(100):
                box.append(event=EventType.ALERT, subject=SUBJECT, now=NOW, evidence=big | {"i": i})
        before = box.head()
        stored = [e.envelope for e in box.entries()]
        with pytest.raises(StorageFullError):
            box.append(event=EventType.ALERT, subject=SUBJECT, now=NOW, evidence=big)
        assert box.head() == before
        assert [e.envelope for e in box.entries()] == stored
        box.acknowledge_many((s, s) for s in range(1, before.seq + 1))
        for s in range(1, before.seq + 1):
            box.mark_proved(s, ledger_index=s)
        assert box.prune() == before.seq  # pruning frees pages for new records
        assert _append(box).seq == before.seq + 1
    with Outbox.open(db, NODE, KEY) as box:
        assert box.head().seq == before.seq + 1
        assert box.depth() == 1


def test_read_only_is_typed_and_keeps_state(db: Path) -> None:
    with Outbox.open(db, NODE, KEY) as box:
        _append(box)
        box._conn.execute("PRAGMA query_only = ON")  # SQLite refuses writes as SQLITE_READONLY
        with pytest.raises(StorageUnavailableError, match="cannot be written"):
            _append(box)
        box._conn.execute("PRAGMA query_only = OFF")
        assert _append(box).seq == 2


def test_bad_field_writes_nothing(db: Path) -> None:
    with Outbox.open(db, NODE, KEY) as box:
        with pytest.raises(FormatError):
            box.append(event=EventType.ALERT, subject=SUBJECT, now=datetime(2026, 1, 1))  # naive
        assert box.head().seq == 0 and list(box.entries()) == []


def test_garbage_file_and_foreign_schema(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StorageUnavailableError, match="not a readable outbox"):
        Outbox.open(junk, NODE, KEY)
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("PRAGMA user_version = 7")
    conn.close()
    with pytest.raises(FormatError, match="schema version 7"):
        Outbox.open(other, NODE, KEY)
    Outbox.open(other.with_name("fresh.db"), NODE, KEY).close()  # and the lock was released
    with pytest.raises(StorageUnavailableError, match="cannot open"):
        Outbox.open(tmp_path / "missing-dir" / "o.db", NODE, KEY)


def test_closed_outbox_refuses(db: Path) -> None:
    box = Outbox.open(db, NODE, KEY)
    box.close()
    box.close()
    with pytest.raises(StorageUnavailableError, match="closed"):
        _append(box)
