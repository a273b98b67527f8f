"""RecordVerifier: the same verdicts in-process and in worker processes, and a robust pool."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.ledger.store import LedgerStore
from hub.ledger.verify import Checked, RecordVerifier, check_records
from tests.ledger.ledger_helpers import HUB_SEED
from tests.sim import NOW, SimNode
from trust import keys, merkle
from trust.canonical import sha256_hex
from trust.errors import AccessDeniedError, FormatError, SignatureError, WardenError
from trust.record import AuditRecord


@pytest.fixture(scope="module")
def pool() -> Iterator[RecordVerifier]:
    """Two worker processes, shared by the tests of this module."""
    v = RecordVerifier(2, min_chunk=4)
    yield v
    v.close()


def _expected(node: SimNode, envs: list[bytes]) -> list[Checked]:
    out = []
    for e in envs:
        r = AuditRecord.from_envelope(e, node.key.public)
        out.append(Checked(r.seq, r.prev, sha256_hex(e), merkle.leaf_hash(e)))
    return out


def test_in_process_check_matches_the_record_parser() -> None:
    node = SimNode("n1")
    envs = node.records(5)
    assert check_records("n1", node.key.public, envs) == _expected(node, envs)


def test_pool_returns_the_same_results_in_batch_order(pool: RecordVerifier) -> None:
    node = SimNode("n1")
    envs = node.records(41)  # an uneven split across the two workers
    assert pool.check("n1", node.key.public, envs) == _expected(node, envs)


def _bad_batches() -> dict[str, tuple[int, type[WardenError]]]:
    return {"forged": (29, SignatureError), "other node": (30, AccessDeniedError),
            "garbage": (31, FormatError)}


@pytest.mark.parametrize("case", sorted(_bad_batches()))
def test_pool_refuses_like_in_process(pool: RecordVerifier, case: str) -> None:
    node, stranger = SimNode("n1"), SimNode("n2")
    envs = node.records(40)
    pos, error = _bad_batches()[case]
    if case == "forged":
        envs[pos] = node.record(key=keys.generate(), advance=False)
    elif case == "other node":
        envs[pos] = node.record(node_id=stranger.node_id, advance=False)
    else:
        envs[pos] = b'{"payload": 1}'
    with pytest.raises(error) as in_pool:
        pool.check("n1", node.key.public, envs)
    with pytest.raises(error) as here:
        check_records("n1", node.key.public, envs)
    assert in_pool.value.message == here.value.message
    assert f"record {pos} of the batch" in in_pool.value.message


def test_first_refusal_in_batch_order_wins(pool: RecordVerifier) -> None:
    node = SimNode("n1")
    envs = node.records(40)
    envs[35] = b"not json"
    envs[3] = node.record(key=keys.generate(), advance=False)
    with pytest.raises(SignatureError, match="record 3 of the batch"):
        pool.check("n1", node.key.public, envs)


def test_a_dead_worker_is_replaced(pool: RecordVerifier) -> None:
    node = SimNode("n1")
    pool.check("n1", node.key.public, node.records(20))
    victims = _children(os.getpid())
    assert victims, "the pool has no worker processes"
    os.kill(victims[0], signal.SIGKILL)
    time.sleep(0.2)
    envs = node.records(20)
    assert pool.check("n1", node.key.public, envs) == _expected(node, envs)  # in-process
    envs = node.records(20)
    assert pool.check("n1", node.key.public, envs) == _expected(node, envs)  # new pool


def test_store_appends_through_the_pool(tmp_path: Path, pool: RecordVerifier) -> None:
    store = LedgerStore.open(str(tmp_path / "l.db"), hub_key=keys.SigningKey.from_seed(HUB_SEED),
                             verifier=pool)
    try:
        node = SimNode("n1")
        store.register_node("n1", node.key.public, now=NOW)
        res = store.append_records("n1", node.records(30), now=NOW)
        assert res.indexes == list(range(1, 31))
        forged = node.records(30)
        forged[17] = node.record(key=keys.generate(), advance=False)
        with pytest.raises(SignatureError, match="record 17"):
            store.append_records("n1", forged, now=NOW)
        assert store.size() == 31  # all or nothing
    finally:
        store.close()


def _children(pid: int) -> list[int]:
    if not Path("/proc").is_dir():
        pytest.skip("needs /proc to find worker processes")
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid and "spawn_main" in Path(
                f"/proc/{entry}/cmdline"
            ).read_bytes().decode(errors="replace"):
                kids.append(int(entry))
    return kids


def _running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie waiting for init to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


_ORPHAN_PROBE = """
import time
from hub.ledger.verify import RecordVerifier
v = RecordVerifier(2)
print("ready", flush=True)
time.sleep(60)
"""


def test_workers_exit_when_the_hub_is_killed() -> None:
    # Killed right after start-up: the workers may not even have finished starting.
    proc = subprocess.Popen([sys.executable, "-c", _ORPHAN_PROBE], stdout=subprocess.PIPE,
                            text=True, cwd=Path(__file__).resolve().parents[2])
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 20
        while len(workers := _children(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(workers) == 2
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 5
    while any(map(_running, workers)) and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = [w for w in workers if _running(w)]
    for w in alive:  # do not leak them even when the test fails
        os.kill(w, signal.SIGKILL)
    assert alive == []
