"""Resends across a key rotation, equivocation evidence, and in-batch forks (every backend)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest

from hub.ledger.errors import NodeNotEnrolledError
from hub.ledger.store import LedgerStore
from tests.ledger.conftest import set_node_status
from tests.sim import NOW, SimNode
from trust import keys
from trust.errors import EquivocationError, FormatError, NotFoundError, SignatureError
from trust.record import rotation_message

Enroll = Callable[[str], SimNode]


def _rotate(store: LedgerStore, node: SimNode) -> keys.SigningKey:
    old, new = node.key, keys.generate()
    sig = old.sign(rotation_message(node.node_id, old.public, new.public))
    store.rotate_node_key(node.node_id, new.public, sig, now=NOW)
    node.key = new
    return old


def test_resend_after_key_rotation_is_acknowledged(store: LedgerStore, enrolled: Enroll) -> None:
    node = enrolled("n1")
    envs = node.records(3)
    first = store.append_records("n1", envs, now=NOW)
    old = _rotate(store, node)
    size = store.size()
    # The ack of seq 3 was lost: the agent resends it, signed by the old key, forever.
    again = store.append_records("n1", [envs[2]], now=NOW)
    assert again.indexes == [first.indexes[2]] and again.duplicates == [0]
    # A resend of old records followed by new ones under the new key, in one batch.
    nxt = node.records(2)
    mixed = store.append_records("n1", [*envs, *nxt], now=NOW)
    assert mixed.indexes == [*first.indexes, size, size + 1]
    assert mixed.duplicates == [0, 1, 2]
    assert store.size() == size + 2
    # New records are still refused under the retired key.
    with pytest.raises(SignatureError):
        store.append_records("n1", [node.record(key=old, advance=False)], now=NOW)


def test_equivocation_under_a_retired_key_is_flagged(store: LedgerStore, enrolled: Enroll) -> None:
    node = enrolled("n1")
    good = node.records(2)
    store.append_records("n1", good, now=NOW)
    old = _rotate(store, node)
    prev = store.find_entry("n1", 1).envelope_sha256
    fork = node.record(seq=2, prev=prev, model="other", key=old, advance=False)
    with pytest.raises(EquivocationError):
        store.append_records("n1", [fork], now=NOW)
    flags = store.equivocations("n1")
    assert [(f.seq, f.offered_envelope) for f in flags] == [(2, fork)]
    assert flags[0].existing_sha256 == hashlib.sha256(good[1]).hexdigest()
    # Signed by the current key, a different seq 2 is equivocation by the node too.
    fork2 = node.record(seq=2, prev=prev, model="third", advance=False)
    with pytest.raises(EquivocationError):
        store.append_records("n1", [fork2], now=NOW)
    assert len(store.equivocations("n1")) == 2


def test_forged_equivocation_by_a_stranger_is_not_flagged(
    store: LedgerStore, enrolled: Enroll
) -> None:
    node = enrolled("n1")
    store.append_records("n1", node.records(2), now=NOW)
    _rotate(store, node)
    prev = store.find_entry("n1", 1).envelope_sha256
    forged = node.record(seq=2, prev=prev, model="forged", key=keys.generate(), advance=False)
    with pytest.raises(SignatureError):
        store.append_records("n1", [forged], now=NOW)
    assert store.equivocations("n1") == []


def test_a_key_retired_before_a_seq_cannot_equivocate_on_it(
    store: LedgerStore, enrolled: Enroll
) -> None:
    node = enrolled("n1")
    first = node.key
    store.append_records("n1", node.records(1), now=NOW)
    _rotate(store, node)
    store.append_records("n1", node.records(2), now=NOW)  # seq 2, 3 under the second key
    prev = store.find_entry("n1", 2).envelope_sha256
    fork = node.record(seq=3, prev=prev, model="other", key=first, advance=False)
    with pytest.raises(SignatureError):
        store.append_records("n1", [fork], now=NOW)
    assert store.equivocations("n1") == []


def test_two_versions_of_one_seq_in_a_batch_are_malformed_not_flagged(
    store: LedgerStore, enrolled: Enroll
) -> None:
    node = enrolled("n1")
    store.append_records("n1", node.records(3), now=NOW)
    size = store.size()
    head = store.node_head("n1")
    a = node.record(advance=False)
    b = node.record(model="other", advance=False)
    assert a != b
    with pytest.raises(FormatError, match="two different records with seq 4"):
        store.append_records("n1", [a, b], now=NOW)
    assert store.equivocations() == []
    assert store.size() == size and store.node_head("n1") == head
    with pytest.raises(NotFoundError):
        store.find_entry("n1", 4)


def test_a_revoked_node_neither_appends_nor_authenticates(
    store: LedgerStore, enrolled: Enroll
) -> None:
    node = enrolled("n1")
    envs = node.records(2)
    store.append_records("n1", envs, now=NOW)
    set_node_status(store, "n1", "revoked")
    with pytest.raises(NotFoundError):
        store.node_key("n1")
    with pytest.raises(NodeNotEnrolledError):
        store.append_records("n1", [envs[1]], now=NOW)
    with pytest.raises(NodeNotEnrolledError):
        new = keys.generate()
        sig = node.key.sign(rotation_message("n1", node.key.public, new.public))
        store.rotate_node_key("n1", new.public, sig, now=NOW)
    assert store.node("n1").status == "revoked"  # still listed, for operators
