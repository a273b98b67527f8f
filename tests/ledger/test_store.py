"""The abstract ledger store suite: every test runs on SQLite, on a real PostgreSQL and on the
in-memory store (``sql_only`` tests, about the schema and triggers, on the SQL backends only)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from hub.ledger import schema
from hub.ledger.errors import (
    AlreadyEnrolledError,
    NodeNotEnrolledError,
    TokenExpiredError,
    TokenNodeMismatchError,
    TokenUnknownError,
    TokenUsedError,
)
from hub.ledger.sql import SqlLedgerStore
from hub.ledger.store import MAX_BATCH, LedgerStore
from tests.ledger.conftest import hub_public_of
from tests.ledger.ledger_helpers import verify_whole_ledger
from tests.sim import NOW, SimNode
from trust import checkpoint as ck
from trust import keys, merkle
from trust.errors import (
    AccessDeniedError,
    ChainBrokenError,
    EquivocationError,
    FormatError,
    NotFoundError,
    RollbackError,
    SequenceGapError,
    SignatureError,
    UsageError,
)
from trust.record import GENESIS_PREV, HubEvent, HubEventKind, rotation_message

Enroll = Callable[[str], SimNode]


def _sha(i: int) -> str:
    return hashlib.sha256(str(i).encode()).hexdigest()


# --- schema ---------------------------------------------------------------------------------


@pytest.mark.sql_only(reason="compares the migrated SQL schema with the tables")
def test_migration_matches_schema(store: SqlLedgerStore) -> None:
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), schema.metadata) == []


def test_migrate_twice_is_a_no_op(make_store: Callable[[], LedgerStore]) -> None:
    a, b = make_store(), make_store()
    assert a.size() == b.size() == 0


@pytest.mark.sql_only(reason="SQL triggers refuse UPDATE/DELETE; the memory store has no such"
                     " statements to refuse")
def test_append_only_tables_refuse_update_and_delete(
    store: SqlLedgerStore, enrolled: Enroll, hub_key: keys.SigningKey
) -> None:
    enrolled("n1")
    store.sign_checkpoint("o", "o", hub_key, now=NOW)
    for stmt in ("UPDATE entries SET seq = 9", "DELETE FROM entries", "DELETE FROM subtrees",
                 "DELETE FROM checkpoints"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), store.engine.begin() as conn:
            conn.execute(sa.text(stmt))
    assert store.size() == 1


# --- appending records ----------------------------------------------------------------------


def test_append_and_read_back(store: LedgerStore, enrolled: Enroll) -> None:
    node = enrolled("emea-1")  # entry 0 is the hub's enrollment event
    envs = node.records(5)
    res = store.append_records("emea-1", envs, now=NOW)
    assert res.indexes == [1, 2, 3, 4, 5]
    assert res.duplicates == []
    assert res.tree_size == store.size() == 6
    prev_chain = store.entry(0).chain_hash
    for i, env in zip(res.indexes, envs, strict=True):
        e = store.entry(i)
        assert e.envelope == env  # verbatim
        assert (e.node_id, e.seq) == ("emea-1", i)
        assert e.leaf_hash == merkle.leaf_hash(env)
        assert e.chain_hash == hashlib.sha256(prev_chain + e.leaf_hash).digest()
        assert e.received_at == NOW
        prev_chain = e.chain_hash
    assert store.node_head("emea-1") == (5, hashlib.sha256(envs[-1]).hexdigest())
    assert store.find_entry("emea-1", 3).index == 3
    assert [e.index for e in store.entries(2, 4)] == [2, 3]
    with pytest.raises(NotFoundError):
        store.entry(6)


def test_proofs_match_in_memory_tree(store: LedgerStore, enrolled: Enroll) -> None:
    a, b = enrolled("a"), enrolled("b")
    for n in (1, 3, 2, 7, 1, 5):
        store.append_records("a", a.records(n), now=NOW)
        store.append_records("b", b.records(n // 2 + 1), now=NOW)
    size = store.size()
    leaves = [e.leaf_hash for e in store.entries(0, size)]
    for s in range(1, size + 1):
        r = store.root_at(s)
        assert r == merkle.root(leaves[:s])
        for i in range(0, s, 3):
            proof = store.inclusion_proof(i, s)
            assert proof == merkle.inclusion_proof(leaves[:s], i)
            merkle.verify_inclusion(leaves[i], i, s, proof, r)
        for m in range(1, s + 1, 4):
            proof = store.consistency_proof(m, s)
            merkle.verify_consistency(m, s, proof, store.root_at(m), r)
    assert store.root_at(0) == merkle.EMPTY_ROOT
    with pytest.raises(NotFoundError):
        store.root_at(size + 1)
    with pytest.raises(UsageError):
        store.consistency_proof(0, size)
    with pytest.raises(UsageError):
        store.inclusion_proof(size, size)


def test_resent_duplicate_is_acknowledged_not_appended(
    store: LedgerStore, enrolled: Enroll
) -> None:
    node = enrolled("n1")
    envs = node.records(3)
    first = store.append_records("n1", envs, now=NOW)
    size = store.size()
    again = store.append_records("n1", envs, now=NOW)
    assert again.indexes == first.indexes
    assert again.duplicates == [0, 1, 2]
    assert store.size() == size
    # A batch that resends the tail of what was stored and continues with new records.
    more = node.records(2)
    mixed = store.append_records("n1", [envs[2], *more], now=NOW)
    assert mixed.indexes == [first.indexes[2], size, size + 1]
    assert mixed.duplicates == [0]
    # The same record twice inside one batch is stored once.
    nxt = node.record()
    res = store.append_records("n1", [nxt, nxt], now=NOW)
    assert res.indexes[0] == res.indexes[1] == size + 2
    assert res.duplicates == [1]


def test_unenrolled_node_is_refused(store: LedgerStore) -> None:
    stranger = SimNode("ghost")
    with pytest.raises(NodeNotEnrolledError) as exc:
        store.append_records("ghost", stranger.records(1), now=NOW)
    assert isinstance(exc.value, AccessDeniedError)
    assert store.size() == 0


def test_record_signed_by_another_nodes_key(store: LedgerStore, enrolled: Enroll) -> None:
    n1, n2 = enrolled("n1"), enrolled("n2")
    forged = n1.record(key=n2.key, advance=False)
    with pytest.raises(SignatureError):
        store.append_records("n1", [forged], now=NOW)
    assert store.node_head("n1") == (0, GENESIS_PREV)


def test_payload_naming_another_node(store: LedgerStore, enrolled: Enroll) -> None:
    n1 = enrolled("n1")
    enrolled("n2")
    env = n1.record(node_id="n2", advance=False)  # signed by n1's own key, claims to be n2
    with pytest.raises(AccessDeniedError, match="names node 'n2'"):
        store.append_records("n1", [env], now=NOW)
    with pytest.raises(SignatureError):  # and n2 cannot adopt it: n1 signed it
        store.append_records("n2", [env], now=NOW)


def test_sequence_gap_reports_expected(store: LedgerStore, enrolled: Enroll) -> None:
    node = enrolled("n1")
    store.append_records("n1", node.records(2), now=NOW)
    node.record()  # seq 3 is signed but never sent
    with pytest.raises(SequenceGapError) as exc:
        store.append_records("n1", [node.record()], now=NOW)
    assert exc.value.expected == 3
    assert store.node_head("n1")[0] == 2


def test_broken_prev_link(store: LedgerStore, enrolled: Enroll) -> None:
    node = enrolled("n1")
    store.append_records("n1", node.records(1), now=NOW)
    with pytest.raises(ChainBrokenError):
        store.append_records("n1", [node.record(prev="ab" * 32)], now=NOW)


def test_first_record_must_start_at_one(store: LedgerStore, enrolled: Enroll) -> None:
    node = enrolled("n1")
    with pytest.raises(SequenceGapError) as exc:
        store.append_records("n1", [node.record(seq=2)], now=NOW)
    assert exc.value.expected == 1


def test_equivocation_is_flagged_and_refused(store: LedgerStore, enrolled: Enroll) -> None:
    node = enrolled("n1")
    good = node.records(2)
    store.append_records("n1", good, now=NOW)
    size = store.size()
    other = node.record(seq=2, prev=node.node_id and store.find_entry("n1", 1).envelope_sha256,
                        model="different", advance=False)
    assert other != good[1]
    with pytest.raises(EquivocationError):
        store.append_records("n1", [other, node.record(advance=False)], now=NOW)
    assert store.size() == size
    flags = store.equivocations("n1")
    assert len(flags) == 1
    assert (flags[0].seq, flags[0].offered_envelope) == (2, other)
    assert flags[0].existing_sha256 == hashlib.sha256(good[1]).hexdigest()


def test_batch_is_all_or_nothing(store: LedgerStore, enrolled: Enroll) -> None:
    node = enrolled("n1")
    size = store.size()
    good = node.records(3)
    bad = node.record(key=keys.generate(), advance=False)
    for batch in ([*good, bad], [good[0], b"{not json", good[1]], [good[0], good[2]]):
        with pytest.raises((SignatureError, FormatError, SequenceGapError)):
            store.append_records("n1", batch, now=NOW)
        assert store.size() == size
        assert store.node_head("n1") == (0, GENESIS_PREV)
    assert store.append_records("n1", good, now=NOW).indexes == [size, size + 1, size + 2]


def test_malformed_and_oversize_batches(store: LedgerStore, enrolled: Enroll) -> None:
    enrolled("n1")
    for junk in (b"", b"[]", b'{"payload": "", "payloadType": "x", "signatures": []}'):
        with pytest.raises(FormatError):
            store.append_records("n1", [junk], now=NOW)
    with pytest.raises(UsageError):
        store.append_records("n1", [], now=NOW)
    with pytest.raises(UsageError):
        store.append_records("n1", [b"x"] * (MAX_BATCH + 1), now=NOW)
    with pytest.raises(AccessDeniedError):
        store.append_records("hub", [b"x"], now=NOW)


# --- enrollment, tokens, rotation --------------------------------------------------------------


def test_tokens_are_single_use_and_typed(store: LedgerStore) -> None:
    later = NOW + timedelta(hours=1)
    store.create_token("n1", _sha(1), later, now=NOW)
    store.create_token("n2", _sha(2), later, now=NOW)
    with pytest.raises(TokenUnknownError):
        store.consume_token(_sha(99), "n1", NOW)
    with pytest.raises(TokenNodeMismatchError):
        store.consume_token(_sha(1), "n2", NOW)
    with pytest.raises(TokenExpiredError):
        store.consume_token(_sha(2), "n2", later)
    store.consume_token(_sha(1), "n1", NOW)
    with pytest.raises(TokenUsedError):
        store.consume_token(_sha(1), "n1", NOW)


def test_register_with_token_is_atomic(store: LedgerStore) -> None:
    key = keys.generate()
    store.create_token("n1", _sha(1), NOW + timedelta(hours=1), now=NOW)
    with pytest.raises(TokenNodeMismatchError):
        store.register_node("n2", key.public, now=NOW, token_sha256=_sha(1))
    assert store.size() == 0
    with pytest.raises(NotFoundError):
        store.node_key("n2")
    idx = store.register_node("n1", key.public, now=NOW, token_sha256=_sha(1))
    assert store.node_key("n1") == key.public
    event = HubEvent.from_envelope(store.entry(idx).envelope, store_hub_key(store))
    assert event.kind is HubEventKind.ENROLLMENT
    assert event.body["public_key"] == key.public.b64
    assert event.body["token_sha256"] == _sha(1)
    with pytest.raises(TokenUsedError):
        store.register_node("n1", keys.generate().public, now=NOW, token_sha256=_sha(1))
    with pytest.raises(AlreadyEnrolledError):
        store.register_node("n1", keys.generate().public, now=NOW)


def store_hub_key(store: LedgerStore) -> keys.PublicKey:
    return hub_public_of(store)


def test_key_rotation(store: LedgerStore, enrolled: Enroll) -> None:
    node = enrolled("n1")
    store.append_records("n1", node.records(2), now=NOW)
    old, new = node.key, keys.generate()
    with pytest.raises(SignatureError):  # signed by the new key, not the old one
        wrong = new.sign(rotation_message("n1", old.public, new.public))
        store.rotate_node_key("n1", new.public, wrong, now=NOW)
    sig = old.sign(rotation_message("n1", old.public, new.public))
    idx = store.rotate_node_key("n1", new.public, sig, now=NOW)
    event = HubEvent.from_envelope(store.entry(idx).envelope, store_hub_key(store))
    assert event.kind is HubEventKind.KEY_ROTATION and event.body["new_key_id"] == new.key_id
    assert store.node_key("n1") == new.public
    history = store.node_keys("n1")
    assert [k.key_id for k in history] == [old.key_id, new.key_id]
    assert history[0].retired_at == NOW and history[1].retired_at is None
    with pytest.raises(SignatureError):  # the old key no longer appends
        store.append_records("n1", [node.record(advance=False)], now=NOW)
    node.key = new
    store.append_records("n1", [node.record()], now=NOW)
    with pytest.raises(NodeNotEnrolledError):
        store.rotate_node_key("nobody", new.public, sig, now=NOW)


# --- policies, approvals, heartbeats ---------------------------------------------------------


def test_policies(store: LedgerStore) -> None:
    p1 = store.add_policy("lending", 1, _sha(1), b"env1", now=NOW)
    p3 = store.add_policy("lending", 3, _sha(3), b"env3", now=NOW)
    store.add_policy("other", 1, _sha(4), b"env4", now=NOW)
    assert store.latest_policy("lending") == p3
    assert store.latest_policy().name == "other"  # type: ignore[union-attr]
    assert store.get_policy("lending", 1) == p1
    assert store.add_policy("lending", 3, _sha(3), b"env3", now=NOW) == p3  # idempotent
    for version, digest in ((2, _sha(2)), (3, _sha(9)), (1, _sha(1))):
        if (version, digest) == (1, _sha(1)):
            assert store.add_policy("lending", 1, digest, b"env1", now=NOW) == p1
            continue
        with pytest.raises(RollbackError):
            store.add_policy("lending", version, digest, b"x", now=NOW)
    with pytest.raises(NotFoundError):
        store.get_policy("lending", 2)
    assert store.latest_policy("nope") is None
    event = HubEvent.from_envelope(store.entry(p3.index).envelope, store_hub_key(store))
    assert event.kind is HubEventKind.POLICY_PUBLICATION
    assert dict(event.body) == {"name": "lending", "version": 3, "digest": _sha(3)}
    assert [p.version for p in store.policies()] == [1, 3, 1]


def test_approvals_and_heartbeats(store: LedgerStore) -> None:
    a = store.add_approval("risk_officer", "credit@7", b"approval-env", now=NOW)
    assert store.add_approval("risk_officer", "credit@7", b"approval-env", now=NOW) == a
    store.add_approval("ciso", "credit@8", b"other-env", now=NOW)
    assert [x.role for x in store.approvals()] == ["risk_officer", "ciso"]
    assert store.approvals(subject="credit@7") == [a]
    assert store.approvals(role="ciso")[0].subject == "credit@8"
    assert HubEvent.from_envelope(store.entry(a.index).envelope, store_hub_key(store)).body[
        "digest"
    ] == hashlib.sha256(b"approval-env").hexdigest()
    store.record_heartbeat("n1", now=NOW, agent_version="0.1.0")
    store.record_heartbeat("n1", now=NOW + timedelta(seconds=5), agent_version="0.1.1",
                           policy_name="lending", policy_version=3)
    (hb,) = store.heartbeats()
    assert (hb.last_seen, hb.agent_version, hb.policy_version) == (NOW + timedelta(seconds=5),
                                                                 "0.1.1", 3)


def test_hub_event_stream_is_chained_and_verifiable(store: LedgerStore, enrolled: Enroll) -> None:
    enrolled("a")
    store.add_policy("p", 1, _sha(1), b"e", now=NOW)
    enrolled("b")
    hub_pub = store_hub_key(store)
    prev = GENESIS_PREV
    for seq, e in enumerate(store.entries(0, store.size()), start=1):
        event = HubEvent.from_envelope(e.envelope, hub_pub)
        assert (event.seq, event.prev) == (seq, prev)
        prev = event.digest
    assert store.hub_head() == (3, prev)
    # A pre-built event must extend the stream exactly; a resend is acknowledged.
    from trust.record import build_hub_event, sign_hub_event

    env = sign_hub_event(
        build_hub_event(seq=4, prev=prev, time=NOW, kind="policy_publication",
                        body={"name": "q", "version": 1, "digest": _sha(5)}),
        keys.SigningKey.from_seed(bytes(range(32))),
    )
    idx = store.append_hub_event(env, now=NOW)
    assert store.append_hub_event(env, now=NOW) == idx
    with pytest.raises(SignatureError):
        store.append_hub_event(
            sign_hub_event(build_hub_event(seq=5, prev=store.hub_head()[1], time=NOW,
                                           kind="approval",
                                           body={"digest": _sha(6), "role": "r", "subject": "s"}),
                           keys.generate()),
            now=NOW,
        )


# --- checkpoints -------------------------------------------------------------------------------

ORIGIN = "warden.test/ledger"


def test_checkpoints(store: LedgerStore, enrolled: Enroll, hub_key: keys.SigningKey) -> None:
    assert store.sign_checkpoint(ORIGIN, ORIGIN, hub_key, now=NOW) is None  # empty tree
    node = enrolled("n1")
    c1 = store.sign_checkpoint(ORIGIN, ORIGIN, hub_key, now=NOW)
    assert c1 is not None and c1.size == 1
    assert store.sign_checkpoint(ORIGIN, ORIGIN, hub_key, now=NOW) == c1  # no growth, same one
    store.append_records("n1", node.records(6), now=NOW)
    c2 = store.sign_checkpoint(ORIGIN, ORIGIN, hub_key, now=NOW)
    assert c2 is not None and c2.size == 7
    parsed = ck.verify_checkpoint(c2.note, ORIGIN, hub_key.public, ORIGIN)
    assert parsed == c2.checkpoint and parsed.root_hash == store.root_at(7)
    merkle.verify_consistency(1, 7, store.consistency_proof(1, 7), c1.root_hash, c2.root_hash)
    assert store.latest_checkpoint() == c2
    assert store.checkpoint_at_least(2) == c2
    assert store.checkpoint_at_least(1) == c1
    assert store.checkpoint_at_least(8) is None
    assert store.checkpoint(1) == c1
    with pytest.raises(NotFoundError):
        store.checkpoint(3)


# --- several hub processes ----------------------------------------------------------------------


def test_concurrent_hubs_make_one_linear_chain(
    make_store: Callable[[], LedgerStore], hub_key: keys.SigningKey
) -> None:
    hubs = [make_store(), make_store()]
    nodes = [SimNode(f"n{i}") for i in range(4)]
    for n in nodes:
        hubs[0].register_node(n.node_id, n.key.public, now=NOW)
    errors: list[BaseException] = []

    def agent(i: int) -> None:
        hub, node = hubs[i % 2], nodes[i]
        try:
            for _ in range(8):
                hub.append_records(node.node_id, node.records(5), now=NOW)
                hub.sign_checkpoint(ORIGIN, ORIGIN, hub_key, now=NOW)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=agent, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    verify_whole_ledger(hubs[1], hub_key.public, {n.node_id: n.key.public for n in nodes})
    assert hubs[0].size() == 4 + 4 * 8 * 5
