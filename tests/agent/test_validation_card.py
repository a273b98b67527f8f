"""Model cards and the ``model_validated`` record in the governor (issue 11, items 7 and 9).

Covers: a governed version yields ``model_validated`` then its decision record, and the card
files written at ``state_dir/cards/<model>/<version>/`` have the digests both records carry;
``evidence_sha256`` recomputes from the decision record; a real scikit-learn model trained
on biased labels is blocked for fairness and gets fairlearn's advice (the same as asking
:func:`agent.reports.fairness_advice` directly) in the record and in both card files; a
predictions artefact blocked for fairness and a node without fairlearn get a ``skipped``
reason, failing advice an ``error`` — the block stands in every case; a card directory that
cannot be written leaves no record and the version pending; a card that cannot be rendered
is recorded as such and governance goes on; importing the pipeline loads no Jinja2.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.machinery import ModuleSpec
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from agent import model_card as model_card_mod
from agent import reports as reports_mod
from agent.model_card import CARDS_DIR, HTML_FILE, MARKDOWN_FILE
from agent.reports import constraint_for, fairness_advice
from agent.validation import DECISIONS_FILE, NO_FAIRLEARN, OutcomeKind
from tests.agent.test_validation import NAME, NOW, ROWS, Node, World, make_node, publish
from tests.agent.test_validation import node as node  # noqa: F401 - the shared fixtures
from tests.agent.test_validation import world as world  # noqa: F401
from trust._internal.frozen import thaw
from trust.canonical import canonical_json, loads_object, sha256_hex
from trust.errors import CheckError, FormatError, StorageUnavailableError
from trust.record import AuditRecord, EventType

REPO = Path(__file__).resolve().parents[2]
sys.path.append(str(REPO / "bench"))
from gen_credit_model import (  # type: ignore[import-not-found,unused-ignore]  # noqa: E402
    credit_table,
    write_release,
)

LOG_NAME = "test.validation"


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def card_files(n: Node, version: str) -> tuple[Path, Path]:
    d = n.dir / CARDS_DIR / NAME / version
    return d / MARKDOWN_FILE, d / HTML_FILE


def decided(n: Node, version: str) -> dict[str, Any]:
    doc = loads_object((n.dir / DECISIONS_FILE).read_bytes(), what="decisions")
    entry = doc["decided"][NAME][version]
    assert isinstance(entry, dict)
    return entry


def assert_card_matches(n: Node, version: str, validated: AuditRecord,
                        decision: AuditRecord) -> tuple[str, str]:
    """The card files exist and both records name exactly their bytes; their texts."""
    md, html = card_files(n, version)
    card = thaw(validated.evidence)["model_card"]
    assert card == {"markdown": {"name": MARKDOWN_FILE, "sha256": sha256_file(md)},
                    "html": {"name": HTML_FILE, "sha256": sha256_file(html)}}
    assert thaw(decision.evidence)["model_card"] == {"markdown_sha256": sha256_file(md),
                                                     "html_sha256": sha256_file(html)}
    assert decided(n, version)["model_card_sha256"] == sha256_file(md)
    return md.read_text(encoding="utf-8"), html.read_text(encoding="utf-8")


# --- a promoted version ------------------------------------------------------------------------


def test_a_promoted_version_is_validated_then_promoted_with_its_card(
    world: World, node: Node
) -> None:
    publish(world, node.models, "1")
    outcome = node.govern(world, "1")
    assert outcome.kind is OutcomeKind.PROMOTED
    validated, promote = node.records()
    assert [validated.event, promote.event] == [EventType.MODEL_VALIDATED, EventType.PROMOTE]
    assert outcome.validated_record == validated and outcome.record == promote
    assert validated.subject == promote.subject
    assert validated.policy == promote.policy and validated.policy is not None
    assert validated.policy.digest == world.bundle.digest
    assert validated.decision == promote.decision and promote.decision is not None
    assert promote.decision.allow is True

    md_text, html_text = assert_card_matches(node, "1", validated, promote)
    assert outcome.card_paths == card_files(node, "1")
    ev = thaw(validated.evidence)
    assert set(ev) == {"evidence_sha256", "policy_input", "model_card", "decision", "advice"}
    assert ev["decision"] == {"allow": True, "violations": []}
    assert ev["advice"] is None and outcome.advice is None
    assert ev["policy_input"] == thaw(promote.evidence)["policy_input"]
    assert ev["policy_input"]["sha256"] == outcome.validation.input_sha256
    # evidence_sha256 recomputes from the decision record (without its model_card key), and
    # the card shows the same digest: card, records and evidence tie together.
    recorded = {k: v for k, v in thaw(promote.evidence).items() if k != "model_card"}
    assert ev["evidence_sha256"] == sha256_hex(canonical_json(recorded))
    for text in (md_text, html_text):
        assert ev["evidence_sha256"] in text
        assert world.bundle.digest in text and ev["policy_input"]["sha256"] in text
    assert "ALLOWED: promotion to staging" in md_text
    # The trainer's own card is quoted in the node's card.
    assert "Described." in md_text and "Described." in html_text
    entry = decided(node, "1")
    assert (entry["seq"], entry["validated_seq"]) == (promote.seq, validated.seq)
    assert node.registry.current(NAME, "staging") == "1" and node.governor.pending() == []


def test_records_hold_file_names_not_node_paths(world: World, node: Node) -> None:
    publish(world, node.models, "1")
    node.govern(world, "1")
    for envelope in (e.envelope for e in node.outbox.entries()):
        assert str(node.dir).encode() not in envelope


# --- fairness: a real biased model, advice in the record and the card -------------------------


@dataclass(frozen=True)
class Biased:
    dir: Path
    data: Path  # the node's validation data (Parquet)


@pytest.fixture(scope="module")
def biased(tmp_path_factory: pytest.TempPathFactory) -> Biased:
    d = tmp_path_factory.mktemp("biased")
    data = d / "validation.parquet"
    pq.write_table(credit_table(3000, seed=11), data)
    return Biased(d, data)


@pytest.fixture
def biased_node(tmp_path: Path, world: World, biased: Biased) -> Iterator[Node]:
    """A node whose validation data is the credit table; version 1 a scikit-learn model
    trained on labels that under-report women who repaid (bench/gen_credit_model.py)."""
    n = make_node(tmp_path, world, data=biased.data)
    write_release(n.models, NAME, "1", bias=0.3, rows=5000, today=NOW.date())
    yield n
    n.outbox.close()


def fairness_rules(record: AuditRecord) -> list[str]:
    assert record.decision is not None
    return sorted(v["rule"] for v in record.decision.violations
                  if v["rule"].startswith("fairness."))


def test_a_fairness_block_carries_fairlearns_advice_in_record_and_card(
    world: World, biased_node: Node
) -> None:
    outcome = biased_node.govern(world, "1")
    assert outcome.kind is OutcomeKind.BLOCKED
    validated, block = biased_node.records()
    assert [validated.event, block.event] == [EventType.MODEL_VALIDATED, EventType.BLOCK]
    rules = fairness_rules(block)
    assert "fairness.demographic_parity_difference" in rules
    ev = thaw(validated.evidence)
    assert ev["decision"]["allow"] is False and set(rules) <= set(ev["decision"]["violations"])

    # The advice is fairlearn's, exactly as asked directly with the node's settings.
    mv = biased_node.registry.read(NAME, "1")
    direct = fairness_advice(
        model=mv.artefact_path, data=biased_node.model.data, label="repaid", sensitive="sex",
        thresholds=world.bundle.data, constraint=constraint_for(rules),
        features=mv.manifest.features,
    ).to_dict()
    advice = ev["advice"]
    assert advice == direct and outcome.advice == direct
    assert advice["method"] == "fairlearn.postprocessing.ThresholdOptimizer"
    assert advice["sensitive_feature"] == "sex" and advice["feasible"] is True
    assert (advice["metrics_before"]["demographic_parity_difference"]
            > world.bundle.data["max_demographic_parity_difference"])
    assert "app-" not in str(advice)  # aggregates only: no applicant id
    # The block stands: advice never changes the decision, nothing moved.
    assert block.decision is not None and block.decision.allow is False
    assert biased_node.registry.stages(NAME) == {}

    md_text, html_text = assert_card_matches(biased_node, "1", validated, block)
    for text in (md_text, html_text):
        assert "Fairness mitigation advice" in text
        assert "ThresholdOptimizer" in text
        assert "a post-processing of the model&#39;s scores exists" in text or \
            "a post-processing of the model's scores exists" in text
        assert f"{advice['accuracy_after']:.4f}" in text
        assert "DENIED: not promoted to staging" in text
        assert "app-" not in text


def test_without_fairlearn_the_advice_says_so_and_the_block_stands(
    world: World, biased_node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> ModuleSpec | None:
        return None if name == "fairlearn" else real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    outcome = biased_node.govern(world, "1")
    assert outcome.kind is OutcomeKind.BLOCKED
    validated, block = biased_node.records()
    assert fairness_rules(block)
    assert thaw(validated.evidence)["advice"] == {"skipped": NO_FAIRLEARN}
    assert outcome.advice == {"skipped": NO_FAIRLEARN}
    md_text, html_text = assert_card_matches(biased_node, "1", validated, block)
    assert "Fairness mitigation advice" in md_text and "fairlearn is not installed" in html_text


@pytest.mark.parametrize("failure", ["warden error", "unexpected"])
def test_failing_advice_is_recorded_and_never_turns_a_block_into_an_error(
    world: World, biased_node: Node, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture, failure: str,
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOG_NAME)

    def failing_advice(**_: Any) -> Any:
        if failure == "warden error":
            raise CheckError("validation.parquet: fairlearn cannot post-process the model")
        raise RuntimeError("a defect in a library")

    monkeypatch.setattr(reports_mod, "fairness_advice", failing_advice)
    outcome = biased_node.govern(world, "1")
    assert outcome.kind is OutcomeKind.BLOCKED
    validated, block = biased_node.records()
    expected = ({"error": "validation.parquet: fairlearn cannot post-process the model"}
                if failure == "warden error" else {"error": "RuntimeError: a defect in a library"})
    assert thaw(validated.evidence)["advice"] == expected == outcome.advice
    assert block.event is EventType.BLOCK and decided(biased_node, "1")["outcome"] == "blocked"
    if failure == "unexpected":
        assert any(r.exc_info for r in caplog.records
                   if "fairness advice failed unexpectedly" in r.getMessage())


def biased_predictions() -> bytes:
    """Predictions on test_validation's data (income = (i // 2) % 100, sex alternating M, F)
    that approve women only at far higher incomes: a demographic parity violation."""
    lines = ["prediction"]
    for i in range(ROWS):
        income, female = (i // 2) % 100, bool(i % 2)
        lines.append(str(int(income >= (85 if female else 40))))
    return ("\n".join(lines) + "\n").encode()


def test_a_predictions_artefact_blocked_for_fairness_runs_no_advice(
    world: World, node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    def must_not_run(**_: Any) -> Any:
        raise AssertionError("advice asked for a predictions artefact")

    monkeypatch.setattr(reports_mod, "fairness_advice", must_not_run)
    publish(world, node.models, "p", artefact=("predictions.csv", biased_predictions()))
    outcome = node.govern(world, "p")
    assert outcome.kind is OutcomeKind.BLOCKED
    validated, block = node.records()
    assert "fairness.demographic_parity_difference" in fairness_rules(block)
    skipped = {"skipped": "a predictions artefact has no model to post-process"}
    assert thaw(validated.evidence)["advice"] == skipped == outcome.advice
    md_text, _ = assert_card_matches(node, "p", validated, block)
    assert "a predictions artefact has no model to post-process" in md_text


def test_a_block_not_for_fairness_has_no_advice(world: World, node: Node) -> None:
    publish(world, node.models, "1", stage="production")  # denied: no approvals
    outcome = node.govern(world, "1")
    assert outcome.kind is OutcomeKind.BLOCKED
    validated, block = node.records()
    assert fairness_rules(block) == []
    assert thaw(validated.evidence)["advice"] is None and outcome.advice is None
    md_text, _ = assert_card_matches(node, "1", validated, block)
    assert "Fairness mitigation advice" not in md_text


# --- storage and rendering failures ------------------------------------------------------------


def test_a_card_directory_that_cannot_be_written_records_nothing(
    world: World, node: Node
) -> None:
    # A file where the cards directory belongs: mkdir fails for every user, root included
    # (a chmod would not stop root, which these tests may run as).
    blocker = node.dir / CARDS_DIR
    blocker.write_text("not a directory")
    publish(world, node.models, "1")
    with pytest.raises(StorageUnavailableError, match="cannot write the model card"):
        node.govern(world, "1")
    assert node.records() == []  # neither model_validated nor promote
    assert node.registry.stages(NAME) == {}
    assert node.governor.pending() == [(node.model, "1")]  # retried on a later pass
    assert not (node.dir / DECISIONS_FILE).exists()

    blocker.unlink()  # the operator fixes the disk
    outcome = node.govern(world, "1")
    assert outcome.kind is OutcomeKind.PROMOTED
    validated, promote = node.records()
    assert_card_matches(node, "1", validated, promote)
    assert node.governor.pending() == []


def test_a_card_that_cannot_be_rendered_is_recorded_and_governance_goes_on(
    world: World, node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(**_: Any) -> Any:
        raise FormatError("evidence.data.rows: expected a number or null, got a list")

    monkeypatch.setattr(model_card_mod, "render_model_card", refuse)
    publish(world, node.models, "1")
    outcome = node.govern(world, "1")
    assert outcome.kind is OutcomeKind.PROMOTED and outcome.card_paths is None
    validated, promote = node.records()
    error = {"error": "evidence.data.rows: expected a number or null, got a list"}
    assert thaw(validated.evidence)["model_card"] == error
    assert thaw(promote.evidence)["model_card"] == error
    assert decided(node, "1")["model_card_sha256"] is None
    assert not (node.dir / CARDS_DIR).exists()
    assert node.registry.current(NAME, "staging") == "1"


def test_each_version_gets_its_own_card(world: World, node: Node) -> None:
    publish(world, node.models, "1")
    publish(world, node.models, "2", artefact=("predictions.csv", biased_predictions()))
    first, second = node.govern(world, "1"), node.govern(world, "2")
    assert first.card_paths == card_files(node, "1")
    assert second.card_paths == card_files(node, "2")
    assert [r.event for r in node.records()] == [
        EventType.MODEL_VALIDATED, EventType.PROMOTE, EventType.MODEL_VALIDATED, EventType.BLOCK]
    v1, p1, v2, b2 = node.records()
    assert_card_matches(node, "1", v1, p1)
    assert_card_matches(node, "2", v2, b2)
    assert sha256_file(card_files(node, "1")[0]) != sha256_file(card_files(node, "2")[0])


# --- lazy imports ------------------------------------------------------------------------------


def test_importing_the_pipeline_loads_no_card_renderer_or_fairlearn() -> None:
    code = ("import sys, agent.validation\n"
            "print(sorted(m for m in ('jinja2', 'fairlearn', 'sklearn', 'markupsafe')"
            " if m in sys.modules))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=REPO, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
