"""The agent as a witness of the hub (agent/witness.py) against a real hub, honest or lying.

The hub is real (tests/hub/harness.py: TLS, servicers, SQLite ledger); the lies come from
tests/agent/lying_hub.py, which alters the real hub's answers and signs forged checkpoints with
the real hub key. The node's records come from a real outbox.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from agent.outbox import Outbox
from agent.witness import SCHEMA, Misbehaviour, MisbehaviourKind, Witness, WitnessReport
from hub.server import RunningHub, start
from protos.client import HubClient, NodeIdentity
from protos.types import AppendResult, ConsistencyProof, InclusionProof
from tests.hub.harness import HubWorld, enroll, make_world, running_hub
from tests.sim import NOW, SimNode
from trust import keys
from trust.canonical import Sha256
from trust.checkpoint import Checkpoint, parse_checkpoint, parse_note, sign_checkpoint
from trust.errors import ConfigError, FormatError, LedgerError, SignatureError
from trust.record import AuditRecord, EventType, Subject
from trust.root import TrustRoot

from .lying_hub import LyingHub, lying_client

ORIGIN = "test.warden/hub"


@dataclass
class Node:
    """One enrolled node: its outbox, its witness and its (possibly lying) hub."""

    world: HubWorld
    hub: RunningHub
    sim: SimNode
    root: TrustRoot
    outbox: Outbox
    witness: Witness
    client: LyingHub
    tmp: Path
    written: int = 0

    def write(self, n: int) -> None:
        """Append ``n`` ordinary records to the outbox."""
        for _ in range(n):
            self.written += 1
            self.outbox.append(event=EventType.ALERT, now=NOW + timedelta(seconds=self.written),
                               subject=Subject("credit-risk", str(self.written),
                                               Sha256("ab" * 32)))

    def push(self, *, resend: bool = False) -> AppendResult | None:
        """Push what is pending (or, ``resend``, every stored record) and record the acks as
        the daemon does; an ack the outbox refuses goes to the witness."""
        batch = tuple(self.outbox.entries()) if resend else self.outbox.pending(limit=1000)
        result = self.client.append([e.envelope for e in batch])
        try:
            self.outbox.acknowledge_many(
                (e.seq, a.index) for e, a in zip(batch, result.acks, strict=True))
        except LedgerError as exc:
            self.witness.ack_conflict(exc, self.outbox, now=self.now())
            return None
        return result

    def observe(self) -> WitnessReport:
        return self.witness.observe(self.client, self.outbox, self.root, now=self.now())

    def now(self) -> datetime:
        return NOW + timedelta(seconds=self.written + 1)

    def findings(self) -> list[AuditRecord]:
        records = [AuditRecord.from_envelope(e.envelope, self.sim.key.public)
                   for e in self.outbox.entries()]
        return [r for r in records if r.event is EventType.HUB_MISBEHAVIOUR]

    def reload(self) -> Witness:
        return Witness.load(self.tmp / "witness.json", origin=None)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    world = make_world(tmp_path / "w", verify_workers=0)
    with running_hub(world) as hub:
        sim = SimNode("emea-1")
        enrolled = enroll(world, hub, sim)
        root = TrustRoot.load(world.config.trust_root)
        witness = Witness.load(tmp_path / "witness.json", origin=None)
        witness.pin_origin(enrolled.checkpoint, root)
        with Outbox.open(tmp_path / "outbox.db", sim.node_id, sim.key) as outbox, \
                lying_client(world, hub, sim) as client:
            yield Node(world, hub, sim, root, outbox, witness, client, tmp_path)


# -- the honest hub ------------------------------------------------------------------------


def test_enrollment_pins_origin_and_first_checkpoint(node: Node) -> None:
    assert node.witness.origin == ORIGIN
    assert node.witness.last is not None and node.witness.last.size == 1  # the enrollment
    doc = json.loads((node.tmp / "witness.json").read_text())
    assert doc["schema"] == SCHEMA and doc["origin"] == ORIGIN and not doc["halted"]
    again = node.reload()
    assert again.origin == ORIGIN and again.last == node.witness.last


def test_honest_hub_every_record_proved_then_pruned(node: Node) -> None:
    node.write(5)
    result = node.push()
    assert result is not None
    # The checkpoint that came with the acks (the daemon's path) proves all five.
    cp = node.witness.observe_checkpoint(result.checkpoint, node.root, node.client)
    assert node.witness.prove_records(node.client, node.outbox, cp) == 5
    assert node.witness.can_prune()
    assert node.outbox.prune() == 5
    assert list(node.outbox.entries()) == []
    # Later rounds (the periodic path) verify consistency from there and prove the rest.
    node.write(3)
    node.push()
    report = node.observe()
    assert report.reachable and report.misbehaviour is None and report.error is None
    assert report.proved == 3 and report.checkpoint is not None and report.checkpoint.size == 9
    assert node.outbox.prune() == 3
    assert node.observe().proved == 0  # nothing new: nothing to do
    assert node.client.lies_told == 0 and node.findings() == []
    assert node.reload().last == report.checkpoint  # kept across restarts


def test_records_not_yet_covered_wait_for_a_later_checkpoint(node: Node) -> None:
    before = node.client.get_checkpoint()  # size 1: the enrollment
    node.write(2)
    node.push()
    cp = node.witness.observe_checkpoint(before, node.root, node.client)
    assert node.witness.prove_records(node.client, node.outbox, cp) == 0
    assert len(node.outbox.unproved()) == 2 and not node.witness.halted


# -- lies ----------------------------------------------------------------------------------
#
# Each case starts from: 3 records pushed, proved under a checkpoint of size 4 (kept), and
# pruned; then 2 more records (seq 4, 5 at indices 4, 5). `lie` sets the lie and pushes the
# 2 records; `observe` then runs a witness round, unless the push itself caught the lie.


def _push_then(lie: Callable[[LyingHub], None]) -> Callable[[Node], None]:
    def run(n: Node) -> None:
        n.push()
        lie(n.client)
    return run


def _lie_then_push(lie: Callable[[LyingHub], None]) -> Callable[[Node], None]:
    def run(n: Node) -> None:
        lie(n.client)
        n.push()
    return run


def _resend_with_moved_acks(n: Node) -> None:
    n.push()
    n.client.move_acks(+1)
    n.push(resend=True)


LIES = {
    # a smaller tree after a larger one: the hub's own old checkpoint
    "rollback": (_push_then(lambda c: c.rollback(1)), MisbehaviourKind.ROLLBACK),
    # a second tree of the size already seen, with a record rewritten
    "fork": (_push_then(lambda c: c.rewrite(3, size=4)), MisbehaviourKind.FORK),
    # a larger tree whose history differs from the one seen (a proved record rewritten)
    "rewrite seen": (_push_then(lambda c: c.rewrite(2)), MisbehaviourKind.INCONSISTENT),
    "drop seen": (_push_then(lambda c: c.drop(1)), MisbehaviourKind.INCONSISTENT),
    # the history seen is kept, but a new record of this node is rewritten or dropped
    "rewrite new": (_push_then(lambda c: c.rewrite(5)), MisbehaviourKind.RECORD_NOT_INCLUDED),
    "drop new": (_push_then(lambda c: c.drop(4)), MisbehaviourKind.RECORD_NOT_INCLUDED),
    "bad proof": (_push_then(lambda c: c.bad_proofs()), MisbehaviourKind.RECORD_NOT_INCLUDED),
    # acknowledged at an index holding another record (moved)
    "moved": (_lie_then_push(lambda c: c.move_acks(+1)), MisbehaviourKind.RECORD_NOT_INCLUDED),
    # acknowledgements out of order, or a resend acknowledged at another index
    "reordered": (_lie_then_push(lambda c: c.reorder_acks()), MisbehaviourKind.ACK_CONFLICT),
    "re-acked elsewhere": (_resend_with_moved_acks, MisbehaviourKind.ACK_CONFLICT),
}


@pytest.mark.parametrize("name", list(LIES))
def test_each_lie_is_detected_recorded_once_and_stops_pruning(
    node: Node, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    lie, kind = LIES[name]
    node.write(3)
    node.push()
    assert node.observe().proved == 3 and node.outbox.prune() == 3
    assert node.witness.last is not None and node.witness.last.size == 4
    node.write(2)

    with caplog.at_level(logging.ERROR, logger="warden.agent.witness"):
        lie(node)
        if not node.witness.halted:
            report = node.observe()
            assert report.misbehaviour is not None and report.misbehaviour.kind is kind
    assert node.client.lies_told > 0

    # Detected: halted, persisted, logged with its kind, recorded exactly once.
    assert node.witness.halted and not node.witness.can_prune()
    assert node.witness.halt_reason is not None and node.witness.halt_reason.startswith(kind)
    logged = [r for r in caplog.records if r.name == "warden.agent.witness"
              and r.levelno == logging.ERROR and getattr(r, "fields", {}).get("kind") == kind]
    assert len(logged) == 1
    (finding,) = node.findings()
    assert finding.evidence["kind"] == kind and finding.evidence["origin"] == ORIGIN
    assert finding.subject.model == f"hub:{ORIGIN}"
    for note in finding.evidence["checkpoints"]:  # the signed notes involved, verbatim
        assert parse_checkpoint(parse_note(note).text).origin == ORIGIN
    assert isinstance(finding.evidence["detail"], str) and finding.evidence["detail"]

    # The same lie again (also after a restart) is logged, not recorded a second time; even
    # an honest hub now gets nothing marked proved, so nothing it may have lost is pruned.
    proved_before = {e.seq for e in node.outbox.entries() if e.proved}
    assert proved_before <= {4}  # only a record really proved before the lie was caught
    restarted = node.reload()
    assert restarted.halted and restarted.halt_reason == node.witness.halt_reason
    node.witness = restarted
    if kind is not MisbehaviourKind.ACK_CONFLICT:
        assert node.observe().misbehaviour is not None
    assert len(node.findings()) == 1
    node.client.honest()
    # The hub_misbehaviour record is pushed when possible: after "moved" the honest index
    # contradicts the moved acks, which is one more finding, not a push.
    if node.push() is not None:
        assert node.outbox.depth() == 0
    else:
        assert name == "moved" and len(node.findings()) == 2
    assert node.observe().proved == 0
    assert {e.seq for e in node.outbox.entries() if e.proved} == proved_before
    assert not node.witness.can_prune()
    assert node.outbox.prune() == len(proved_before)
    assert {5, 6} <= {e.seq for e in node.outbox.entries()}  # the lied-about and the finding
    assert node.reload().halted


def test_a_halt_is_lifted_only_by_clear_halt(node: Node) -> None:
    node.write(1)
    node.push()
    assert node.observe().proved == 1  # kept: a checkpoint of size 2
    node.client.rollback(1)
    assert node.observe().misbehaviour is not None
    node.client.honest()
    node.write(1)
    node.push()  # the hub_misbehaviour record (seq 2) and seq 3
    assert node.observe().proved == 0 and node.reload().halted
    node.witness.clear_halt()
    assert not node.reload().halted and node.witness.can_prune()
    # The finding stays known (not recorded twice); proving resumes.
    assert node.observe().proved == 2
    assert len(node.findings()) == 1
    assert node.outbox.prune() == 3


def test_a_finding_the_outbox_cannot_take_is_kept_and_written_later(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trust.errors import StorageFullError

    node.write(1)
    node.push()
    assert node.observe().proved == 1
    node.client.rollback(1)

    def full(**_: object) -> None:
        raise StorageFullError("outbox is full")

    with monkeypatch.context() as m:
        m.setattr(node.outbox, "append", full)
        assert node.observe().misbehaviour is not None
    # Halted at once, the finding kept in the witness state, not yet in the outbox.
    assert node.findings() == [] and node.reload().halted
    assert [f["recorded"] for f in json.loads(
        (node.tmp / "witness.json").read_text())["findings"]] == [False]
    # After a restart, the next round writes it (once), whatever the hub says now.
    node.witness = node.reload()
    node.client.honest()
    node.observe()
    node.observe()
    (finding,) = node.findings()
    assert finding.evidence["kind"] == MisbehaviourKind.ROLLBACK


# -- what is not misbehaviour --------------------------------------------------------------


def test_unreachable_hub_is_not_misbehaviour(tmp_path: Path) -> None:
    world = make_world(tmp_path / "w", verify_workers=0)
    sim = SimNode("emea-1")
    hub = start(world.config)
    try:
        enrolled = enroll(world, hub, sim)
    finally:
        hub.stop(grace=1.0)
    root = TrustRoot.load(world.config.trust_root)
    witness = Witness.load(tmp_path / "witness.json", origin=None)
    witness.pin_origin(enrolled.checkpoint, root)
    with Outbox.open(tmp_path / "outbox.db", sim.node_id, sim.key) as outbox, \
            HubClient(f"127.0.0.1:{hub.port}", ca_cert=world.ca, timeout=2,
                      node=NodeIdentity(sim.node_id, sim.key)) as client:
        report = witness.observe(client, outbox, root, now=NOW)
        assert not report.reachable and report.misbehaviour is None and report.error
        assert not witness.halted and not Witness.load(tmp_path / "witness.json",
                                                       origin=None).halted
        assert list(outbox.entries()) == []


class _Serves:
    """A hub that only ever answers GetCheckpoint with ``note`` (no proofs are reached)."""

    def __init__(self, note: bytes) -> None:
        self.note = note

    def get_checkpoint(self, tree_size: int | None = None) -> bytes:
        return self.note

    def inclusion_proof(self, index: int, tree_size: int | None = None) -> InclusionProof:
        raise AssertionError("no proof may be asked under an unverified checkpoint")

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        raise AssertionError("no proof may be asked under an unverified checkpoint")


def test_unverifiable_checkpoint_is_refused_but_not_a_finding(node: Node) -> None:
    assert node.witness.last is not None
    forged = Checkpoint(ORIGIN, 7, b"\x07" * 32)
    for note in (sign_checkpoint(forged, ORIGIN, keys.generate()),   # not the hub's key
                 sign_checkpoint(forged, "other.log", node.world.officers.hub)):  # other log
        with pytest.raises(SignatureError):
            node.witness.observe_checkpoint(note, node.root, _Serves(note))
        report = node.witness.observe(_Serves(note), node.outbox, node.root, now=NOW)
        assert report.reachable and report.error and report.misbehaviour is None
    assert not node.witness.halted and node.findings() == []
    assert node.witness.last.size == 1  # nothing adopted


# -- the state file ------------------------------------------------------------------------


def test_origin_mismatch_is_refused(node: Node) -> None:
    with pytest.raises(ConfigError, match="other.log"):
        Witness.load(node.tmp / "witness.json", origin="other.log")
    # A fresh node configured for another log refuses this hub's checkpoint at enrollment.
    fresh = Witness.load(node.tmp / "fresh.json", origin="other.log")
    with pytest.raises(ConfigError, match=ORIGIN):
        fresh.pin_origin(node.client.get_checkpoint(), node.root)
    assert not (node.tmp / "fresh.json").exists()


def test_pin_refuses_a_checkpoint_the_hub_did_not_sign(tmp_path: Path) -> None:
    world = make_world(tmp_path / "w")
    root = TrustRoot.load(world.config.trust_root)
    note = sign_checkpoint(Checkpoint(ORIGIN, 1, b"\x01" * 32), ORIGIN, keys.generate())
    witness = Witness.load(tmp_path / "witness.json", origin=None)
    with pytest.raises(SignatureError):
        witness.pin_origin(note, root)
    assert witness.origin is None and not (tmp_path / "witness.json").exists()


def test_ack_conflict_passes_storage_errors_through(node: Node) -> None:
    from trust.errors import StorageFullError

    with pytest.raises(StorageFullError):
        node.witness.ack_conflict(StorageFullError("disk full"), node.outbox, now=NOW)
    assert not node.witness.halted


@pytest.fixture(scope="module")
def good_state(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A witness state as enrollment leaves it (one hub for all the garbling cases)."""
    tmp = tmp_path_factory.mktemp("state")
    world = make_world(tmp / "w", verify_workers=0)
    with running_hub(world) as hub:
        enrolled = enroll(world, hub, SimNode("emea-1"))
    witness = Witness.load(tmp / "witness.json", origin=None)
    witness.pin_origin(enrolled.checkpoint, TrustRoot.load(world.config.trust_root))
    return json.loads((tmp / "witness.json").read_text())  # type: ignore[no-any-return]


GARBLED: dict[str, Callable[[dict[str, object]], bytes]] = {
    "not json": lambda d: b"{not json",
    "not an object": lambda d: b"[]",
    "duplicate key": lambda d: b'{"halted": false, "halted": true}',
    "unknown schema": lambda d: json.dumps({**d, "schema": "warden.witness/v9"}).encode(),
    "unknown field": lambda d: json.dumps({**d, "extra": 1}).encode(),
    "halted not a bool": lambda d: json.dumps({**d, "halted": "no"}).encode(),
    "checkpoint garbled": lambda d: json.dumps({**d, "last_checkpoint": "x\n"}).encode(),
    "checkpoint of another log": lambda d: json.dumps(
        {**d, "last_checkpoint": str(d["last_checkpoint"]).replace(ORIGIN, "other.log")}).encode(),
    "finding garbled": lambda d: json.dumps({**d, "findings": [{"kind": "fork"}]}).encode(),
}


@pytest.mark.parametrize("name", list(GARBLED))
def test_garbled_state_file_is_a_clear_error(
    tmp_path: Path, good_state: dict[str, object], name: str
) -> None:
    path = tmp_path / "witness.json"
    path.write_text(json.dumps(good_state))
    assert Witness.load(path, origin=None).origin == ORIGIN
    path.write_bytes(GARBLED[name](good_state))
    with pytest.raises(FormatError) as info:
        Witness.load(path, origin=None)
    assert str(path) in info.value.message and info.value.hint


def test_misbehaviour_is_a_typed_trust_error() -> None:
    m = Misbehaviour(MisbehaviourKind.FORK, "two roots")
    assert m.exit_code == 1 and "fork" in m.message and m.hint
    assert m.fingerprint == Misbehaviour(MisbehaviourKind.FORK, "other words").fingerprint
    assert m.fingerprint != Misbehaviour(MisbehaviourKind.FORK, "x", facts={"size": 2}).fingerprint
