"""Every attack of :data:`tests.ledger_attacks.LEDGER_ATTACKS` against the store itself (SQLite
and PostgreSQL): refused with the table's typed error, nothing appended (size, the node's
head and the other node's head unchanged), and the honest node appends its next record after.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hub.ledger.store import LedgerStore
from tests.ledger_attacks import LEDGER_ATTACKS, AttackScene, LedgerAttack, attack_params
from tests.sim import NOW, SimNode
from trust.errors import SequenceGapError
from trust.record import HUB_NODE_ID, envelope_digest

Enroll = Callable[[str], SimNode]


def _scene(store: LedgerStore, enrolled: Enroll, attack: LedgerAttack) -> AttackScene:
    node = enrolled("n1")
    (hub_event,) = [e.envelope for e in store.entries(0, store.size())
                    if e.node_id == HUB_NODE_ID]
    other = enrolled("n2")
    store.append_records("n1", node.records(2), now=NOW)
    store.append_records("n2", other.records(1), now=NOW)
    if attack.rotated:
        rotation = node.rotate()
        store.rotate_node_key("n1", rotation.new.public, rotation.signature, now=NOW)
    return AttackScene(node, other, hub_event)


@pytest.mark.parametrize("attack", attack_params())
def test_attack_is_refused_and_changes_nothing(
    store: LedgerStore, enrolled: Enroll, attack: LedgerAttack
) -> None:
    scene = _scene(store, enrolled, attack)
    batch = attack.forge(scene)
    size = store.size()
    heads = store.node_head("n1"), store.node_head("n2")
    with pytest.raises(attack.error, match=attack.match) as err:
        store.append_records("n1", batch, now=NOW)
    if attack.expected_seq is not None:
        assert isinstance(err.value, SequenceGapError)
        assert err.value.expected == attack.expected_seq
    assert store.size() == size
    assert (store.node_head("n1"), store.node_head("n2")) == heads
    # The honest node is not locked out by what was attempted in its name.
    honest = scene.node.record()
    assert store.append_records("n1", [honest], now=NOW).indexes == [size]
    assert store.node_head("n1") == (3, envelope_digest(honest))


def test_the_table_covers_every_misbehaviour_of_the_simulator() -> None:
    names = [a.name for a in LEDGER_ATTACKS]
    assert len(set(names)) == len(names)
    for word in ("fork", "skip", "replay", "wrong_key", "retired_key", "break_prev"):
        assert any(word in n for n in names), word


def test_misbehaviour_leaves_the_simulated_stream_where_it_was() -> None:
    node, other = SimNode("n1"), SimNode("n2")
    first = node.records(2)
    head = node.seq, node.prev
    node.rotate()
    forged = [node.fork(), node.fork(1), node.skip(), node.signed_by(other.key),
              node.with_retired_key(), node.broken_prev(), node.naming("n2"),
              node.record(seq=3, advance=False)]
    assert (node.seq, node.prev) == head
    assert len(set(forged)) == len(forged)  # every call signs different bytes
    assert node.replay(1) == first[0] and node.prev_of(3) == envelope_digest(first[1])
    assert node.record() not in forged and node.seq == 3
