"""Choosing a rollback target from a real history: versions governed by the real
:class:`~agent.validation.Governor` under the signed standard bundle (so ``decisions.json``
and ``inputs/`` are what a node holds), then re-decided by :func:`choose_rollback_target`.

The history (decided in this order, all for ``production`` with both approvals):

====== ===================================== ==========
1.9    exact classifier (accuracy 1.0)        promoted
1.10   threshold off by 5 (accuracy 0.95)     promoted
2.0    threshold far off (accuracy ~0.7)      blocked (performance.min_accuracy)
2.1    exact classifier                       promoted — the current version
====== ===================================== ==========

Version names sort ``1.10 < 1.9`` as strings: a target chosen by name would be wrong.
Tests that alter files work on a copy of the node directory.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agent.config import AgentConfig, ModelConfig
from agent.outbox import Outbox
from agent.registry import DirectoryRegistry
from agent.rollback import MAX_LISTED, SkipCode, choose_rollback_target, save_input
from agent.validation import INPUTS_DIR, Governor, OutcomeKind
from tests.agent import _world
from trust import dsse
from trust.approval import Approval
from trust.canonical import canonical_json
from trust.cli.main import main
from trust.errors import PolicyError
from trust.policy.bundle import BUNDLE_PAYLOAD_TYPE, PolicyBundle, build_payload
from trust.policy.engine import PolicyEngine
from trust.policy.source import load_source
from trust.record import AuditRecord, EventType
from trust.root import TrustRoot
from trust.stream import NodeId

REPO = Path(__file__).resolve().parents[2]
NOW = _world.NOW
LATER = NOW + timedelta(hours=30)
NAME = "credit-risk"
STAGE = "production"
NODE_KEY = _world.key("node-rollback-1")
ROWS = 1000
ID_PREFIX = "cust-rb9x"  # distinctive: must never appear in a rollback's evidence
REASONS = ("a drift alert is active in production",)

# (version, decision bias of a classifier on income: class 1 when 0.1 * income + bias > 0)
HISTORY = (("1.9", -3.95), ("1.10", -4.45), ("2.0", -7.05), ("2.1", -3.95))


def write_validation_data(path: Path) -> Path:
    """Income decides repayment (income >= 40), identically for both sexes."""
    rng = np.random.default_rng(5)
    lines = ["id,income,age,sex,repaid"]
    for i in range(ROWS):
        income = (i // 2) % 100
        lines.append(f"{ID_PREFIX}{i:05d},{income},{int(rng.integers(20, 70))},"
                     f"{'F' if i % 2 else 'M'},{int(income >= 40)}")
    path.write_text("\n".join(lines) + "\n")
    return path


def classifier(bias: float) -> bytes:
    """An ONNX classifier on (income, age): class 1 when 0.1 * income + bias > 0."""
    from onnx import TensorProto, helper

    node = helper.make_node(
        "LinearClassifier", ["X"], ["label", "probabilities"], domain="ai.onnx.ml",
        coefficients=[-0.1, 0.0, 0.1, 0.0], intercepts=[-bias, bias],
        classlabels_ints=[0, 1], post_transform="SOFTMAX",
    )
    graph = helper.make_graph(
        [node], "linear", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
         helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                    helper.make_opsetid("ai.onnx.ml", 1)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


def publish(models: Path, version: str, model: bytes, train: bytes) -> None:
    """A version directory as a publisher writes it: files first, READY last."""
    d = models / NAME / version
    d.mkdir(parents=True)
    (d / "model.onnx").write_bytes(model)
    (d / "train.csv").write_bytes(train)
    (d / "model_card.md").write_text(
        f"# {NAME} {version}\n" + "".join(f"## {s}\nDescribed.\n" for s in _world.CARD_SECTIONS))
    snapshot = (NOW - timedelta(days=5)).date().isoformat()
    (d / "manifest.yaml").write_text(
        f"model: {{name: {NAME}, version: '{version}', target_stage: {STAGE}, "
        "features: [income, age]}\n"
        f"artifact: {{path: model.onnx, sha256: '{hashlib.sha256(model).hexdigest()}'}}\n"
        "code: {commit: 9f2c1e7}\n"
        "parameters: {C: 1.0}\n"
        f"training_data: {{source: internal_db, path: train.csv, "
        f"sha256: '{hashlib.sha256(train).hexdigest()}', snapshot_date: {snapshot}}}\n"
        f"trained_at: {snapshot}T09:00:00Z\n")
    (d / "READY").touch()


def approvals_for(d: Path, trust_root: TrustRoot, version: str) -> tuple[Approval, ...]:
    out = []
    for signer, role in ((_world.RISK, "risk_officer"), (_world.COMPLIANCE, "compliance")):
        path = _world.write_approval(d / f"{role}-{version}.approval", signer, role,
                                     f"{NAME}:{version}")
        out.append(Approval.from_envelope(path.read_bytes(), trust_root))
    return tuple(out)


def signed_bundle(trust_root: TrustRoot, version: int, **data: Any) -> tuple[bytes, PolicyBundle]:
    """``policies/standard`` as ``version`` with thresholds overridden, signed 2-of-3."""
    source = load_source(REPO / "policies" / "standard")
    source = replace(source, version=version, data={**source.data, **data})
    envelope = dsse.sign(BUNDLE_PAYLOAD_TYPE, build_payload(source, now=NOW),
                         _world.OFFICERS[:2]).to_json()
    return envelope, PolicyBundle.from_envelope(envelope, trust_root, now=NOW)


@dataclass(frozen=True)
class History:
    dir: Path
    root: Path
    model: ModelConfig
    decided: dict[str, dict[str, Any]]
    bundle_file: Path
    bundle: PolicyBundle
    engine: PolicyEngine
    trust_root: TrustRoot


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    d = tmp_path_factory.mktemp("rollback-history")
    node = d / "node"
    models = node / "models"
    models.mkdir(parents=True)
    root = _world.write_root(d / "root.json")
    bundle_file = _world.write_standard_bundle(d / "standard.bundle")
    trust_root = TrustRoot.load(root, now=NOW)
    bundle = PolicyBundle.from_envelope(bundle_file.read_bytes(), trust_root, now=NOW)
    data = write_validation_data(d / "validation.csv")
    train = b"income,age,repaid\n1,30,0\n90,40,1\n"
    model = ModelConfig(name=NAME, data=data, label="repaid", sensitive=("sex",))
    config = AgentConfig(node_id=NodeId("rollback-1"), hub="127.0.0.1:7443", insecure=True,
                         state_dir=node, registry=models, models=(model,))
    outbox = Outbox.open(config.outbox_path, "rollback-1", NODE_KEY)
    governor = Governor(config, DirectoryRegistry(models), outbox,
                        log=logging.getLogger("test.rollback"))
    with PolicyEngine(bundle) as engine:
        try:
            for version, bias in HISTORY:
                publish(models, version, classifier(bias), train)
                outcome = governor.govern(model, version, bundle=bundle, engine=engine,
                                          approvals=approvals_for(d, trust_root, version),
                                          now=NOW)
                expected = OutcomeKind.BLOCKED if version == "2.0" else OutcomeKind.PROMOTED
                assert outcome.kind is expected, outcome
            decided = governor.decided()[NAME]
        finally:
            outbox.close()
        yield History(node, root, model, decided, bundle_file, bundle, engine, trust_root)


@pytest.fixture(scope="module")
def strict(history: History) -> Iterator[tuple[bytes, PolicyBundle, PolicyEngine]]:
    """The standard bundle v2 with min_accuracy raised to 0.97: 1.10 no longer passes."""
    envelope, bundle = signed_bundle(history.trust_root, 2, min_accuracy=0.97)
    with PolicyEngine(bundle) as engine:
        yield envelope, bundle, engine


@pytest.fixture
def node(tmp_path: Path, history: History) -> Path:
    """A copy of the node directory for a test that alters files."""
    return Path(shutil.copytree(history.dir, tmp_path / "node"))


def choose(h: History, node: Path | None = None, *, current: str = "2.1",
           engine: PolicyEngine | None = None, bundle: PolicyBundle | None = None,
           **kwargs: Any) -> Any:
    d = node or h.dir
    return choose_rollback_target(
        registry=DirectoryRegistry(d / "models"), model=h.model, stage=STAGE, current=current,
        decided=h.decided, inputs_dir=d / INPUTS_DIR, engine=engine or h.engine,
        bundle=bundle or h.bundle, now=LATER, reasons=REASONS, **kwargs)


def codes(choice: Any) -> list[tuple[str, SkipCode]]:
    return [(s.version, s.code) for s in choice.skipped]


# --- the target ---------------------------------------------------------------------------------


def test_the_history_is_what_the_governor_recorded(history: History) -> None:
    outcomes = {v: e["outcome"] for v, e in history.decided.items()}
    assert outcomes == {"1.9": "promoted", "1.10": "promoted", "2.0": "blocked",
                        "2.1": "promoted"}
    seqs = [history.decided[v]["seq"] for v, _ in HISTORY]
    assert seqs == sorted(seqs)  # decided in HISTORY order


def test_rollback_picks_the_previous_passing_version_by_decision_order(
    history: History,
) -> None:
    choice = choose(history)
    # Not "1.9" (the greatest name below "2.1"), and never the blocked "2.0".
    assert choice.target == "1.10"
    assert choice.skipped == ()
    assert choice.decision is not None and choice.decision.allow
    assert choice.decision.bundle_digest == history.bundle.digest
    assert choice.target_seq == history.decided["1.10"]["seq"]
    assert choice.not_candidates == {"blocked": 1}
    # Re-decided as a decision now, for the stage, with no production status of its own.
    assert choice.policy_input is not None
    assert choice.policy_input["production"] == {}
    assert choice.policy_input["model"]["stage"] == STAGE
    assert choice.policy_input["now"] == "2026-11-27T18:00:00Z"
    mv = DirectoryRegistry(history.dir / "models").read(NAME, "1.10")
    assert choice.artefact_sha256 == mv.artefact_sha256


def test_rollback_from_an_older_version_takes_the_newest_other_passing_one(
    history: History,
) -> None:
    assert choose(history, current="1.10").target == "2.1"
    assert choose(history, current="1.9").target == "2.1"


def test_a_candidate_is_re_decided_without_a_production_status(
    history: History, node: Path
) -> None:
    # An input saved with a production status (the rollback rule fires on it): the
    # candidate is not the model drifting now, so its status is reset before deciding.
    saved = json.loads((node / INPUTS_DIR / f"{history.decided['1.10']['input_sha256']}.json")
                       .read_bytes())
    saved["production"] = {"drift_alert": True, "accuracy": 0.5, "hours_below_threshold": 48}
    data = canonical_json(saved)
    digest = hashlib.sha256(data).hexdigest()
    (node / INPUTS_DIR / f"{digest}.json").write_bytes(data)
    with_status = dict(saved)
    assert not history.engine.evaluate(with_status, now=LATER).allow  # rollback.required
    decided = {**history.decided, "1.10": {**history.decided["1.10"], "input_sha256": digest}}
    choice = choose_rollback_target(
        registry=DirectoryRegistry(node / "models"), model=history.model, stage=STAGE,
        current="2.1", decided=decided, inputs_dir=node / INPUTS_DIR, engine=history.engine,
        bundle=history.bundle, now=LATER)
    assert choice.target == "1.10" and choice.skipped == ()
    assert choice.policy_input is not None and choice.policy_input["production"] == {}


def test_a_blocked_version_is_never_a_target_even_when_the_policy_would_now_pass_it(
    history: History, node: Path
) -> None:
    _, lax = signed_bundle(history.trust_root, 3, min_accuracy=0.5, min_f1=0.5)
    for version in ("1.10", "1.9"):
        shutil.rmtree(node / "models" / NAME / version)
    with PolicyEngine(lax) as engine:
        choice = choose(history, node, engine=engine, bundle=lax)
    assert choice.target is None
    assert codes(choice) == [("1.10", SkipCode.VERSION_MISSING), ("1.9", SkipCode.VERSION_MISSING)]
    assert choice.not_candidates == {"blocked": 1}
    # 2.0 is intact: it was left out because it was blocked, not because it is unreadable.
    assert DirectoryRegistry(node / "models").read(NAME, "2.0").version == "2.0"


def test_a_candidate_whose_artefact_was_deleted_is_skipped(history: History, node: Path) -> None:
    (node / "models" / NAME / "1.10" / "model.onnx").unlink()
    choice = choose(history, node)
    assert choice.target == "1.9"
    [skip] = choice.skipped
    assert (skip.version, skip.code) == ("1.10", SkipCode.ARTEFACT_MISSING)
    assert "model.onnx" in skip.reason and "does not exist" in skip.reason


def test_a_candidate_whose_artefact_was_replaced_is_skipped(history: History, node: Path) -> None:
    (node / "models" / NAME / "1.10" / "model.onnx").write_bytes(classifier(-2.0))
    choice = choose(history, node)
    assert choice.target == "1.9"
    assert codes(choice) == [("1.10", SkipCode.ARTEFACT_CHANGED)]
    assert "SHA-256" in choice.skipped[0].reason


def test_an_artefact_swapped_with_its_manifest_is_not_the_one_decided_on(
    history: History, node: Path
) -> None:
    # The publisher's directory edited consistently (manifest digest updated too): the
    # registry reads it, but it is not the artefact the saved input judged.
    vdir = node / "models" / NAME / "1.10"
    swapped = classifier(-2.0)
    old = hashlib.sha256((vdir / "model.onnx").read_bytes()).hexdigest()
    (vdir / "model.onnx").write_bytes(swapped)
    manifest = vdir / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace(old, hashlib.sha256(swapped).hexdigest()))
    choice = choose(history, node)
    assert choice.target == "1.9"
    assert codes(choice) == [("1.10", SkipCode.ARTEFACT_CHANGED)]
    assert "decided on artefact" in choice.skipped[0].reason


def test_a_candidate_failing_under_a_stricter_policy_is_skipped(
    history: History, strict: tuple[bytes, PolicyBundle, PolicyEngine]
) -> None:
    _, bundle, engine = strict
    choice = choose(history, engine=engine, bundle=bundle)
    assert choice.target == "1.9"
    [skip] = choice.skipped
    assert (skip.version, skip.code) == ("1.10", SkipCode.DENIED)
    assert skip.rules == ("performance.min_accuracy",)
    assert "0.97" in skip.reason and f"{bundle.name} v2" in skip.reason
    assert choice.decision is not None and choice.decision.bundle_version == 2
    assert choice.policy_version == 2 and choice.policy_digest == bundle.digest


def test_nothing_left_is_no_target(
    history: History, node: Path, strict: tuple[bytes, PolicyBundle, PolicyEngine]
) -> None:
    _, bundle, engine = strict
    (node / "models" / NAME / "1.9" / "model.onnx").unlink()
    choice = choose(history, node, engine=engine, bundle=bundle)
    assert choice.target is None and choice.decision is None and choice.policy_input is None
    assert codes(choice) == [("1.10", SkipCode.DENIED), ("1.9", SkipCode.ARTEFACT_MISSING)]
    evidence = choice.to_evidence()
    assert evidence["from"] == "2.1" and evidence["to"] is None and evidence["target"] is None
    assert evidence["candidates"]["considered"] == 2
    assert [s["code"] for s in evidence["candidates"]["skipped"]] == ["denied",
                                                                      "artefact_missing"]
    with pytest.raises(ValueError, match="no policy input"):
        save_input(choice, node / INPUTS_DIR)


def test_a_tampered_saved_input_is_skipped(history: History, node: Path) -> None:
    digest = history.decided["1.10"]["input_sha256"]
    path = node / INPUTS_DIR / f"{digest}.json"
    doc = json.loads(path.read_bytes())
    doc["evidence"]["performance"]["accuracy"] = 1.0  # a better past, forged
    path.write_bytes(canonical_json(doc))
    choice = choose(history, node)
    assert choice.target == "1.9"
    [skip] = choice.skipped
    assert (skip.version, skip.code) == ("1.10", SkipCode.INPUT_TAMPERED)
    assert f"record {digest}" in skip.reason and "altered" in skip.reason


def test_a_saved_input_of_another_version_under_the_right_name_is_skipped(
    history: History, node: Path
) -> None:
    # The recorded digest names a file whose bytes match it but that judged another version:
    # only possible if decisions.json itself was edited; still never a target.
    decided = {**history.decided,
               "1.10": {**history.decided["1.10"],
                        "input_sha256": history.decided["1.9"]["input_sha256"]}}
    choice = choose_rollback_target(
        registry=DirectoryRegistry(node / "models"), model=history.model, stage=STAGE,
        current="2.1", decided=decided, inputs_dir=node / INPUTS_DIR, engine=history.engine,
        bundle=history.bundle, now=LATER)
    assert choice.target == "1.9"
    assert codes(choice) == [("1.10", SkipCode.INPUT_TAMPERED)]
    assert "version '1.9', not" in choice.skipped[0].reason


def test_a_missing_saved_input_is_skipped(history: History, node: Path) -> None:
    (node / INPUTS_DIR / f"{history.decided['1.10']['input_sha256']}.json").unlink()
    choice = choose(history, node)
    assert choice.target == "1.9"
    assert codes(choice) == [("1.10", SkipCode.INPUT_MISSING)]


def test_excluded_versions_are_skipped(history: History) -> None:
    choice = choose(history, exclude={"1.10"})
    assert choice.target == "1.9"
    assert codes(choice) == [("1.10", SkipCode.EXCLUDED)]


def test_versions_promoted_for_another_stage_are_not_candidates(history: History) -> None:
    decided = {**history.decided, "1.10": {**history.decided["1.10"], "stage": "staging"}}
    choice = choose_rollback_target(
        registry=DirectoryRegistry(history.dir / "models"), model=history.model, stage=STAGE,
        current="2.1", decided=decided, inputs_dir=history.dir / INPUTS_DIR,
        engine=history.engine, bundle=history.bundle, now=LATER)
    assert choice.target == "1.9"
    assert choice.not_candidates == {"blocked": 1, "other_stage": 1}


def test_an_entry_without_a_seq_is_skipped_not_guessed(history: History) -> None:
    decided = {**history.decided, "1.10": {**history.decided["1.10"], "seq": None}}
    choice = choose_rollback_target(
        registry=DirectoryRegistry(history.dir / "models"), model=history.model, stage=STAGE,
        current="2.1", decided=decided, inputs_dir=history.dir / INPUTS_DIR,
        engine=history.engine, bundle=history.bundle, now=LATER)
    assert choice.target == "1.9"
    assert codes(choice) == [("1.10", SkipCode.BAD_ENTRY)]


def test_an_engine_for_another_bundle_is_refused(
    history: History, strict: tuple[bytes, PolicyBundle, PolicyEngine]
) -> None:
    _, bundle, engine = strict
    with pytest.raises(PolicyError, match="engine evaluates bundle standard v2"):
        choose(history, engine=engine, bundle=history.bundle)


# --- the evidence and the replay ----------------------------------------------------------------


def test_evidence_names_from_to_reasons_and_replays_with_policy_eval(
    history: History, node: Path, strict: tuple[bytes, PolicyBundle, PolicyEngine],
    capsys: pytest.CaptureFixture[str],
) -> None:
    envelope, bundle, engine = strict
    choice = choose(history, node, engine=engine, bundle=bundle)
    evidence = choice.to_evidence()
    assert evidence["from"] == "2.1" and evidence["to"] == "1.9"
    assert evidence["stage"] == STAGE and evidence["reasons"] == list(REASONS)
    assert evidence["policy"] == {"name": "standard", "version": 2, "digest": bundle.digest}
    assert evidence["candidates"]["considered"] == 2
    assert evidence["candidates"]["skipped"][0]["rules"] == ["performance.min_accuracy"]
    assert evidence["target"]["policy_input"]["sha256"] == choice.input_sha256
    assert evidence["target"]["artifact_sha256"] == choice.artefact_sha256
    text = canonical_json(evidence).decode()
    assert ID_PREFIX not in text  # aggregates only
    # The saved re-decided input replays to the same decision under the same bundle.
    path = save_input(choice, node / INPUTS_DIR)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == choice.input_sha256
    bundle_file = node / "strict.bundle"
    bundle_file.write_bytes(envelope)
    capsys.readouterr()
    code = main(["policy", "eval", str(bundle_file), "--root", str(history.root),
                 "--input", str(path)])
    replay = json.loads(capsys.readouterr().out)
    assert code == 0 and replay["allow"] is True
    assert replay["input_sha256"] == choice.input_sha256
    assert replay["bundle"]["digest"] == bundle.digest


def test_the_evidence_lists_a_bounded_number_of_skipped_candidates(history: History) -> None:
    decided = dict(history.decided)
    first = history.decided["1.10"]
    for i in range(MAX_LISTED + 5):  # promoted entries whose inputs are gone
        decided[f"0.{i}"] = {**first, "seq": i + 1, "input_sha256": f"{i:064x}"}
    choice = choose_rollback_target(
        registry=DirectoryRegistry(history.dir / "models"), model=history.model, stage=STAGE,
        current="2.1", decided=decided, inputs_dir=history.dir / INPUTS_DIR,
        engine=history.engine, bundle=history.bundle, now=LATER, exclude={"1.10", "1.9"})
    assert choice.target is None
    evidence = choice.to_evidence()["candidates"]
    assert len(evidence["skipped"]) == MAX_LISTED
    assert evidence["skipped_total"] == MAX_LISTED + 5 + 2


def test_the_records_are_the_governors_own(history: History) -> None:
    """The decided entries point at real promote/block records of the node's stream."""
    with Outbox.open(history.dir / "outbox.db", "rollback-1", NODE_KEY) as outbox:
        records = {AuditRecord.from_envelope(e.envelope, NODE_KEY.public).seq:
                   AuditRecord.from_envelope(e.envelope, NODE_KEY.public)
                   for e in outbox.entries()}
    for version, entry in history.decided.items():
        record = records[entry["seq"]]
        assert record.subject.version == version
        assert record.event is (EventType.BLOCK if version == "2.0" else EventType.PROMOTE)
