"""Issue 8 item 10: GetEntries pages are bounded by bytes, and a record's size is capped.

Before: pages were cut by count only, so 24 records of ~1 MB made every GetEntries page
larger than the transport allows ("Sent message larger than max") and no reader could page
through the ledger at all; and Append stored a record of any size.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from hub.config import Role
from hub.ledger.store import LedgerStore
from protos.client import Entry
from tests.hub.harness import enroll, make_world, node_client, operator, running_hub
from tests.ledger.conftest import OpenStore
from tests.sim import NOW, SimNode
from trust.errors import RecordTooLargeError

MB = 1_000_000
MiB = 1024 * 1024
LIMIT, PAGE = 200_000, 400_000


def _big(node: SimNode, size: int) -> bytes:
    """The node's next record, padded with ``size`` bytes of evidence."""
    return node.record(evidence={"pad": "x" * size})


@pytest.fixture
def limited_store(open_store: OpenStore) -> LedgerStore:
    """A store as a hub opens it, scaled down 10x: records up to 200 kB, pages up to 400 kB."""
    return open_store(max_record_bytes=LIMIT, page_bytes=PAGE)


def test_pages_of_large_records_stay_under_page_bytes(limited_store: LedgerStore) -> None:
    node = SimNode("big")
    limited_store.register_node("big", node.key.public, now=NOW)
    for _ in range(6):  # envelopes of ~133 kB: 3 per page
        limited_store.append_records("big", [_big(node, 100_000) for _ in range(4)], now=NOW)
    size = limited_store.size()
    assert size == 25  # the enrollment event and 24 records
    seen: list[int] = []
    start = 0
    while start < size:
        page = limited_store.entries(start, size)
        assert page, f"empty page at {start}"
        assert sum(len(e.envelope) for e in page) <= PAGE or len(page) == 1
        seen.extend(e.index for e in page)
        start = page[-1].index + 1
    assert seen == list(range(size))


def test_a_page_holds_at_least_one_entry_larger_than_the_budget(
    limited_store: LedgerStore,
) -> None:
    node = SimNode("big")
    limited_store.register_node("big", node.key.public, now=NOW)
    limited_store.append_records("big", [_big(node, 1000) for _ in range(3)], now=NOW)
    assert [e.index for e in limited_store.entries(1, 4, max_bytes=10)] == [1]
    assert [e.index for e in limited_store.entries(1, 4, max_bytes=10**9)] == [1, 2, 3]


def test_an_oversize_record_is_refused_and_nothing_is_written(
    limited_store: LedgerStore,
) -> None:
    node = SimNode("big")
    limited_store.register_node("big", node.key.public, now=NOW)
    ok = _big(node, 1000)
    huge = _big(node, LIMIT)
    before = limited_store.size()
    with pytest.raises(RecordTooLargeError, match=rf"record 1 of the batch is {len(huge)} bytes"
                       rf".*at most {LIMIT} bytes \(max_record_bytes\)"):
        limited_store.append_records("big", [ok, huge], now=NOW)
    assert limited_store.size() == before
    assert limited_store.node_head("big") == (0, limited_store.node_head("nobody")[1])


def test_unlimited_store_reads_everything(make_store: Callable[[], LedgerStore]) -> None:
    store = make_store()  # opened without limits, as the offline audit tools do
    node = SimNode("n")
    store.register_node("n", node.key.public, now=NOW)
    store.append_records("n", node.records(5), now=NOW)
    assert len(store.entries(0, 6)) == 6


def test_getentries_pages_24_megabyte_records_over_grpc(tmp_path: Path) -> None:
    """End to end: 24 records of ~1 MB (envelopes ~1.33 MB) page with the default page_bytes."""
    world = make_world(tmp_path, max_record_bytes=2 * MiB, verify_workers=0)
    with running_hub(world) as hub:
        node = SimNode("big")
        enroll(world, hub, node)
        with node_client(world, hub, node) as c:
            for _ in range(6):
                c.append([_big(node, MB) for _ in range(4)])
            huge = _big(node, 2 * MiB)
            with pytest.raises(RecordTooLargeError, match="max_record_bytes"):
                c.append([huge])
        with operator(world, hub, Role.AUDITOR) as a:
            start, got = 0, list[Entry]()
            size = a.get_entries(0, 1).ledger_size
            while start < size:
                page = a.get_entries(start)
                assert page.entries
                assert page.ledger_size == size  # the refused record was not written
                got.extend(page.entries)
                start = page.entries[-1].index + 1
    assert [e.index for e in got] == list(range(size))
    assert sum(len(e.envelope) > MB for e in got) == 24
