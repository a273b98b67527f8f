"""The abstract store suite for published trust roots (:class:`RootStore`): on SQLite, on a
real PostgreSQL and on the in-memory store. The store keeps what the hub verified; these tests
are about storage rules (versions only grow, retries are idempotent, the hub event commits
with the row), so the envelopes need not be real roots."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa

from hub.ledger.sql import SqlLedgerStore
from hub.ledger.store import CheckpointSigner, LedgerStore
from tests.ledger.conftest import hub_public_of
from tests.ledger.ledger_helpers import verify_whole_ledger
from tests.sim import NOW
from trust import checkpoint as ck
from trust import keys
from trust.canonical import sha256_hex
from trust.errors import RollbackError, UsageError
from trust.record import HubEvent, HubEventKind

ORIGIN = "warden.test/ledger"


def _env(version: int, tag: str = "") -> bytes:
    return f'{{"root": {version}, "tag": "{tag}"}}'.encode()


def test_add_root_appends_its_hub_event_and_reads_back(store: LedgerStore) -> None:
    assert store.roots() == [] and store.latest_root() is None
    r2 = store.add_root(2, _env(2), now=NOW)
    assert (r2.version, r2.digest, r2.envelope, r2.published_at) == (
        2, sha256_hex(_env(2)), _env(2), NOW)
    entry = store.entry(r2.index)
    assert entry.kind == "root_publication"
    event = HubEvent.from_envelope(entry.envelope, hub_public_of(store))
    assert event.kind is HubEventKind.ROOT_PUBLICATION
    assert dict(event.body) == {"version": 2, "digest": r2.digest}
    r3 = store.add_root(3, _env(3), now=NOW)
    assert r3.index == r2.index + 1
    assert store.roots() == [r2, r3] and store.roots(2) == [r3] and store.roots(3) == []
    assert store.roots(2**64 - 1) == []  # a uint64 from the wire beyond any stored version
    assert store.latest_root() == r3
    verify_whole_ledger(store, hub_public_of(store), {})


def test_the_same_bytes_again_are_the_stored_root(store: LedgerStore) -> None:
    r2 = store.add_root(2, _env(2), now=NOW)
    store.add_root(3, _env(3), now=NOW)
    size = store.size()
    assert store.add_root(2, _env(2), now=NOW) == r2  # even after v3: a retried publication
    assert store.size() == size


@pytest.mark.parametrize(
    ("version", "tag", "match"),
    [(3, "other", "already published, with other bytes"), (2, "", "not newer than")],
    ids=["same-version-other-bytes", "older"],
)
def test_versions_only_grow(store: LedgerStore, version: int, tag: str, match: str) -> None:
    store.add_root(3, _env(3), now=NOW)
    size = store.size()
    with pytest.raises(RollbackError, match=match):
        store.add_root(version, _env(version, tag), now=NOW)
    assert store.size() == size and [r.version for r in store.roots()] == [3]


@pytest.mark.parametrize("version", [0, 1, 2**63])
def test_only_rotations_are_stored(store: LedgerStore, version: int) -> None:
    with pytest.raises(UsageError):
        store.add_root(version, _env(version), now=NOW)
    with pytest.raises(UsageError):
        store.add_root(2, b"", now=NOW)
    assert store.size() == 0 and store.roots() == []


def test_a_checkpoint_covering_the_event_commits_with_it(
    store: LedgerStore, hub_key: keys.SigningKey
) -> None:
    r = store.add_root(2, _env(2), now=NOW, checkpoint=CheckpointSigner(ORIGIN, ORIGIN, hub_key))
    cp = store.latest_checkpoint()
    assert cp is not None and cp.size == r.index + 1
    ck.verify_checkpoint(cp.note, ORIGIN, hub_key.public, ORIGIN)


def test_another_store_on_the_same_database_sees_and_respects_the_chain(
    make_store: Callable[[], LedgerStore],
) -> None:
    a, b = make_store(), make_store()
    r2 = a.add_root(2, _env(2), now=NOW)
    assert b.roots() == [r2]
    with pytest.raises(RollbackError):  # a second process with another v2
        b.add_root(2, _env(2, "b"), now=NOW)
    assert b.add_root(2, _env(2), now=NOW) == r2


@pytest.mark.sql_only(reason="SQL triggers refuse UPDATE/DELETE; the memory store has no such"
                     " statements to refuse")
def test_roots_are_append_only(store: SqlLedgerStore) -> None:
    store.add_root(2, _env(2), now=NOW)
    for stmt in ("UPDATE roots SET version = 9", "DELETE FROM roots"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), store.engine.begin() as conn:
            conn.execute(sa.text(stmt))
    assert [r.version for r in store.roots()] == [2]
