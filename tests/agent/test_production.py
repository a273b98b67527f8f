"""The agent's production half (agent/production.py, agent/notify.py) on a real node.

The node's history is governed by the real Governor under the signed standard bundle
(:mod:`tests.agent.production_world`: 1.8 and 1.9 promoted, 1.10 blocked, 2.0 promoted and in
production). Each test copies it and runs :class:`~agent.production.ProductionWatch` over real
inference batches (Parquet, renamed into the inputs directory), a real reference profile
and reference data file (so evidently's HTML report is written), a real outbox and a
directory registry; restarts are new objects on the same state directory. Hooks are real
child processes and a real HTTP server on loopback; waits poll observable state with a
deadline.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from agent.config import PRODUCTION_STAGE
from agent.hooks import RETRAIN_EVENTS, Hook
from agent.model_card import card_dir
from agent.notify import Notifier
from agent.production import Notice
from agent.registry import DirectoryRegistry
from tests.agent.production_world import (
    NAME,
    NOW,
    History,
    Node,
    governed_history,
    window,
)
from tests.agent.test_rollback import signed_bundle
from trust._internal.frozen import thaw
from trust.canonical import canonical_json, sha256_hex
from trust.errors import StorageUnavailableError
from trust.policy.engine import PolicyEngine
from trust.record import AuditRecord, EventType, Subject
from trust.timeutil import format_time

DRIFT_REASON = "a drift alert is active in production"
ENV_SCRIPT = """\
import json, os, sys
env = {k: v for k, v in os.environ.items() if k.startswith("WARDEN_")}
with open(sys.argv[1], "a") as f:
    f.write(json.dumps(env) + "\\n")
"""


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    with governed_history(tmp_path_factory.mktemp("production-history")) as h:
        yield h


@pytest.fixture
def node(history: History, tmp_path: Path) -> Iterator[Node]:
    n = Node(history, tmp_path)
    yield n
    n.close()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # urllib honours *_proxy variables; the loopback server must be reached directly.
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy",
                 "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


def digest_of(doc: Any) -> str:
    """SHA-256 of the canonical JSON of (a record's read-only copy of) ``doc``."""
    return sha256_hex(canonical_json(thaw(doc)))


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def command_hook(tmp_path: Path, out: Path, *, on: frozenset[str] = RETRAIN_EVENTS,
                 timeout_s: float = 30.0) -> Hook:
    """A command hook: a Python script appending its WARDEN_* environment to ``out``."""
    script = tmp_path / "env_hook.py"
    script.write_text(ENV_SCRIPT)
    return Hook(kind="command", command=(sys.executable, str(script), str(out)),
                timeout_s=timeout_s, on=on)


def env_lines(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def events(records: list[AuditRecord]) -> list[str]:
    return [r.event.value for r in records]


def check_kept_input(node: Node, digest: str) -> dict[str, Any]:
    """The policy input kept at ``state_dir/inputs/<digest>.json``, checked to hash to it."""
    path = node.dir / "inputs" / f"{digest}.json"
    assert path.is_file(), path
    assert sha256_file(path) == digest
    doc: dict[str, Any] = json.loads(path.read_bytes())
    return doc


def drift_then_rollback(node: Node) -> tuple[list[Notice], AuditRecord, AuditRecord]:
    """Window 0's rows with income shifted (the standard bundle's critical column): the pass
    at its end records the drift alert and the rollback."""
    node.publish("drifted.parquet", node.rows(0, shift=60))
    head = node.head()
    notices = node.step(window(0)[1])
    alert, rollback = node.after(head)
    assert (alert.event, rollback.event) == (EventType.DRIFT_ALERT, EventType.ROLLBACK)
    return notices, alert, rollback


def drain_until(notifier: Notifier, done: Callable[[], bool], *, timeout: float = 30.0) -> None:
    """Drain the notifier until ``done()`` (polling, with a deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        notifier.drain()
        if done():
            return
        assert time.monotonic() < deadline, "hooks did not finish in time"
        time.sleep(0.02)


def fire_all(notifier: Notifier, notices: list[Notice]) -> None:
    """What the daemon does with a pass's notices (agent/daemon.py _govern_production)."""
    for n in notices:
        notifier.fire(n.event, record=n.record, reason=n.reason, evidence_path=n.evidence_path,
                      details=n.details, retrain=n.model.retrain if n.retrain else None)


# -- 1. quiet windows -----------------------------------------------------------------------------


def test_quiet_windows_are_one_monitoring_record_each_recorded_once(node: Node) -> None:
    node.publish("b1.parquet", node.rows(0), node.rows(1))
    head = node.head()
    notices = node.step(window(1)[1])
    new = node.after(head)
    assert events(new) == ["monitoring", "monitoring"]
    subject = Subject(NAME, "2.0", node.artefact("2.0"))
    for k, record in enumerate(new):
        assert record.subject == subject
        doc = record.evidence["monitoring"]
        start, end = window(k)
        assert doc["kind"] == "drift" and doc["status"] == "evaluated"
        assert doc["window"] == {"start": format_time(start), "end": format_time(end)}
        assert doc["rows"] == 200
        assert doc["drift"]["dataset_drift"] is False
        assert set(doc["drift"]["columns"]) == {"income", "age"}
        assert not any(c["drifted"] for c in doc["drift"]["columns"].values())
        assert record.evidence["evidence_sha256"] == digest_of(doc)
        assert record.decision is not None and record.decision.allow
        assert record.decision.violations == ()
        assert record.policy is not None and record.policy.digest == node.bundle.digest
        saved = check_kept_input(node, record.evidence["policy_input"]["sha256"])
        assert saved["model"]["stage"] == PRODUCTION_STAGE
        assert saved["model"]["version"] == "2.0"
        assert saved["evidence"]["drift"] == doc["drift"]
        assert "drift_report" not in record.evidence
    assert notices == []
    assert node.current() == "2.0" and node.registry.moves == []
    state = node.state()
    assert state["version"] == "2.0" and state["alert"] is None and state["move"] is None
    # Committed: neither a later pass nor a new process records the windows again.
    assert node.step(window(3)[1]) == []
    node.restart()
    assert node.step(window(4)[1]) == []
    assert node.head() == new[-1].seq


# -- 2. a drift alert, its report, the rollback ---------------------------------------------------


def test_a_drift_alert_with_its_report_then_a_rollback_recorded_before_the_move(
    history: History, tmp_path: Path
) -> None:
    node = Node(history, tmp_path, retrain=command_hook(tmp_path, tmp_path / "retrain.jsonl"))
    try:
        notices, alert, rollback = drift_then_rollback(node)
        start, end = window(0)

        # The alert: about the version in production, judged by the policy's drift rules.
        assert alert.subject == Subject(NAME, "2.0", node.artefact("2.0"))
        assert alert.decision is not None and not alert.decision.allow
        rules = {v["rule"] for v in alert.decision.violations}
        assert "drift.critical_column" in rules
        assert all(r.startswith("drift.") for r in rules)
        doc = alert.evidence["monitoring"]
        assert doc["kind"] == "drift" and doc["drift"]["columns"]["income"]["drifted"] is True
        assert doc["window"] == {"start": format_time(start), "end": format_time(end)}
        assert alert.evidence["evidence_sha256"] == digest_of(doc)
        saved = check_kept_input(node, alert.evidence["policy_input"]["sha256"])
        assert saved["model"] == {"name": NAME, "version": "2.0", "stage": PRODUCTION_STAGE,
                                  "artifact_sha256": node.artefact("2.0")}
        assert saved["evidence"]["drift"] == doc["drift"]

        # evidently's HTML report, beside the version's model card, its digest in the record.
        report = alert.evidence["drift_report"]
        assert set(report) == {"name", "sha256", "bytes"}, report
        path = card_dir(node.dir, NAME, "2.0") / report["name"]
        assert path.parent == node.dir / "cards" / NAME / "2.0"
        assert (path.parent / "model_card.md").is_file()  # the Governor's card is there too
        data = path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == report["sha256"]
        assert len(data) == report["bytes"]
        assert b"<html" in data[:2000].lower()
        assert b"Drift for column income" in data and b"Drift for column age" in data

        # The rollback: about the version rolled back to, the last one that passed.
        assert rollback.subject == Subject(NAME, "1.9", node.artefact("1.9"))
        assert rollback.decision is not None and rollback.decision.allow
        assert rollback.policy is not None and rollback.policy.digest == node.bundle.digest
        ev = thaw(rollback.evidence)
        assert (ev["from"], ev["to"], ev["reasons"]) == ("2.0", "1.9", [DRIFT_REASON])
        assert ev["stage"] == PRODUCTION_STAGE
        assert ev["candidates"]["skipped"] == []
        assert ev["candidates"]["not_candidates"] == {"blocked": 1}  # 1.10, never a target
        assert ev["target"]["version"] == "1.9"
        assert ev["target"]["promoted_seq"] == history.seqs["1.9"]
        target_input = check_kept_input(node, ev["target"]["policy_input"]["sha256"])
        assert target_input["model"]["version"] == "1.9"
        assert target_input["production"] == {}
        trigger = ev["trigger"]
        assert trigger["drift_alert_seq"] == alert.seq
        assert trigger["production"]["drift_alert"] is True
        trigger_input = check_kept_input(node, trigger["policy_input_sha256"])
        assert trigger_input["production"]["drift_alert"] is True
        assert trigger_input["model"]["version"] == "2.0"

        # Record first, then the pointer: when it moved, the rollback was the last record.
        assert node.registry.moves == [(PRODUCTION_STAGE, "1.9", rollback.seq)]
        assert node.current() == "1.9"
        state = node.state()
        assert state["version"] == "1.9" and state["move"] is None
        assert state["rolled_back_from"] == ["2.0"]

        # What the hooks hear: both events; the retraining once, for the rollback.
        assert [(n.event, n.version, n.retrain) for n in notices] == [
            ("drift_alert", "2.0", False), ("rollback", "1.9", True)]
        assert [n.record.seq for n in notices] == [alert.seq, rollback.seq]
        for n in notices:
            assert json.loads(n.evidence_path.read_bytes()) == thaw(n.record.evidence)
        assert notices[1].details["from"] == "2.0" and notices[1].details["to"] == "1.9"
        assert DRIFT_REASON in notices[1].reason
    finally:
        node.close()


@pytest.mark.parametrize(("on", "flagged"), [
    (None, []),
    (frozenset({"drift_alert"}), ["drift_alert"]),
    (frozenset({"rollback"}), ["rollback"]),
])
def test_the_retraining_hook_is_flagged_once_per_pass(
    history: History, tmp_path: Path, on: frozenset[str] | None, flagged: list[str]
) -> None:
    hook = None if on is None else command_hook(tmp_path, tmp_path / "r.jsonl", on=on)
    node = Node(history, tmp_path, retrain=hook)
    try:
        notices, _, _ = drift_then_rollback(node)
        assert [n.event for n in notices] == ["drift_alert", "rollback"]
        assert [n.event for n in notices if n.retrain] == flagged
    finally:
        node.close()


# -- 3. restarts ----------------------------------------------------------------------------------


def test_a_restart_after_the_rollback_records_nothing_again(history: History,
                                                            tmp_path: Path) -> None:
    node = Node(history, tmp_path)
    try:
        _, _, rollback = drift_then_rollback(node)
        node.restart()
        assert node.step(window(1)[1]) == []
        assert node.head() == rollback.seq
        assert node.current() == "1.9" and node.registry.moves == []
        # The watch goes on about the version now in production.
        node.publish("quiet.parquet", node.rows(2))
        assert node.step(window(2)[1]) == []
        [quiet] = node.after(rollback.seq)
        assert quiet.event is EventType.MONITORING
        assert quiet.subject == Subject(NAME, "1.9", node.artefact("1.9"))
        assert node.current() == "1.9"
    finally:
        node.close()


def test_a_rollback_recorded_but_not_made_is_made_by_the_next_pass(history: History,
                                                                   tmp_path: Path) -> None:
    node = Node(history, tmp_path)
    try:
        _, _, rollback = drift_then_rollback(node)
        # As a crash between the record and the move leaves it: the state names the move,
        # the pointer is still on the version rolled back from.
        DirectoryRegistry(node.dir / "models").set_stage(NAME, PRODUCTION_STAGE, "2.0")
        doc = json.loads(node.state_path.read_bytes())
        doc["models"][NAME]["move"] = "1.9"
        node.state_path.write_bytes(canonical_json(doc) + b"\n")
        node.restart()
        assert node.current() == "2.0"
        assert node.step(window(1)[1]) == []
        assert node.current() == "1.9"
        assert node.registry.moves == [(PRODUCTION_STAGE, "1.9", rollback.seq)]
        assert node.head() == rollback.seq  # no second rollback record
        assert node.state()["move"] is None
    finally:
        node.close()


def test_a_move_that_failed_after_the_rollback_record_is_made_after_a_restart(
    history: History, tmp_path: Path
) -> None:
    node = Node(history, tmp_path, fail_moves=True)
    try:
        node.publish("drifted.parquet", node.rows(0, shift=60))
        with pytest.raises(StorageUnavailableError, match="stage pointer"):
            node.step(window(0)[1])
        assert events(node.records("drift_alert", "rollback")) == ["drift_alert", "rollback"]
        assert node.current() == "2.0"
        assert node.state()["move"] == "1.9"
        head = node.head()
        node.restart()
        assert node.step(window(1)[1]) == []
        assert node.current() == "1.9"
        assert node.head() == head
        assert len(node.records("rollback")) == 1
    finally:
        node.close()


def test_a_drift_alert_is_acted_on_when_a_later_window_of_the_same_pass_is_quiet(
    history: History, tmp_path: Path
) -> None:
    """Whether production rolls back must not depend on how windows fall into passes.

    Window 0 drifted, window 1 did not. Passed one window at a time (the daemon keeping up),
    window 0's alert rolls 2.0 back to 1.9 (as in the tests above). Here both windows close
    before the agent's next pass (a batch delivered late, or an agent back after downtime):
    the same drift alert is recorded and must be acted on the same way.
    """
    node = Node(history, tmp_path)
    try:
        node.publish("late.parquet", node.rows(0, shift=60), node.rows(1))
        head = node.head()
        node.step(window(1)[1])
        new = node.after(head)
        assert events(new)[0] == "drift_alert"
        assert new[0].subject.version == "2.0"
        assert "rollback" in events(new), events(new)
        assert node.current() == "1.9"
    finally:
        node.close()


# -- 4. nowhere left to go ------------------------------------------------------------------------


def test_drift_after_each_rollback_goes_further_back_then_is_impossible_once(
    history: History, tmp_path: Path
) -> None:
    node = Node(history, tmp_path, retrain=command_hook(tmp_path, tmp_path / "r.jsonl"))
    try:
        _, _, first = drift_then_rollback(node)
        assert first.evidence["to"] == "1.9"

        # 1.9 drifts: back to 1.8 — not to 2.0, the newest passing version, rolled back from.
        node.publish("drifted-1.parquet", node.rows(1, shift=60))
        head = node.head()
        node.step(window(1)[1])
        alert, second = node.after(head)
        assert alert.event is EventType.DRIFT_ALERT and alert.subject.version == "1.9"
        assert second.event is EventType.ROLLBACK
        assert second.subject == Subject(NAME, "1.8", node.artefact("1.8"))
        assert (second.evidence["from"], second.evidence["to"]) == ("1.9", "1.8")
        skipped = thaw(second.evidence)["candidates"]["skipped"]
        assert [(s["version"], s["code"]) for s in skipped] == [("2.0", "excluded")]
        assert node.current() == "1.8"
        assert node.state()["rolled_back_from"] == ["1.9", "2.0"]

        # 1.8 drifts: 2.0 and 1.9 were rolled back from, 1.10 was blocked — nothing left.
        node.publish("drifted-2.parquet", node.rows(2, shift=60))
        head = node.head()
        notices = node.step(window(2)[1])
        alert, impossible = node.after(head)
        assert alert.event is EventType.DRIFT_ALERT and alert.subject.version == "1.8"
        assert impossible.event is EventType.ROLLBACK_IMPOSSIBLE
        assert impossible.subject == Subject(NAME, "1.8", node.artefact("1.8"))
        assert impossible.decision is not None and not impossible.decision.allow
        assert [v["rule"] for v in impossible.decision.violations] == ["rollback.required"]
        ev = thaw(impossible.evidence)
        assert (ev["from"], ev["to"], ev["target"]) == ("1.8", None, None)
        assert ev["reasons"] == [DRIFT_REASON]
        assert sorted((s["version"], s["code"]) for s in ev["candidates"]["skipped"]) == [
            ("1.9", "excluded"), ("2.0", "excluded")]
        assert ev["candidates"]["not_candidates"] == {"blocked": 1}
        assert ev["trigger"]["drift_alert_seq"] == alert.seq
        assert node.current() == "1.8"
        # No rollback notice: the retraining runs for the drift alert.
        assert [(n.event, n.retrain) for n in notices] == [
            ("drift_alert", True), ("rollback_impossible", False)]

        # It drifts again, for the same reason: an alert, but not a second impossibility.
        node.publish("drifted-3.parquet", node.rows(3, shift=60))
        head = node.head()
        notices = node.step(window(3)[1])
        assert events(node.after(head)) == ["drift_alert"]
        assert [n.event for n in notices] == ["drift_alert"]
        assert node.current() == "1.8"
        assert [(stage, v) for stage, v, _ in node.registry.moves] == [
            (PRODUCTION_STAGE, "1.9"), (PRODUCTION_STAGE, "1.8")]
        assert len(node.records("rollback_impossible")) == 1
        assert len(node.records("rollback")) == 2
    finally:
        node.close()


def test_accuracy_below_the_floor_for_longer_than_the_limit_rolls_back(
    history: History, tmp_path: Path
) -> None:
    # The standard bundle v2 with a limit of 0.02 h (72 s): one 60 s window below the floor is
    # not enough, two are.
    _, bundle = signed_bundle(history.trust_root, 2, rollback_after_hours=0.02)
    with PolicyEngine(bundle) as engine:
        node = Node(history, tmp_path, labels=True, bundle=bundle, engine=engine)
        try:
            for k in (0, 1):
                rows = node.rows(k, prediction=1)
                node.publish(f"b{k}.parquet", rows)
                node.label(f"l{k}.parquet", [int(i) for i in rows["id"]],
                           [0] * len(rows["id"]))  # every prediction wrong
                head = node.head()
                node.step(window(k)[1])
                new = node.after(head)
                kinds = [(r.event.value, r.evidence.get("monitoring", {}).get("kind"))
                         for r in new]
                if k == 0:
                    assert kinds == [("monitoring", "drift"), ("monitoring", "performance")]
                    perf = new[1].evidence["monitoring"]
                    assert perf["performance"]["accuracy"] == 0.0
                    assert perf["labels"] == {"status": "complete", "labelled_rows": 200}
                    assert node.current() == "2.0"
            assert kinds == [("monitoring", "drift"), ("monitoring", "performance"),
                             ("rollback", None)]
            rollback = new[2]
            ev = thaw(rollback.evidence)
            assert (ev["from"], ev["to"]) == ("2.0", "1.9")
            [reason] = ev["reasons"]
            assert "production accuracy 0" in reason and "limit 0.02 hours" in reason
            production = ev["trigger"]["production"]
            assert production["accuracy"] == 0.0
            assert production["hours_below_threshold"] == pytest.approx(2 / 60)
            assert "drift_alert" not in production or production["drift_alert"] is False
            assert ev["trigger"]["drift_alert_seq"] is None
            assert ev["policy"]["version"] == 2
            assert node.current() == "1.9"

            # 1.9 is judged on its own windows: one more wrong window is 1/60 h for it, not
            # 3/60 h counting those of the version rolled back from.
            rows = node.rows(2, prediction=1)
            node.publish("b2.parquet", rows)
            node.label("l2.parquet", [int(i) for i in rows["id"]], [0] * len(rows["id"]))
            head = node.head()
            node.step(window(2)[1])
            assert events(node.after(head)) == ["monitoring", "monitoring"]
            assert node.current() == "1.9"
        finally:
            node.close()


# -- 6. bad input ---------------------------------------------------------------------------------


def test_a_batch_missing_a_column_is_an_input_record_naming_file_and_column(node: Node) -> None:
    rows = node.rows(0)
    del rows["age"]
    node.publish("no-age.parquet", rows)
    head = node.head()
    assert node.step(window(0)[1]) == []
    new = node.after(head)
    assert events(new) and set(events(new)) == {"monitoring"}
    docs = [r.evidence["monitoring"] for r in new]
    [refused] = [d for d in docs if d["kind"] == "input"]
    assert refused["status"] == "error"
    assert refused["source"]["file"].endswith("no-age.parquet")
    assert "no-age.parquet" in refused["error"] and "age" in refused["error"]
    # Its window gets no "no drift" verdict from incomplete data.
    for d in docs:
        if d["kind"] == "drift":
            assert d["status"] == "error" and d["drift"] is None
    assert node.current() == "2.0"
    assert node.step(window(1)[1]) == []
    assert node.head() == new[-1].seq


# -- 7. damaged state -----------------------------------------------------------------------------


@pytest.mark.parametrize("damage", [
    b"{\"schema\": \"warden.agent-production/v1\", \"models\": ",
    b"{\"schema\": \"warden.agent-production/v0\", \"models\": {}}",
    b"{\"schema\": \"warden.agent-production/v1\", \"models\": {\"credit-risk\": []}}",
    b"\xff\xfe",
], ids=["torn", "other-schema", "entry-not-an-object", "not-utf8"])
def test_a_damaged_production_state_stops_the_pass_and_records_nothing(
    node: Node, damage: bytes
) -> None:
    node.step(window(0)[0])  # writes production.json
    assert node.state()["version"] == "2.0"
    node.state_path.write_bytes(damage)
    node.publish("drifted.parquet", node.rows(0, shift=60))
    head = node.head()
    with pytest.raises(StorageUnavailableError, match="production.json"):
        node.step(window(0)[1])
    assert node.head() == head
    assert node.current() == "2.0" and node.registry.moves == []
    assert node.state_path.read_bytes() == damage  # not "repaired" into forgetting


# -- 8. hooks -------------------------------------------------------------------------------------


def test_the_retraining_hook_runs_after_the_rollback_and_its_outcome_is_recorded(
    history: History, tmp_path: Path
) -> None:
    retrain_out, alerts_out = tmp_path / "retrain.jsonl", tmp_path / "alerts.jsonl"
    alert_hook = command_hook(tmp_path, alerts_out,
                              on=frozenset({"drift_alert", "rollback", "retrain_triggered"}))
    node = Node(history, tmp_path, retrain=command_hook(tmp_path, retrain_out),
                alerts=(alert_hook,))
    notifier = Notifier(node.config, node.outbox, log=logging.getLogger("test.production"),
                        now=lambda: window(0)[1] + timedelta(seconds=5))
    try:
        notices, _, rollback = drift_then_rollback(node)
        fire_all(notifier, notices)
        drain_until(notifier, lambda: bool(node.records("retrain_triggered"))
                    and notifier.pending() == 0)
        [retrain] = node.after(rollback.seq)  # alerts are not records
        assert retrain.event is EventType.RETRAIN_TRIGGERED
        assert retrain.subject == rollback.subject
        hook = retrain.evidence["hook"]
        assert hook["ok"] is True and hook["exit_code"] == 0 and hook["error"] is None
        assert (hook["kind"], hook["target"], hook["attempts"]) == ("command", sys.executable, 1)
        assert retrain.evidence["trigger"] == {"event": "rollback", "seq": rollback.seq,
                                               "reason": notices[1].reason}
        [env] = env_lines(retrain_out)
        assert env["WARDEN_EVENT"] == "rollback"
        assert (env["WARDEN_MODEL"], env["WARDEN_VERSION"]) == (NAME, "1.9")
        assert env["WARDEN_REASON"] == notices[1].reason
        assert env["WARDEN_NODE_ID"] == node.config.node_id
        evidence = Path(env["WARDEN_EVIDENCE"])
        assert evidence == notices[1].evidence_path
        assert json.loads(evidence.read_bytes()) == thaw(rollback.evidence)
        assert json.loads(env["WARDEN_DETAILS"])["to"] == "1.9"
        # The alert hook heard the alert, the rollback and the retraining's record.
        assert sorted(e["WARDEN_EVENT"] for e in env_lines(alerts_out)) == [
            "drift_alert", "retrain_triggered", "rollback"]
    finally:
        notifier.close(5)
        node.close()


@pytest.mark.parametrize(("argv", "timeout_s", "error", "exit_code"), [
    (("/nonexistent/warden-retrain",), 30.0, "command not found: /nonexistent/warden-retrain",
     None),
    ((sys.executable, "-c", "import sys; sys.exit(1)"), 30.0, "exit 1", 1),
    ((sys.executable, "-c", "import time; time.sleep(60)"), 0.5, "timed out after 0.5 s", None),
], ids=["missing", "exit-1", "hangs"])
def test_a_failing_retraining_command_is_recorded_and_the_agent_goes_on(
    history: History, tmp_path: Path, argv: tuple[str, ...], timeout_s: float, error: str,
    exit_code: int | None,
) -> None:
    hook = Hook(kind="command", command=argv, timeout_s=timeout_s, on=RETRAIN_EVENTS)
    node = Node(history, tmp_path, retrain=hook)
    notifier = Notifier(node.config, node.outbox, log=logging.getLogger("test.production"),
                        now=lambda: window(0)[1] + timedelta(seconds=5))
    try:
        notices, _, rollback = drift_then_rollback(node)
        started = time.monotonic()
        fire_all(notifier, notices)
        notifier.drain()
        # The pass goes on while the hook runs (or hangs).
        node.publish("quiet.parquet", node.rows(1))
        node.step(window(1)[1])
        assert time.monotonic() - started < timeout_s + 5
        drain_until(notifier, lambda: bool(node.records("retrain_triggered")))
        [retrain] = node.records("retrain_triggered")
        assert retrain.subject == rollback.subject
        assert retrain.evidence["trigger"]["seq"] == rollback.seq
        hook_doc = retrain.evidence["hook"]
        assert hook_doc["ok"] is False
        assert hook_doc["error"].startswith(error), hook_doc
        assert hook_doc["exit_code"] == exit_code
        if timeout_s < 1:
            assert timeout_s <= hook_doc["duration_s"] < 10
        assert node.records("monitoring")[-1].subject.version == "1.9"
    finally:
        notifier.close(5)
        node.close()


class _Failing:
    """An HTTP server on 127.0.0.1 answering every POST with 500; keeps the bodies."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        bodies = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", "0"))
                bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(500)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_a_webhook_answering_500_is_retried_then_recorded_as_failed(
    history: History, tmp_path: Path
) -> None:
    server = _Failing()
    secret = "T0K3N-in-the-path"
    hook = Hook(kind="webhook", url=f"http://127.0.0.1:{server.port}/hooks/{secret}",
                timeout_s=5, retries=1, backoff_s=0.05, on=RETRAIN_EVENTS)
    node = Node(history, tmp_path, retrain=hook)
    notifier = Notifier(node.config, node.outbox, log=logging.getLogger("test.production"),
                        now=lambda: window(0)[1] + timedelta(seconds=5))
    try:
        notices, _, rollback = drift_then_rollback(node)
        fire_all(notifier, notices)
        drain_until(notifier, lambda: bool(node.records("retrain_triggered")))
        [retrain] = node.records("retrain_triggered")
        hook_doc = retrain.evidence["hook"]
        assert (hook_doc["ok"], hook_doc["http_status"], hook_doc["attempts"]) == (
            False, 500, 2)
        assert hook_doc["error"] == "HTTP 500"
        assert hook_doc["target"] == f"http://127.0.0.1:{server.port}"
        assert secret.encode() not in retrain.envelope
        assert retrain.evidence["trigger"]["seq"] == rollback.seq
        assert len(server.bodies) == 2
        assert all((b["event"], b["version"]) == ("rollback", "1.9") for b in server.bodies)
    finally:
        notifier.close(5)
        node.close()
        server.close()


@pytest.mark.parametrize("ok", [True, False], ids=["runs", "fails"])
def test_an_alert_hook_for_a_blocked_promotion_is_logged_not_recorded(
    node: Node, tmp_path: Path, caplog: pytest.LogCaptureFixture, ok: bool
) -> None:
    out = tmp_path / "alerts.jsonl"
    hook = command_hook(tmp_path, out, on=frozenset({"promotion_blocked"}))
    if not ok:
        hook = Hook(kind="command", command=(sys.executable, "-c", "import sys; sys.exit(3)"),
                    on=frozenset({"promotion_blocked"}))
    config = replace(node.config, alerts=(hook,))
    notifier = Notifier(config, node.outbox, log=logging.getLogger("test.production"),
                        now=lambda: NOW + timedelta(minutes=1))
    [block] = node.records("block")
    assert block.subject.version == "1.10"
    head = node.head()
    caplog.set_level(logging.INFO, logger="test.production")
    try:
        notifier.fire("promotion_blocked", record=block, reason="performance.min_accuracy",
                      details={"seq": block.seq})
        drain_until(notifier, lambda: notifier.pending() == 0 and any(
            r.getMessage().startswith("alert hook") for r in caplog.records))
    finally:
        notifier.close(5)
    assert node.head() == head  # an alert is not a governance action: nothing recorded
    [logged] = [r for r in caplog.records if r.getMessage().startswith("alert hook")]
    fields: dict[str, Any] = logged.__dict__["fields"]
    assert (fields["event"], fields["model"], fields["version"]) == (
        "promotion_blocked", NAME, "1.10")
    if ok:
        assert logged.getMessage() == "alert hook ran" and logged.levelno == logging.INFO
        [env] = env_lines(out)
        assert (env["WARDEN_EVENT"], env["WARDEN_VERSION"]) == ("promotion_blocked", "1.10")
    else:
        assert logged.getMessage() == "alert hook failed"
        assert logged.levelno == logging.WARNING and fields["error"] == "exit 3"
