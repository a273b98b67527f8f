"""The validation pipeline on real files: a registry version → checks on the node's data →
policy input → decision (the signed standard bundle) → record → stage pointer.

Covers: promote and block records (bundle digest, input digest, aggregates only), the stage
pointer moving only after its record, replaying a decision with ``warden policy eval`` from
the saved input, predictions artefacts joined row by row, the table of bad versions (each a
signed ``validation_error`` record and an error log line, never retried in a loop), storage
errors that leave the version pending, and half-written directories.
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agent.config import AgentConfig, ModelConfig
from agent.outbox import Outbox
from agent.registry import DirectoryRegistry
from agent.validation import (
    DECISIONS_FILE,
    INPUTS_DIR,
    STAGE_RULE,
    Governor,
    OutcomeKind,
    StageNotAllowedError,
    validate_version,
)
from tests.agent import _world
from trust import dsse
from trust._internal.frozen import thaw
from trust.approval import Approval
from trust.canonical import canonical_json, sha256_hex
from trust.cli.main import main
from trust.errors import StorageFullError, StorageUnavailableError
from trust.policy.bundle import PolicyBundle, read_bundle_file
from trust.policy.engine import PolicyEngine
from trust.record import AuditRecord, EventType
from trust.root import TrustRoot
from trust.stream import GENESIS_PREV, NodeId

REPO = Path(__file__).resolve().parents[2]
NOW = _world.NOW
NAME = "credit-risk"
NODE_KEY = _world.key("node-emea-1")
LOG_NAME = "test.validation"
FEATURES = ("income", "age")
ROWS = 1200
# Every customer id is distinctive: none may ever appear in a record or a saved input.
ID_PREFIX = "cust-q7z"


# --- the world: data, a trained model, root, bundle, one policy engine ------------------------


@dataclass(frozen=True)
class World:
    dir: Path
    data: Path
    nolabel: Path
    train: Path
    root: Path
    bundle_file: Path
    bundle: PolicyBundle
    trust_root: TrustRoot
    model: bytes  # an ONNX classifier that gets every row right
    predictions: np.ndarray
    engine: PolicyEngine


def write_validation_data(path: Path, *, label: bool = True) -> Path:
    """Fair, easy data: income decides repayment, identically for both sexes."""
    rng = np.random.default_rng(11)
    lines = ["id,income,age,sex" + (",repaid" if label else "")]
    for i in range(ROWS):
        income = (i // 2) % 100
        age = int(rng.integers(20, 70))
        sex = "F" if i % 2 else "M"
        lines.append(f"{ID_PREFIX}{i:05d},{income},{age},{sex}"
                     + (f",{int(income >= 40)}" if label else ""))
    path.write_text("\n".join(lines) + "\n")
    return path


def linear_classifier(weights: tuple[float, float], bias: float) -> bytes:
    """An ONNX binary classifier on (income, age): class 1 when w·x + b > 0, with scores.

    Built from the ONNX operator set directly (no scikit-learn: importing it would cost each
    test process seconds).
    """
    from onnx import TensorProto, helper

    node = helper.make_node(
        "LinearClassifier", ["X"], ["label", "probabilities"], domain="ai.onnx.ml",
        coefficients=[-weights[0], -weights[1], weights[0], weights[1]],
        intercepts=[-bias, bias], classlabels_ints=[0, 1], post_transform="SOFTMAX",
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


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    d = tmp_path_factory.mktemp("validation-world")
    data = write_validation_data(d / "validation.csv")
    nolabel = write_validation_data(d / "nolabel.csv", label=False)
    train = d / "train.csv"
    train.write_text("income,age,repaid\n1,30,0\n90,40,1\n")
    income = np.loadtxt(data, delimiter=",", skiprows=1, usecols=(1,))
    root = _world.write_root(d / "root.json")
    bundle_file = _world.write_standard_bundle(d / "standard.bundle")
    trust_root = TrustRoot.load(root, now=NOW)
    bundle = PolicyBundle.from_envelope(read_bundle_file(bundle_file), trust_root, now=NOW)
    with PolicyEngine(bundle) as engine:
        yield World(d, data, nolabel, train, root, bundle_file, bundle, trust_root,
                    linear_classifier((0.1, 0.0), -3.95), (income >= 40).astype(int), engine)


def manifest_text(version: str, artefact: str, artefact_sha: str, *, stage: str,
                  train_sha: str, features: tuple[str, ...] | None = FEATURES) -> str:
    snapshot = (NOW - timedelta(days=5)).date().isoformat()
    feats = f", features: [{', '.join(features)}]" if features else ""
    return (
        f"model: {{name: {NAME}, version: '{version}', target_stage: {stage}{feats}}}\n"
        f"artifact: {{path: {artefact}, sha256: '{artefact_sha}'}}\n"
        "code: {commit: 9f2c1e7}\n"
        "parameters: {C: 1.0}\n"
        f"training_data: {{source: internal_db, path: train.csv, sha256: '{train_sha}', "
        f"snapshot_date: {snapshot}}}\n"
        f"trained_at: {snapshot}T09:00:00Z\n"
    )


def publish(
    world: World,
    models: Path,
    version: str,
    *,
    artefact: tuple[str, bytes] | None = None,
    stage: str = "staging",
    manifest: str | None = None,
    write_manifest: bool = True,
    card: bool = True,
    ready: bool = True,
) -> Path:
    """A registry version directory as a publisher writes it: files first, READY last."""
    name, content = artefact or ("model.onnx", world.model)
    d = models / NAME / version
    d.mkdir(parents=True)
    (d / name).write_bytes(content)
    (d / "train.csv").write_bytes(world.train.read_bytes())
    if card:
        (d / "model_card.md").write_text(
            f"# {NAME} {version}\n" + "".join(f"## {s}\nDescribed.\n"
                                              for s in _world.CARD_SECTIONS))
    if write_manifest:
        text = manifest if manifest is not None else manifest_text(
            version, name, hashlib.sha256(content).hexdigest(), stage=stage,
            train_sha=hashlib.sha256(world.train.read_bytes()).hexdigest())
        (d / "manifest.yaml").write_text(text)
    if ready:
        (d / "READY").touch()
    return d


def predictions_csv(world: World, *, rows: int = ROWS) -> bytes:
    return ("prediction\n" + "".join(f"{int(p)}\n" for p in world.predictions[:rows])).encode()


# --- one node: registry, outbox, governor ------------------------------------------------------


class CheckingRegistry(DirectoryRegistry):
    """The real registry; moving a pointer first asserts its promote record is committed."""

    def __init__(self, root: Path, outbox: Outbox) -> None:
        super().__init__(root)
        self.outbox = outbox
        self.fail_next_set: BaseException | None = None

    def set_stage(self, name: str, stage: str, version: str) -> None:
        records = [AuditRecord.from_envelope(e.envelope, NODE_KEY.public)
                   for e in self.outbox.entries()]
        assert any(r.event is EventType.PROMOTE and r.subject.version == version
                   for r in records), "stage pointer moved before its promote record"
        if self.fail_next_set is not None:
            exc, self.fail_next_set = self.fail_next_set, None
            raise exc
        super().set_stage(name, stage, version)


@dataclass
class Node:
    dir: Path
    models: Path
    config: AgentConfig
    model: ModelConfig
    outbox: Outbox
    registry: CheckingRegistry
    governor: Governor

    def records(self) -> list[AuditRecord]:
        return [AuditRecord.from_envelope(e.envelope, NODE_KEY.public)
                for e in self.outbox.entries()]

    def govern(self, world: World, version: str, *, approvals: tuple[Approval, ...] = (),
               model: ModelConfig | None = None) -> Any:
        return self.governor.govern(model or self.model, version, bundle=world.bundle,
                                    engine=world.engine, approvals=approvals, now=NOW)


def make_node(tmp_path: Path, world: World, **model_settings: Any) -> Node:
    models = tmp_path / "models"
    models.mkdir()
    settings: dict[str, Any] = {"name": NAME, "data": world.data, "label": "repaid",
                                "sensitive": ("sex",), **model_settings}
    model = ModelConfig(**settings)
    config = AgentConfig(node_id=NodeId("emea-1"), hub="127.0.0.1:7443", insecure=True,
                         state_dir=tmp_path, registry=models, models=(model,))
    outbox = Outbox.open(config.outbox_path, "emea-1", NODE_KEY)
    registry = CheckingRegistry(models, outbox)
    governor = Governor(config, registry, outbox, log=logging.getLogger(LOG_NAME))
    return Node(tmp_path, models, config, model, outbox, registry, governor)


@pytest.fixture
def node(tmp_path: Path, world: World) -> Iterator[Node]:
    n = make_node(tmp_path, world)
    yield n
    n.outbox.close()


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger=LOG_NAME)
    return caplog


def approvals_for(world: World, version: str) -> tuple[Approval, ...]:
    subject = f"{NAME}:{version}"
    out = []
    for signer, role in ((_world.RISK, "risk_officer"), (_world.COMPLIANCE, "compliance")):
        path = _world.write_approval(world.dir / f"{role}-{version}.approval", signer, role,
                                     subject)
        out.append(Approval.from_envelope(path.read_bytes(), world.trust_root))
    return tuple(out)


# --- the pipeline ------------------------------------------------------------------------------


def test_validate_version_decides_from_checks_on_the_nodes_data(
    tmp_path: Path, world: World, node: Node
) -> None:
    publish(world, node.models, "1")
    mv = node.registry.read(NAME, "1")
    v = validate_version(node.model, mv, world.engine, now=NOW, work_dir=tmp_path / "work")
    assert v.decision.allow, v.decision.violations
    assert v.target_stage == "staging"
    assert v.input_sha256 == sha256_hex(canonical_json(v.policy_input))
    assert v.decision.input_sha256 == v.input_sha256
    assert v.decision.bundle_digest == world.bundle.digest
    assert v.policy_input["model"] == {"name": NAME, "version": "1", "stage": "staging",
                                       "n_features": 2, "artifact_sha256": mv.artefact_sha256}
    assert v.evidence["data"]["rows"] == ROWS
    assert v.evidence["performance"]["accuracy"] > 0.95
    assert v.evidence["lineage"]["model_sha256"] == mv.artefact_sha256
    assert v.evidence["documentation"]["model_card_present"] is True
    assert set(v.evidence["fairness"]) == {"sex"}


def test_promote_records_first_then_moves_the_pointer(world: World, node: Node) -> None:
    publish(world, node.models, "1")
    assert node.governor.pending() == [(node.model, "1")]
    outcome = node.govern(world, "1")
    assert outcome.kind is OutcomeKind.PROMOTED
    assert node.registry.current(NAME, "staging") == "1"  # CheckingRegistry saw the record
    validated, record = node.records()  # model_validated first, then the decision
    assert validated.event is EventType.MODEL_VALIDATED and validated.seq < record.seq
    assert record.event is EventType.PROMOTE
    assert record.subject.to_obj() == {"model": NAME, "version": "1",
                                       "artifact_sha256": outcome.validation.version.
                                       artefact_sha256}
    assert record.policy is not None
    assert (record.policy.name, record.policy.version, record.policy.digest) == (
        "standard", world.bundle.version, world.bundle.digest)
    assert record.decision is not None and record.decision.allow is True
    assert record.decision.violations == ()
    ev = thaw(record.evidence)
    assert ev["policy_input"]["sha256"] == outcome.validation.input_sha256
    # What Rego saw, when the bundle projects its input (the standard bundle does).
    d = outcome.validation.decision
    assert ev["policy_input"]["projection"] == (None if d.projection is None
                                                else list(d.projection))
    assert ev["policy_input"]["projected_sha256"] == d.projected_sha256
    assert ev["performance"] == outcome.validation.evidence["performance"]
    assert node.governor.pending() == []  # decided: not validated again


def test_a_denied_version_is_blocked_with_its_violations(world: World, node: Node) -> None:
    publish(world, node.models, "1", stage="production")  # needs two approvals
    outcome = node.govern(world, "1")
    assert outcome.kind is OutcomeKind.BLOCKED
    assert node.registry.stages(NAME) == {}
    validated, record = node.records()
    assert validated.event is EventType.MODEL_VALIDATED and validated.decision == record.decision
    assert record.event is EventType.BLOCK and record.decision is not None
    assert record.decision.allow is False
    rules = {v["rule"] for v in record.decision.violations}
    assert rules == {"approvals.required_role"}
    assert record.policy is not None and record.policy.digest == world.bundle.digest
    assert node.governor.pending() == []


def test_approvals_fetched_and_verified_promote_to_production(world: World, node: Node) -> None:
    publish(world, node.models, "2", stage="production")
    outcome = node.govern(world, "2", approvals=approvals_for(world, "2"))
    assert outcome.kind is OutcomeKind.PROMOTED, outcome.validation.decision.violations
    assert node.registry.current(NAME, "production") == "2"
    roles = {a["role"] for a in outcome.validation.policy_input["approvals"]}
    assert roles == {"risk_officer", "compliance"}


@pytest.mark.parametrize("stage", ["staging", "production"])
def test_saved_input_replays_with_policy_eval(
    world: World, node: Node, stage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    publish(world, node.models, "1", stage=stage)
    outcome = node.govern(world, "1")
    validated, record = node.records()
    assert validated.evidence["policy_input"] == record.evidence["policy_input"]
    digest = record.evidence["policy_input"]["sha256"]
    saved = node.dir / INPUTS_DIR / f"{digest}.json"
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == digest
    capsys.readouterr()
    code = main(["policy", "eval", str(world.bundle_file), "--root", str(world.root),
                 "--input", str(saved)])
    replay = json.loads(capsys.readouterr().out)
    assert record.decision is not None
    assert code == (0 if record.decision.allow else 1)
    assert replay["allow"] is record.decision.allow is (outcome.kind is OutcomeKind.PROMOTED)
    assert replay["violations"] == list(record.decision.violations)
    assert replay["input_sha256"] == digest
    assert replay["bundle"]["digest"] == record.policy.digest  # type: ignore[union-attr]


def test_a_predictions_artefact_is_joined_row_by_row(
    tmp_path: Path, world: World, node: Node
) -> None:
    publish(world, node.models, "model")
    publish(world, node.models, "preds", artefact=("predictions.csv", predictions_csv(world)))
    work = tmp_path / "work"
    by_model = validate_version(node.model, node.registry.read(NAME, "model"), world.engine,
                                now=NOW, work_dir=work)
    mv = node.registry.read(NAME, "preds")
    v = validate_version(node.model, mv, world.engine, now=NOW, work_dir=work)
    # The same predictions, so the same confusion counts and fairness evidence.
    for metric in ("accuracy", "precision", "recall", "f1"):
        assert v.evidence["performance"][metric] == by_model.evidence["performance"][metric]
    assert v.evidence["fairness"] == by_model.evidence["fairness"]
    # The node's file is named, never the temporary join, and the join is gone.
    assert v.evidence["data"] == by_model.evidence["data"]
    assert list(work.iterdir()) == []
    assert v.evidence["lineage"]["model_sha256"] == mv.artefact_sha256
    # Predictions carry no scores: ROC AUC is missing, which the standard bundle denies.
    assert v.evidence["performance"]["roc_auc"] is None
    assert not v.decision.allow
    assert {x.rule for x in v.decision.violations} == {"performance.min_roc_auc"}


def test_a_target_stage_the_node_may_not_promote_to_is_a_block(
    tmp_path: Path, world: World, log: pytest.LogCaptureFixture
) -> None:
    node = make_node(tmp_path, world, stages=("staging",))
    try:
        publish(world, node.models, "1", stage="production")
        with pytest.raises(StageNotAllowedError, match="'production'"):
            validate_version(node.model, node.registry.read(NAME, "1"), world.engine,
                             now=NOW, work_dir=tmp_path / "work")
        outcome = node.govern(world, "1")
        assert outcome.kind is OutcomeKind.BLOCKED
        [record] = node.records()
        assert record.event is EventType.BLOCK and record.decision is not None
        assert [v["rule"] for v in record.decision.violations] == [STAGE_RULE]
        assert thaw(record.evidence)["refused"]["allowed_stages"] == ["staging"]
        assert node.registry.stages(NAME) == {} and node.governor.pending() == []
        assert any("target stage not allowed" in r.getMessage() for r in log.records)
    finally:
        node.outbox.close()


# --- bad versions: one validation_error record each, never a retry loop ------------------------


def _garbage_model(world: World, models: Path) -> str:
    publish(world, models, "1", artefact=("model.onnx", b"\x08\x07 not really a graph"))
    return hashlib.sha256(b"\x08\x07 not really a graph").hexdigest()


def _missing_manifest(world: World, models: Path) -> str:
    publish(world, models, "1", write_manifest=False)
    return GENESIS_PREV  # no manifest bytes, no artefact digest: 64 zeros


def _garbled_manifest(world: World, models: Path) -> str:
    text = "model: {name: credit-risk, version: '1'\nartifact: [unclosed\n"
    publish(world, models, "1", manifest=text)
    return hashlib.sha256(text.encode()).hexdigest()


def _manifest_without_stage(world: World, models: Path) -> str:
    sha = hashlib.sha256(world.model).hexdigest()
    text = manifest_text("1", "model.onnx", sha, stage="staging", train_sha="00" * 32)
    text = text.replace(", target_stage: staging", "")
    publish(world, models, "1", manifest=text)
    return hashlib.sha256(text.encode()).hexdigest()


def _artefact_changed_after_publishing(world: World, models: Path) -> str:
    d = publish(world, models, "1")
    (d / "model.onnx").write_bytes(world.model + b"tampered")
    return hashlib.sha256((d / "manifest.yaml").read_bytes()).hexdigest()


def _joblib_not_trusted(world: World, models: Path) -> str:
    import joblib

    path = world.dir / "m.joblib"
    joblib.dump({"not": "a model"}, path)
    publish(world, models, "1", artefact=("model.joblib", path.read_bytes()))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _too_few_predictions(world: World, models: Path) -> str:
    content = predictions_csv(world, rows=ROWS - 3)
    publish(world, models, "1", artefact=("predictions.csv", content))
    return hashlib.sha256(content).hexdigest()


def _model_for_other_data(world: World, models: Path) -> str:
    publish(world, models, "1")
    return hashlib.sha256(world.model).hexdigest()


# name → (how to publish it (returns the expected subject digest), model settings,
#         expected error type, a fragment of the message)
BAD_VERSIONS: dict[str, tuple[Callable[[World, Path], str], dict[str, Any], str, str]] = {
    "missing manifest": (_missing_manifest, {}, "DataError", "no such manifest file"),
    "garbled manifest": (_garbled_manifest, {}, "FormatError", "manifest.yaml"),
    "manifest without target stage": (_manifest_without_stage, {}, "FormatError",
                                      "target_stage"),
    "artefact fails to load": (_garbage_model, {}, "DataError", "not a loadable ONNX model"),
    "artefact altered after publishing": (_artefact_changed_after_publishing, {},
                                          "DigestMismatchError", "SHA-256 is"),
    "joblib without trust_pickle": (_joblib_not_trusted, {}, "UsageError",
                                    "refusing to load"),
    "data without the label column": (_model_for_other_data, {"label": "repaid",
                                                              "data": "nolabel"},
                                      "DataError", "repaid"),
    "predictions row count mismatch": (_too_few_predictions, {}, "DataError",
                                       f"{ROWS - 3} prediction rows"),
}


@pytest.mark.parametrize("case", list(BAD_VERSIONS))
def test_a_bad_version_is_one_signed_validation_error(
    tmp_path: Path, world: World, log: pytest.LogCaptureFixture, case: str
) -> None:
    build, settings, error, fragment = BAD_VERSIONS[case]
    if settings.get("data") == "nolabel":
        settings = {**settings, "data": world.nolabel}
    node = make_node(tmp_path, world, **settings)
    try:
        digest = build(world, node.models)
        assert node.governor.pending() == [(node.model, "1")]
        outcome = node.govern(world, "1")  # never raises for a bad version
        assert outcome.kind is OutcomeKind.ERROR
        [record] = node.records()
        assert record.event is EventType.VALIDATION_ERROR
        assert record.subject.to_obj() == {"model": NAME, "version": "1",
                                           "artifact_sha256": digest}
        assert record.evidence["error"] == error
        assert fragment in record.evidence["message"]
        assert record.decision is None and record.policy is not None
        assert node.registry.stages(NAME) == {}
        errors = [r for r in log.records if r.levelno >= logging.ERROR]
        assert any("could not be validated" in r.getMessage() for r in errors)
        # Decided-with-error: not validated again on the next pass (no retry loop).
        assert node.governor.pending() == []
        state = json.loads((node.dir / DECISIONS_FILE).read_text())
        assert state["decided"][NAME]["1"]["outcome"] == "validation_error"
    finally:
        node.outbox.close()


def test_errors_on_joined_predictions_name_the_nodes_files(
    tmp_path: Path, world: World
) -> None:
    holes = tmp_path / "holes.csv"
    lines = world.data.read_text().splitlines()
    lines[5] = lines[5].rsplit(",", 1)[0] + ","  # data row 5 has no label
    holes.write_text("\n".join(lines) + "\n")
    node = make_node(tmp_path, world, data=holes)
    try:
        publish(world, node.models, "1", artefact=("predictions.csv", predictions_csv(world)))
        outcome = node.govern(world, "1")
        assert outcome.kind is OutcomeKind.ERROR and outcome.error is not None
        assert str(holes) in outcome.error and "predictions.csv" in outcome.error
        assert ".join-" not in outcome.error and "missing value" in outcome.error
    finally:
        node.outbox.close()

def test_a_half_written_version_is_not_pending_until_ready(world: World, node: Node) -> None:
    d = publish(world, node.models, "1", ready=False)
    assert node.governor.pending() == []
    (d / "READY").touch()  # the publisher finishes
    assert node.governor.pending() == [(node.model, "1")]


def test_no_versions_yet_is_nothing_pending(node: Node) -> None:
    assert node.governor.pending() == []  # no models/credit-risk directory at all


# --- storage errors and crashes ----------------------------------------------------------------


class FullOutbox:
    """An outbox whose disk is full: every append refused, nothing written."""

    def __init__(self, real: Outbox) -> None:
        self.real = real

    def append(self, **_: Any) -> AuditRecord:
        raise StorageFullError("outbox.db: database or disk is full")

    def entries(self) -> Any:
        return self.real.entries()


@pytest.mark.parametrize("case", ["good version", "bad version"])
def test_outbox_storage_errors_leave_the_version_pending(
    world: World, node: Node, case: str
) -> None:
    if case == "good version":
        publish(world, node.models, "1")
    else:
        publish(world, node.models, "1", write_manifest=False)
    full = Governor(node.config, node.registry, FullOutbox(node.outbox),  # type: ignore[arg-type]
                    log=logging.getLogger(LOG_NAME))
    with pytest.raises(StorageFullError):
        full.govern(node.model, "1", bundle=world.bundle, engine=world.engine, approvals=(),
                    now=NOW)
    assert node.registry.stages(NAME) == {} and node.records() == []
    assert node.governor.pending() == [(node.model, "1")]  # retried on a later pass
    node.govern(world, "1")  # space again: decided now
    expected = ([EventType.MODEL_VALIDATED, EventType.PROMOTE] if case == "good version"
                else [EventType.VALIDATION_ERROR])
    assert [r.event for r in node.records()] == expected and node.governor.pending() == []


def test_a_crash_after_the_record_revalidates_never_acts_unrecorded(
    world: World, node: Node
) -> None:
    publish(world, node.models, "1")
    node.registry.fail_next_set = StorageUnavailableError("stages/staging: read-only")
    with pytest.raises(StorageUnavailableError):
        node.govern(world, "1")
    assert [r.event for r in node.records()] == [EventType.MODEL_VALIDATED, EventType.PROMOTE]
    assert node.registry.stages(NAME) == {}
    assert node.governor.pending() == [(node.model, "1")]  # state not saved: re-validated
    node.govern(world, "1")
    # A second record for the same version (documented), and the pointer only after it.
    assert [r.event for r in node.records()] == [EventType.MODEL_VALIDATED, EventType.PROMOTE] * 2
    assert node.registry.current(NAME, "staging") == "1"
    assert node.governor.pending() == []


def test_an_unreadable_decided_state_is_refused_not_forgotten(
    world: World, node: Node
) -> None:
    publish(world, node.models, "1")
    node.govern(world, "1")
    (node.dir / DECISIONS_FILE).write_text('{"schema": "warden.agent-decisions/v1", "dec')
    with pytest.raises(StorageUnavailableError, match=DECISIONS_FILE):
        node.governor.pending()


# --- aggregates only ---------------------------------------------------------------------------


def test_records_and_saved_inputs_hold_no_raw_rows(
    tmp_path: Path, world: World, node: Node
) -> None:
    publish(world, node.models, "1")
    publish(world, node.models, "2", stage="production")
    publish(world, node.models, "3", artefact=("predictions.csv", predictions_csv(world)))
    publish(world, node.models, "4", artefact=("model.onnx", b"garbage"))
    for version in ("1", "2", "3", "4"):
        node.govern(world, version)
    mv = EventType.MODEL_VALIDATED
    assert [r.event for r in node.records()] == [
        mv, EventType.PROMOTE, mv, EventType.BLOCK, mv, EventType.BLOCK,
        EventType.VALIDATION_ERROR]
    # The exact signed payloads, as the hub and any auditor receive them.
    texts = [dsse.from_bytes(e.envelope).payload.decode() for e in node.outbox.entries()]
    texts += [p.read_text() for p in (node.dir / INPUTS_DIR).iterdir()]
    assert len(texts) == 7 + 3
    for text in texts:
        assert ID_PREFIX not in text
    # Rows are only ever counted, never listed: no evidence value is a list as long as the data.
    def lists(obj: Any) -> Iterator[list[Any]]:
        if isinstance(obj, list):
            yield obj
            for x in obj:
                yield from lists(x)
        elif isinstance(obj, dict):
            for x in obj.values():
                yield from lists(x)
    for r in node.records():
        assert all(len(x) < ROWS // 10 for x in lists(thaw(r.evidence)))


def test_importing_the_pipeline_stays_light() -> None:
    code = "import agent.validation, sys; assert 'numpy' not in sys.modules; " \
           "assert 'pyarrow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)

