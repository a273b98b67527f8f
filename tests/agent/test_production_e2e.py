"""Issue 11's "done when", with real processes: a ``warden hub serve`` process and a
``warden agent run`` daemon govern a model in production.

1. Two compliant versions are promoted to ``production`` in turn (1.0.0, then 1.1.0); each
   has a ``model_validated`` record whose model-card digests are those of the files the node
   wrote.
2. An inference batch whose ``income`` drifted (the standard policy's critical column) lands
   in the monitoring inputs, in a window already closed: the agent records a ``drift_alert``
   for 1.1.0 with evidently's HTML report digest, rolls production back to 1.0.0 (the
   ``rollback`` record comes before the pointer moves), and runs the retraining hook, whose
   outcome is a ``retrain_triggered`` record.
3. The ledger holds all of it, every record verified under the node's key, the digests equal
   to the files at the node; ``/metrics`` counts the alert and the rollback.

The same story then runs against a local MLflow store (``registry_kind: mlflow``): aliases
instead of pointer files, the decision written back as version tags, and a version registered
while the agent runs.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.agent.daemon_world import (
    MODEL,
    AgentProcess,
    Agents,
    HubProcess,
    Trust,
    init_node,
    is_policy_applied,
    iter_entries,
    node_status,
    run_warden,
    stage_of,
    standard_bundle,
    wait_until,
)

_saved_path = list(sys.path)
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from gen_credit_model import credit_table, write_release  # noqa: E402

sys.path[:] = _saved_path

pytestmark = pytest.mark.slow

FIRST_DECISION_S = 60.0
DRIFT_COLUMNS = "income,debt_ratio,age"
# No approvals needed for production in these tests (approvals have their own tests).
NO_APPROVALS = {"required_approvals": {"staging": [], "production": []}}

RETRAIN_SCRIPT = """\
import json, os, sys
env = {k: v for k, v in os.environ.items() if k.startswith("WARDEN_")}
with open(sys.argv[1], "a") as f:
    f.write(json.dumps(env) + "\\n")
"""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _batch(path: Path, *, seed: int, shift: float, start: datetime) -> None:
    """An inference batch: credit rows with a timestamp each inside one minute from
    ``start``, written elsewhere and renamed in (as the monitoring contract asks)."""
    t = credit_table(400, seed=seed, shift=shift)
    times = pa.array([start + timedelta(seconds=(i % 50)) for i in range(t.num_rows)],
                     type=pa.timestamp("us", tz="UTC"))
    t = t.append_column("timestamp", times)
    tmp = path.with_name(f".{path.name}")
    pq.write_table(t, tmp)
    tmp.rename(path)


def _node(tmp_path: Path, hub: HubProcess, trust: Trust, *, extra: str = "") -> Path:
    """A node whose model is promoted to production and monitored, with a retrain hook,
    an alert hook, and metrics on a free port."""
    validation = tmp_path / "validation.parquet"
    pq.write_table(credit_table(3000, seed=11), validation)
    nodes = tmp_path / "nodes"
    nodes.mkdir()
    config = init_node(nodes, "emea-1", hub, trust, data=validation)
    d = config.parent
    reference = d / "data" / "reference.parquet"
    pq.write_table(credit_table(3000, seed=21), reference)
    run_warden("profile", "build", str(reference), "--out", str(d / "reference.profile.json"),
               "--columns", DRIFT_COLUMNS)
    (d / "inference").mkdir()
    (d / "retrain.py").write_text(RETRAIN_SCRIPT)
    (d / "alert.py").write_text(RETRAIN_SCRIPT)
    text = config.read_text()
    model = (
        "    stages: [staging, production]\n"
        "    reference: data/reference.parquet\n"
        "    monitoring: {inputs: inference, profile: reference.profile.json, window_s: 60,\n"
        "                 grace_s: 0, min_rows: 50, id_column: applicant_id}\n"
        f"    retrain: {{command: ['{sys.executable}', '{d}/retrain.py', '{d}/retrain.jsonl'],\n"
        "              timeout_s: 30}\n"
    )
    assert "    stages: [staging]\n" in text
    text = text.replace("    stages: [staging]\n", model)
    text += (f"alerts:\n  - command: ['{sys.executable}', '{d}/alert.py', '{d}/alerts.jsonl']\n"
             "    on: [drift_alert, rollback]\n"
             "metrics_listen: 127.0.0.1:0\n" + extra)
    config.write_text(text)
    return config


def _records(hub: HubProcess, config: Path) -> list[Any]:
    from trust import keys
    from trust.record import AuditRecord

    key = keys.load_private(config.parent / "node.key").public
    with hub.client("auditor") as auditor:
        entries = list(iter_entries(auditor))
    return [AuditRecord.from_envelope(e.envelope, key) for e in entries
            if e.node_id == "emea-1"]


def _drained(config: Path) -> bool:
    ob = node_status(config)["outbox"]
    return ob.get("depth") == 0


def _metrics(agent: AgentProcess) -> str:
    line = agent.wait_log(lambda o: o.get("msg") == "metrics served", 10, "metrics address")
    with urllib.request.urlopen(f"http://{line.obj['address']}/metrics", timeout=5) as r:
        return r.read().decode()


def _drift_then_rollback(agent: AgentProcess, config: Path, *, current: str,
                         previous: str) -> None:
    """Drop a drifted batch into a closed window; wait for the alert, rollback and retrain."""
    start = (datetime.now(UTC) - timedelta(hours=1)).replace(second=0, microsecond=0)
    _batch(config.parent / "inference" / "batch-0001.parquet", seed=41, shift=1.5,
           start=start)
    alert = agent.wait_log(lambda o: o.get("msg") == "drift alert in production", 60,
                           "the drift alert")
    assert alert.obj["version"] == current
    rolled = agent.wait_log(lambda o: o.get("msg") == "production rolled back", 30,
                            "the rollback")
    assert (rolled.obj["from"], rolled.obj["to"]) == (current, previous)
    agent.wait_log(lambda o: o.get("msg") == "retraining hook ran", 30, "the retrain hook")


def _check_ledger(records: list[Any], config: Path, *, current: str, previous: str) -> None:
    from trust._internal.frozen import thaw
    from trust.canonical import canonical_json
    from trust.record import EventType

    d = config.parent
    events = [(r.event, r.subject.version) for r in records]
    validated = {r.subject.version: r for r in records if r.event is EventType.MODEL_VALIDATED}
    assert set(validated) >= {previous, current}, events
    for version, rec in validated.items():
        cards = d / "cards" / MODEL / version
        card = rec.evidence["model_card"]
        assert card["markdown"]["sha256"] == _sha256(cards / card["markdown"]["name"])
        assert card["html"]["sha256"] == _sha256(cards / card["html"]["name"])
    [alert] = [r for r in records if r.event is EventType.DRIFT_ALERT]
    [rollback] = [r for r in records if r.event is EventType.ROLLBACK]
    [retrain] = [r for r in records if r.event is EventType.RETRAIN_TRIGGERED]
    assert alert.subject.version == current
    assert {v["rule"] for v in alert.decision.violations} & {
        "drift.critical_column", "drift.share_drifted"}
    monitoring = alert.evidence["monitoring"]
    assert alert.evidence["evidence_sha256"] == hashlib.sha256(
        canonical_json(thaw(monitoring))).hexdigest()
    report = alert.evidence["drift_report"]
    assert report["sha256"] == _sha256(d / "cards" / MODEL / current / report["name"])
    inputs = d / "inputs" / f"{alert.evidence['policy_input']['sha256']}.json"
    assert _sha256(inputs) == alert.evidence["policy_input"]["sha256"]
    # The rollback: after the alert, about the version rolled back to, from → to, and why.
    assert events.index((EventType.ROLLBACK, previous)) > events.index(
        (EventType.DRIFT_ALERT, current))
    assert rollback.subject.version == previous
    assert (rollback.evidence["from"], rollback.evidence["to"]) == (current, previous)
    assert list(rollback.evidence["reasons"]) == ["a drift alert is active in production"]
    assert rollback.evidence["trigger"]["drift_alert_seq"] == alert.seq
    # The retraining hook: its outcome, about the version now in production.
    assert retrain.seq > rollback.seq
    assert retrain.subject.version == previous
    assert retrain.evidence["hook"]["ok"] is True
    assert retrain.evidence["hook"]["exit_code"] == 0
    assert thaw(retrain.evidence["trigger"]) == {"event": "rollback", "seq": rollback.seq,
                                          "reason": "a drift alert is active in production"}
    # The hook saw the model, version, reason and the evidence file (kept at the node).
    [env] = [json.loads(x) for x in (d / "retrain.jsonl").read_text().splitlines()]
    assert env["WARDEN_MODEL"] == MODEL and env["WARDEN_VERSION"] == previous
    assert env["WARDEN_EVENT"] == "rollback"
    evidence = json.loads(Path(env["WARDEN_EVIDENCE"]).read_text())
    assert evidence["from"] == current and evidence["to"] == previous
    alerts = [json.loads(x)["WARDEN_EVENT"] for x in
              wait_until(lambda: (d / "alerts.jsonl").exists()
                         and (d / "alerts.jsonl").read_text().count("\n") >= 2
                         and (d / "alerts.jsonl").read_text(), 20,
                         "both alert hooks").splitlines()]
    assert sorted(alerts) == ["drift_alert", "rollback"]


def _drop(release: Path, config: Path) -> None:
    dest = config.parent / "models" / MODEL / release.name
    shutil.copytree(release, dest, ignore=shutil.ignore_patterns("READY"))
    (dest / "READY").touch()


def test_drift_in_production_rolls_back_and_retrains(
    tmp_path: Path, started_hub: tuple[HubProcess, Trust], agents: Agents
) -> None:
    h, trust = started_hub
    releases = tmp_path / "releases"
    v1 = write_release(releases, MODEL, "1.0.0", seed=3, stage="production")
    v2 = write_release(releases, MODEL, "1.1.0", seed=5, stage="production")
    config = _node(tmp_path, h, trust)
    with h.client("compliance") as c:
        c.publish(standard_bundle(trust, 1, **NO_APPROVALS))
    agent = agents.start(config, tee=tmp_path / "agent.log")
    agent.wait_log(is_policy_applied(1), 20, "policy v1 applied")

    _drop(v1, config)
    wait_until(lambda: stage_of(config, "production") == "1.0.0", FIRST_DECISION_S,
               "1.0.0 promoted to production")
    _drop(v2, config)
    wait_until(lambda: stage_of(config, "production") == "1.1.0", 30,
               "1.1.0 promoted to production")

    _drift_then_rollback(agent, config, current="1.1.0", previous="1.0.0")
    assert stage_of(config, "production") == "1.0.0"

    wait_until(lambda: _drained(config), 30, "the outbox to drain")
    _check_ledger(_records(h, config), config, current="1.1.0", previous="1.0.0")
    metrics = _metrics(agent)
    assert f'warden_rollbacks_total{{model="{MODEL}"}} 1.0' in metrics
    assert f'warden_drift_alerts_total{{model="{MODEL}"}} 1.0' in metrics
    assert "warden_outbox_depth" in metrics
    # The decisions were written back beside the versions (the directory registry's tags).
    tags = json.loads((config.parent / "models" / MODEL / "annotations" / "1.1.0.json")
                      .read_text())
    assert "promote" in json.dumps(tags)

    # A restart evaluates nothing twice: no second alert, rollback or retrain.
    assert agent.terminate() == 0
    before = len(_records(h, config))
    agent = agents.start(config, tee=tmp_path / "agent-2.log")
    agent.wait_log(lambda o: o.get("msg") == "agent started", 20, "the restart")
    mark = agent.mark()
    from tests.agent.daemon_world import wait_status_rewrites

    wait_status_rewrites(config.parent / "status.json", 3, 30, "passes after the restart")
    assert not [x for x in agent.lines[mark:] if "drift" in x.obj.get("msg", "")
                or "rolled back" in x.obj.get("msg", "")]
    wait_until(lambda: _drained(config), 30, "the outbox to drain")
    from trust.record import EventType

    after = _records(h, config)
    assert [r.event for r in after[before:]] in ([], [EventType.POLICY_APPLIED]) or all(
        r.event not in (EventType.DRIFT_ALERT, EventType.ROLLBACK,
                        EventType.RETRAIN_TRIGGERED) for r in after[before:])
    assert stage_of(config, "production") == "1.0.0"
    assert agent.terminate() == 0
    assert [x for x in agent.errors()] == []


def test_the_same_flow_on_an_mlflow_registry(
    tmp_path: Path, started_hub: tuple[HubProcess, Trust], agents: Agents
) -> None:
    from tests.agent.mlflow_world import RUN_TAGS, MlflowWorld
    from trust.record import EventType

    h, trust = started_hub
    world = MlflowWorld(tmp_path / "mlflow")
    stage_tag = {"warden.target_stage": "production"}
    first = world.log_version(MODEL, version_tags=stage_tag)
    config = _node(tmp_path, h, trust, extra=(
        "registry_kind: mlflow\n"
        f"mlflow: {{tracking_uri: 'sqlite:///{world.db}',\n"
        "         aliases: {production: champion, staging: challenger}}\n"))
    # Lineage and documentation rules have their own tests on MLflow versions; here the
    # run's lineage (training data on s3, which the node cannot hash) and no shipped
    # card are accepted.
    with h.client("compliance") as c:
        c.publish(standard_bundle(trust, 1, **NO_APPROVALS, require_data_hash=False,
                                  require_model_card=False,
                                  approved_data_sources=[RUN_TAGS["data_uri"]]))
    agent = agents.start(config, tee=tmp_path / "agent.log")
    agent.wait_log(is_policy_applied(1), 20, "policy v1 applied")

    def champion() -> str | None:
        try:
            return str(world.client.get_model_version_by_alias(MODEL, "champion").version)
        except Exception:  # noqa: BLE001 - no alias yet
            return None

    wait_until(lambda: champion() == first, FIRST_DECISION_S, "version 1 is the champion")
    # A version registered while the agent runs is governed on a later pass.
    second = world.log_version(MODEL, version_tags=stage_tag)
    wait_until(lambda: champion() == second, 60, "version 2 is the champion")

    _drift_then_rollback(agent, config, current=second, previous=first)
    assert champion() == first
    wait_until(lambda: _drained(config), 30, "the outbox to drain")
    records = _records(h, config)
    _check_ledger(records, config, current=second, previous=first)
    # The decision, its record and its ledger index written back as version tags.
    [promote] = [r for r in records if r.event is EventType.PROMOTE
                 and r.subject.version == second]
    tags = wait_until(lambda: (t := world.client.get_model_version(MODEL, second).tags)
                      .get("warden.ledger_index") and t, 30, "the ledger index tag")
    assert tags["warden.decision"] == "promote"
    assert tags["warden.record_seq"] == str(promote.seq)
    assert tags["warden.policy"] == "standard v1"
    assert agent.terminate() == 0
