"""Issue 10's "done when", end to end with real processes: a ``warden hub serve`` process on
SQLite and two ``warden agent run`` daemons (node directories from ``warden agent init``,
enrolled with ``warden agent enroll``) govern real scikit-learn models (.skops) on their own
validation data.

The story, each step waited for on observable state (log lines read from the daemons' stderr
pipes, stage pointer files, the nodes' status, the ledger through an auditor client):

1. versions dropped into the registries before any policy wait (fail closed);
2. policy v1 published → both agents apply it; node A's compliant model is promoted (stage
   pointer, ``promote`` record), node B's biased one is blocked (``block`` record with the
   standard policy's fairness violations);
3. policy v2 published → each agent applies it within 1 s of the publish call returning;
4. the hub is SIGKILLed; a new compliant version is governed on both nodes while it is away
   (records wait in the outbox); the hub restarts on the same port and both outboxes drain:
   nothing to push, nothing unproved, proved records pruned;
5. the ledger holds every record of each node exactly once (seqs 1..head, no duplicate),
   verifies (signatures, per-node chains, Merkle root under the signed checkpoint, and the
   whole-ledger audit of the store), and no record carries a row of validation data;
6. SIGTERM → both agents exit 0.
"""

from __future__ import annotations

import base64
import json
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.agent.daemon_world import (
    MODEL,
    ORIGIN,
    Agents,
    HubProcess,
    Trust,
    init_node,
    is_policy_applied,
    iter_entries,
    make_hub,
    make_trust,
    node_status,
    run_warden,
    stage_of,
    standard_bundle,
    wait_until,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from gen_credit_model import credit_table, write_release  # noqa: E402

pytestmark = pytest.mark.slow

# The goal: publish → applied at every agent, p99 ≤ 1 s. Asserted per agent.
APPLY_WITHIN_S = 1.0
# The first validation in a daemon imports NumPy, SciPy, pyarrow, scikit-learn and starts
# the policy worker: seconds on a loaded CI machine.
FIRST_DECISION_S = 60.0


def _release(d: Path, version: str, *, bias: float, seed: int) -> Path:
    """A trained release in a staging registry (not yet in any node's registry)."""
    return write_release(d, MODEL, version, bias=bias, seed=seed)


def drop(release: Path, config: Path) -> None:
    """Publish a release into the node's registry as a publisher does: everything but
    ``READY`` first, then ``READY``."""
    dest = config.parent / "models" / MODEL / release.name
    shutil.copytree(release, dest, ignore=shutil.ignore_patterns("READY"))
    (dest / "READY").touch()


def publish(hub: HubProcess, envelope: bytes) -> float:
    """Publish as compliance; the monotonic time the call returned."""
    with hub.client("compliance") as c:
        c.publish(envelope)
        return time.monotonic()


def _drained(config: Path) -> dict[str, Any] | None:
    ob = node_status(config)["outbox"]
    return ob if ob.get("depth") == 0 and ob.get("unproved") == 0 else None


def _records(entries: list[Any], node_id: str, node_key: Any) -> list[Any]:
    from trust.record import AuditRecord

    return [AuditRecord.from_envelope(e.envelope, node_key) for e in entries
            if e.node_id == node_id]


def _payload_text(envelope: bytes) -> str:
    return base64.b64decode(json.loads(envelope)["payload"]).decode("utf-8")


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[tuple[HubProcess, Trust]]:
    trust = make_trust(tmp_path / "trust")
    h = make_hub(tmp_path, trust)
    yield h, trust
    h.kill()


def test_two_agents_govern_publish_and_survive_a_hub_outage(
    tmp_path: Path, hub: tuple[HubProcess, Trust], agents: Agents
) -> None:
    from agent.outbox import Outbox
    from hub.config import load_config
    from hub.ledger.store import LedgerStore
    from tests.ledger.ledger_helpers import verify_whole_ledger
    from trust import keys, merkle
    from trust.hub_checkpoint import verify_hub_checkpoint
    from trust.record import EventType
    from trust.root import TrustRoot

    h, trust = hub
    rel = tmp_path / "releases"
    data = {"emea-1": tmp_path / "emea-validation.parquet",
            "apac-1": tmp_path / "apac-validation.parquet"}
    releases: dict[str, Path] = {}

    def train() -> None:  # while the hub and the nodes are set up (processes: GIL released)
        pq.write_table(credit_table(4000, seed=11), data["emea-1"])
        pq.write_table(credit_table(4000, seed=12), data["apac-1"])
        releases["fair-1.0.0"] = _release(rel / "fair", "1.0.0", bias=0.0, seed=3)
        releases["biased-1.0.0"] = _release(rel / "biased", "1.0.0", bias=0.2, seed=4)
        releases["fair-1.1.0"] = _release(rel / "fair", "1.1.0", bias=0.0, seed=5)

    trainer = threading.Thread(target=train)
    trainer.start()
    h.start()
    trainer.join()  # the validation data goes into the node directories
    nodes = tmp_path / "nodes"
    nodes.mkdir()
    with ThreadPoolExecutor(2) as pool:
        a_cfg, b_cfg = pool.map(
            lambda n: init_node(nodes, n, h, trust, data=data[n]), ("emea-1", "apac-1"))
    configs = {"emea-1": a_cfg, "apac-1": b_cfg}
    a = agents.start(a_cfg, tee=tmp_path / "emea-1.log")
    b = agents.start(b_cfg, tee=tmp_path / "apac-1.log")
    both = ((a, a_cfg), (b, b_cfg))

    # 1. Versions before any policy: they wait (fail closed), nothing is promoted.
    drop(releases["fair-1.0.0"], a_cfg)
    drop(releases["biased-1.0.0"], b_cfg)
    for agent, cfg in both:
        agent.wait_log(lambda o: o.get("msg", "").startswith("model versions wait"), 20,
                       "versions waiting for a policy")
        assert stage_of(cfg, "staging") is None

    # 2. v1 → applied by both; compliant promoted on A, biased blocked on B.
    publish(h, standard_bundle(trust, 1))
    for agent, _ in both:
        agent.wait_log(is_policy_applied(1), 10, "policy v1 applied")
    promoted = a.wait_log(lambda o: o.get("msg") == "model version promoted", FIRST_DECISION_S,
                          "A's compliant version promoted")
    assert (promoted.obj["version"], promoted.obj["stage"]) == ("1.0.0", "staging")
    assert stage_of(a_cfg, "staging") == "1.0.0"
    blocked = b.wait_log(lambda o: o.get("msg") == "model version blocked by policy",
                         FIRST_DECISION_S, "B's biased version blocked")
    assert blocked.obj["version"] == "1.0.0"
    assert any(v.startswith("fairness.") for v in blocked.obj["violations"]), blocked.obj
    assert stage_of(b_cfg, "staging") is None

    # 3. v2 → applied by each agent within a second of the publish call returning.
    marks = [agent.mark() for agent, _ in both]
    published_at = publish(h, standard_bundle(trust, 2))
    latencies = {}
    for (agent, cfg), mark in zip(both, marks, strict=True):
        line = agent.wait_log(is_policy_applied(2), 10, "policy v2 applied", since=mark)
        latencies[cfg.parent.name] = line.at - published_at
    print(f"publish → policy_applied: {latencies}")
    assert all(t <= APPLY_WITHIN_S for t in latencies.values()), latencies

    # 4. Hub killed; both nodes keep governing; records wait; the hub comes back on its port.
    h.kill()
    for _, cfg in both:
        drop(releases["fair-1.1.0"], cfg)
    for _, cfg in both:
        wait_until(lambda c=cfg: stage_of(c, "staging") == "1.1.0", 30,
                   f"{cfg.parent.name} promoting 1.1.0 while the hub is away")
        assert node_status(cfg)["outbox"]["depth"] >= 1  # the promote record waits
    h.start()
    for _, cfg in both:
        wait_until(lambda c=cfg: _drained(c), 30, f"{cfg.parent.name}'s outbox to drain")

    # 5. The ledger: each record exactly once, in order, proved, verified; no raw row.
    heads = {}
    for node_id, cfg in configs.items():
        st = json.loads(run_warden("agent", "status", "--config", str(cfg), "--json").stdout)
        assert (st["outbox"]["depth"], st["outbox"]["unproved"]) == (0, 0), st
        assert st["policy"]["policy"]["version"] == 2
        assert st["witness"]["halted"] is False
        heads[node_id] = st["outbox"]["head_seq"]
    node_keys = {n: keys.load_private(c.parent / "node.key") for n, c in configs.items()}
    root = TrustRoot.load(trust.root)
    with h.client("auditor") as auditor:
        entries = list(iter_entries(auditor))
        cp = verify_hub_checkpoint(root, auditor.get_checkpoint(), origin=ORIGIN)
    assert [e.index for e in entries] == list(range(len(entries)))
    assert cp.size == len(entries)
    assert merkle.root([merkle.leaf_hash(e.envelope) for e in entries]) == cp.root_hash
    events = {}
    for node_id, key in node_keys.items():
        recs = _records(entries, node_id, key.public)
        assert [r.seq for r in recs] == list(range(1, heads[node_id] + 1)), node_id
        events[node_id] = [(r.event, r.subject.version) for r in recs]
    # Each validated version: model_validated (card digests, advice), then its decision.
    validated = EventType.MODEL_VALIDATED
    assert events["emea-1"] == [
        (EventType.POLICY_APPLIED, "1"), (validated, "1.0.0"), (EventType.PROMOTE, "1.0.0"),
        (EventType.POLICY_APPLIED, "2"), (validated, "1.1.0"), (EventType.PROMOTE, "1.1.0"),
    ], events
    assert events["apac-1"] == [
        (EventType.POLICY_APPLIED, "1"), (validated, "1.0.0"), (EventType.BLOCK, "1.0.0"),
        (EventType.POLICY_APPLIED, "2"), (validated, "1.1.0"), (EventType.PROMOTE, "1.1.0"),
    ], events
    apac = _records(entries, "apac-1", node_keys["apac-1"].public)
    [block] = [r for r in apac if r.event is EventType.BLOCK]
    assert block.decision is not None and block.decision.allow is False
    assert {v["rule"] for v in block.decision.violations} >= {
        "fairness.demographic_parity_difference"}
    # The fairness block's model_validated record carries fairlearn's advice.
    [blocked_validation] = [r for r in apac if r.event is validated
                            and r.subject.version == "1.0.0"]
    assert blocked_validation.evidence["advice"]["method"] == \
        "fairlearn.postprocessing.ThresholdOptimizer"
    # Aggregates only: no applicant of either node's data appears in any record.
    ids = [pq.read_table(p, columns=["applicant_id"])["applicant_id"].to_pylist()
           for p in data.values()]
    texts = [_payload_text(e.envelope) for e in entries]
    assert ids[0][0].startswith("app-0011-") and ids[1][0].startswith("app-0012-")
    assert not [t for t in texts if "app-0011-" in t or "app-0012-" in t]

    # 6. SIGTERM: both drain and exit 0; what they proved is pruned from their outboxes.
    for agent, _ in both:
        assert agent.terminate() == 0
        agent.wait_log(lambda o: o.get("msg") == "agent stopped", 1, "the stop line")
    for node_id, cfg in configs.items():
        with Outbox.open(cfg.parent / "outbox.db", node_id, node_keys[node_id]) as ob:
            assert list(ob.entries()) == [], f"{node_id}: proved records not pruned"
    # A hub outage is a warning, never an error (and never a traceback).
    assert [x for agent, _ in both for x in agent.errors()] == []
    assert h.stop() == 0
    config = load_config(h.config, env={})
    store = LedgerStore.open(config.database, hub_key=trust.officers.hub)
    try:
        verify_whole_ledger(store, trust.officers.hub.public,
                            {n: k.public for n, k in node_keys.items()}, origin=ORIGIN)
    finally:
        store.close()
