"""Model cards (agent/model_card.py) from a real validation: a registry version, the checks
run on synthetic data with a small group, an unmeasurable feature and drift, and the decision
of the signed standard bundle on that evidence.

Covers: every Mitchell et al. section in both formats (and Warden's own documentation check
finds the Markdown complete), the fairness table (every group, every rate with its interval),
disparities, the drift table, the decision and the policy, mitigation advice, escaping (a
``<script>`` model name and intended use in HTML, table pipes in Markdown, the trainer's card
quoted verbatim), a self-contained HTML file, deterministic bytes, atomic writing, no row value
in either file, malformed inputs refused, and a light import.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from markupsafe import escape

from agent.checks.documentation import SECTIONS as MITCHELL_SECTIONS
from agent.checks.documentation import card_sections
from agent.checks.run import CheckSpec, run_checks
from agent.model_card import (
    HTML_FILE,
    MARKDOWN_FILE,
    SECTIONS,
    ModelCard,
    render_model_card,
    write_model_card,
)
from agent.policy_input import ModelInfo, build_policy_input
from agent.registry import DirectoryRegistry, ModelManifest
from tests.agent import _world
from trust.errors import FormatError, StorageUnavailableError
from trust.policy.bundle import PolicyBundle, read_bundle_file
from trust.policy.engine import PolicyEngine
from trust.record import PolicyRef
from trust.root import TrustRoot

REPO = Path(__file__).resolve().parents[2]
NOW = _world.NOW
NAME, VERSION = "credit-risk", "2.1.0"
ROWS = 1500
NODE = "node-emea-1"
# One customer id no aggregate can contain: it must never reach a card.
SENTINEL = "cust-SENTINEL-7q9z4"
ADVICE = {
    "method": "ThresholdOptimizer",
    "constraint": "demographic_parity",
    "feasible": True,
    "accuracy_before": 0.8511,
    "accuracy_after": 0.8312,
    "metrics_before": {"demographic_parity_difference": 0.1234},
    "metrics_after": {"demographic_parity_difference": 0.0123},
}
DRIFT_REPORT = {"file": "drift_report.html", "sha256": "d" * 64}
TRAINER_CARD = (
    "# credit-risk\n"
    + "".join(f"## {s}\nDescribed by the trainer.\n" for s in _world.CARD_SECTIONS)
    + "```python\nthreshold = 0.5  # a | pipe\n```\n<script>alert('card')</script>\n"
)
MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|&~$#!])")


def md(text: str) -> str:
    """Text as the Markdown card shows it: inline markup characters backslash-escaped."""
    return MD_SPECIAL.sub(r"\\\1", text)


def h(text: str) -> str:
    """Text as the HTML card shows it (Jinja2's autoescape: markupsafe)."""
    return str(escape(text))


def f4(x: float) -> str:
    """A rate as the card prints it (rates here are never below 1e-3 unless 0)."""
    return f"{x:.4f}"


@dataclass(frozen=True)
class World:
    manifest: ModelManifest
    evidence: dict[str, Any]
    decision: dict[str, Any]
    policy: PolicyRef
    data: Path


def _write_data(path: Path, *, shift: float, seed: int) -> Path:
    """Binary credit data: ``region`` has a 5-row group Z (suppressed at 30), ``segment``
    has one value only (unmeasurable); the id column is unique per row."""
    rng = np.random.default_rng(seed)
    lines = ["id,income,age,sex,region,segment,repaid,approved,p_approve"]
    for i in range(ROWS):
        income = rng.normal(50 + shift, 10)
        age = int(rng.integers(20, 70))
        sex = "F" if i % 2 else "M"
        region = "Z" if i < 5 else ("north" if i % 3 else "south")
        repaid = int(income + rng.normal(0, 5) > 50)
        p = float(np.clip((income - 30) / 40, 0, 1))
        ident = SENTINEL if i == 7 else f"cust-{seed}-{i:05d}"
        lines.append(f"{ident},{income:.3f},{age},{sex},{region},retail,{repaid},"
                     f"{int(p > 0.5)},{p:.5f}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _publish(models: Path) -> Path:
    """A registry version as a trainer publishes it (files first, READY last)."""
    d = models / NAME / VERSION
    d.mkdir(parents=True)
    artefact = d / "model.onnx"
    artefact.write_bytes(b"an onnx model, not loaded here: the data has its predictions")
    train = d / "train.csv"
    train.write_text("income,age,repaid\n40,30,0\n70,45,1\n")
    (d / "model_card.md").write_text(TRAINER_CARD)
    md5 = hashlib.md5(train.read_bytes()).hexdigest()  # noqa: S324 - DVC's content address
    (d / "train.csv.dvc").write_text(
        f"outs:\n- md5: {md5}\n  size: {train.stat().st_size}\n  hash: md5\n  path: train.csv\n")
    artefact_sha = hashlib.sha256(artefact.read_bytes()).hexdigest()
    snapshot = (NOW - timedelta(days=5)).date().isoformat()
    (d / "manifest.yaml").write_text(
        f"model: {{name: {NAME}, version: '{VERSION}', owner: risk-team, framework: sklearn,\n"
        "        intended_use: 'Retail credit scoring | pre-screening only', "
        "target_stage: production,\n        features: [income, age]}\n"
        f"artifact: {{path: model.onnx, sha256: '{artefact_sha}'}}\n"
        "code: {commit: 9f2c1e7, repository: 'git@example.org:risk/credit.git'}\n"
        "parameters: {C: 0.125, penalty: l2}\n"
        f"training_data: {{source: internal_db, path: train.csv, dvc: train.csv.dvc, "
        f"sha256: '{hashlib.sha256(train.read_bytes()).hexdigest()}', snapshot_date: {snapshot}}}\n"
        f"trained_at: {snapshot}T09:00:00Z\n"
    )
    (d / "READY").touch()
    return d


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    d = tmp_path_factory.mktemp("model-card-world")
    data = _write_data(d / "validation.csv", shift=0.0, seed=3)
    reference = _write_data(d / "reference.csv", shift=-8.0, seed=4)
    vdir = _publish(d / "models")
    version = DirectoryRegistry(d / "models").read(NAME, VERSION)
    evidence = run_checks(CheckSpec(
        data=data, label="repaid", pred="approved", score=("p_approve",),
        sensitive=("sex", "region", "segment"), min_group_size=30, reference=reference,
        drift_columns=("id", "income", "age", "sex", "region"),
        manifest=version.manifest_path, model_card=vdir / "model_card.md", now=NOW,
    ))
    root = TrustRoot.load(_world.write_root(d / "root.json"), now=NOW)
    bundle = PolicyBundle.from_envelope(
        read_bundle_file(_world.write_standard_bundle(d / "standard.bundle")), root, now=NOW)
    info = ModelInfo(NAME, VERSION, version.manifest.target_stage,
                     n_features=2, artifact_sha256=version.artefact_sha256)
    with PolicyEngine(bundle) as engine:
        decision = engine.evaluate(build_policy_input(evidence, info, now=NOW), now=NOW)
    yield World(version.manifest, evidence, decision.to_dict(),
                PolicyRef(bundle.name, bundle.version, bundle.digest), data)


def render(world: World, **overrides: Any) -> ModelCard:
    kwargs: dict[str, Any] = {
        "manifest": world.manifest,
        "evidence": world.evidence,
        "decision": world.decision,
        "policy": world.policy,
        "node_id": NODE,
        "generated_at": NOW,
        "advice": ADVICE,
        "drift_report": DRIFT_REPORT,
        "trainer_card": TRAINER_CARD,
    }
    kwargs.update(overrides)
    return render_model_card(**kwargs)


@pytest.fixture(scope="module")
def card(world: World) -> ModelCard:
    return render(world)


def md_rows(markdown: str, first_cell: str) -> list[list[str]]:
    """The Markdown table rows whose first cell is ``first_cell`` (as escaped), split on the
    unescaped pipes."""
    out = []
    for line in markdown.splitlines():
        if line.startswith(f"| {first_cell} |"):
            cells = re.split(r"(?<!\\)\|", line)[1:-1]
            out.append([c.strip() for c in cells])
    return out


def html_rows(page: str, first_cell: str) -> list[list[str]]:
    """The HTML data-table rows (no row header) whose first cell is ``first_cell``."""
    out = []
    for row in re.findall(r"<tr>(<td>.*?)</tr>", page):
        cells = re.findall(r"<td>(.*?)</td>", row)
        if cells and cells[0] == first_cell:
            out.append(cells)
    return out


# --- structure ---------------------------------------------------------------------------------


def test_the_world_is_what_the_card_tests_need(world: World) -> None:
    fairness = world.evidence["fairness"]
    assert fairness["region"]["suppressed_groups"] == ["Z"]
    assert fairness["segment"]["unmeasurable"] is not None
    assert any(c["drifted"] for c in world.evidence["drift"]["columns"].values())
    assert world.decision["allow"] is False and world.decision["violations"]
    assert world.decision["warnings"]


def test_every_section_heading_in_both_formats(card: ModelCard) -> None:
    md_headings = re.findall(r"^## (.+)$", card.markdown, re.M)
    titles = [title for _, title in SECTIONS]
    assert md_headings[: len(titles)] == titles
    for anchor, title in SECTIONS:
        assert f'<h2 id="{anchor}">{title}</h2>' in card.html
    # Warden's own documentation check (what the policy reads) finds a complete card.
    assert card_sections(card.markdown) == dict.fromkeys(MITCHELL_SECTIONS, True)


def test_model_details_and_data_identity(world: World, card: ModelCard) -> None:
    lineage = world.evidence["lineage"]
    data = world.evidence["data"]
    for text, esc in ((card.markdown, md), (card.html, h)):
        for value in (lineage["model_sha256"], "the measured digest equals the declared one",
                      "9f2c1e7", "git@example.org:risk/credit.git", "risk-team", "sklearn",
                      "Retail credit scoring | pre-screening only", data["sha256"],
                      str(data["rows"]), "validation.csv", lineage["data_sha256"], "internal_db",
                      "verified: the measured digest equals the declared one", "train.csv.dvc",
                      lineage["dvc"]["outs"][0]["actual_md5"]):
            assert esc(value) in text, value
    assert "- **Parameters:** C=0.125, penalty=l2" in card.markdown
    assert "<td>C=0.125, penalty=l2</td>" in card.html
    assert lineage["dvc"]["verified"] is True
    assert md_rows(card.markdown, "train.csv")[0][3] == "yes"


def test_a_dvc_mismatch_is_shown_and_a_caveat(world: World) -> None:
    lineage = world.evidence["lineage"]
    out = {**lineage["dvc"]["outs"][0], "actual_md5": "e" * 32, "verified": False}
    evidence = {**world.evidence, "lineage": {
        **lineage, "dvc": {**lineage["dvc"], "outs": [out], "verified": False}}}
    card = render(world, evidence=evidence)
    assert "<tr><th scope=\"row\">DVC verification</th><td>NOT VERIFIED</td></tr>" in card.html
    assert md_rows(card.markdown, "train.csv") == [
        ["train.csv", out["expected_md5"], "e" * 32, "NO", "—"]]
    assert "DVC pointer train.csv.dvc does not verify" in card.html


def test_fairness_table_has_every_group_with_its_intervals(world: World, card: ModelCard) -> None:
    rates = ("selection_rate", "tpr", "fpr", "fnr", "tnr", "precision", "accuracy")
    checked = 0
    for feature, entry in world.evidence["fairness"].items():
        for group, g in entry["groups"].items():
            md_found = md_rows(card.markdown, md(group))
            html_found = html_rows(card.html, h(group))
            assert md_found and html_found, (feature, group)
            if g["suppressed"]:
                expected = [str(g["n"]), *["suppressed"] * len(rates)]
            else:
                expected = [str(g["n"])] + [
                    f"{f4(g[r])} ({f4(g['ci'][r][0])}–{f4(g['ci'][r][1])})" for r in rates]
                checked += 1
            assert [r[1:] for r in md_found] == [expected], (feature, group)
            assert [r[1:] for r in html_found] == [expected], (feature, group)
    assert checked >= 8  # sex (2), region (2), the intersection's kept groups


def test_disparities_and_four_fifths_per_feature(world: World, card: ModelCard) -> None:
    sex = world.evidence["fairness"]["sex"]
    row = [c for r in md_rows(card.markdown, md("demographic_parity_difference")) for c in r]
    assert f4(sex["demographic_parity_difference"]) in row
    assert f4(sex["to_overall"]["demographic_parity_difference"]) in row
    assert f"reference group {sex['four_fifths']['reference_group']}" in card.markdown
    # A failing rule shows the policy's finding beside the feature's four-fifths figures.
    failing = {"rule": "fairness.four_fifths_rule", "severity": "high",
               "message": "sex: four-fifths rule fails (selection-rate ratio 0.7 < 0.8)"}
    denied = render(world, decision={"allow": False, "violations": [failing], "warnings": []})
    assert f"- **Policy finding:** {md(failing['message'])}" in denied.markdown
    assert "- **Policy finding:** —" in denied.markdown  # the other features: none
    # The unmeasurable feature is said so, with its reason, and in the caveats.
    reason = world.evidence["fairness"]["segment"]["unmeasurable"]["reason"]
    assert f"Fairness for segment could not be measured: {h(reason)}" in card.html
    assert "Z (5 rows)" in card.markdown  # the suppressed group, by size only


def test_drift_table_rows(world: World, card: ModelCard) -> None:
    for column, c in world.evidence["drift"]["columns"].items():
        expected = [column, c["column_type"], c["method"], f4(c["statistic"]),
                    f4(c["threshold"]), "YES" if c["drifted"] else "no", "—"]
        assert md_rows(card.markdown, md(column))[-1] == [md(x) for x in expected]
        assert html_rows(card.html, column)[-1] == expected
    assert "- **Drift report SHA-256:** " + "d" * 64 in card.markdown
    assert f"<td>{world.evidence['drift']['share_drifted']:.4f}</td>" in card.html


def test_decision_policy_and_violations(world: World, card: ModelCard) -> None:
    policy = world.policy
    assert "- **Outcome:** DENIED: not promoted to production" in card.markdown
    assert f"- **Policy:** {policy.name}" in card.markdown
    assert f"- **Policy version:** {policy.version}" in card.markdown
    assert f"- **Policy digest (SHA-256):** {policy.digest}" in card.markdown
    assert f"- **Node:** {NODE}" in card.markdown
    assert f"- **Card generated at:** {_world.NOW_TEXT}" in card.markdown
    assert f'<th scope="row">Policy version</th><td>{policy.version}</td>' in card.html
    assert '<span class="verdict deny">DENIED</span>' in card.html
    rules = {v["rule"] for v in world.decision["violations"]}
    assert {"approvals.required_role", "performance.min_accuracy"} <= rules
    for rule in rules:
        same = sorted((v["message"], v["severity"]) for v in world.decision["violations"]
                      if v["rule"] == rule)
        assert md_rows(card.markdown, md(rule)) == [[md(rule), sev, md(m)] for m, sev in same]
        assert html_rows(card.html, rule) == [[rule, sev, h(m)] for m, sev in same]
    for w in world.decision["warnings"]:
        assert f"<li>{h(w)}</li>" in card.html
        assert f"- {md(w)}" in card.markdown
    allowed = render(world, decision={"allow": True, "violations": [], "warnings": []})
    assert "- **Outcome:** ALLOWED: promotion to production" in allowed.markdown
    assert "No violations." in allowed.markdown and "No violations." in allowed.html
    assert "there is no fairness violation" in allowed.markdown


def test_performance_metric_names_its_violation(world: World, card: ModelCard) -> None:
    gated = {v["rule"].removeprefix("performance.min_"): v["message"]
             for v in world.decision["violations"] if v["rule"].startswith("performance.")}
    assert gated  # the world's accuracy is below the standard bundle's 0.85
    perf = world.evidence["performance"]
    for metric in ("accuracy", "precision", "recall", "f1", "roc_auc", "balanced_accuracy"):
        finding = md(gated[metric]) if metric in gated else "—"
        assert md_rows(card.markdown, md(metric)) == [[md(metric), f4(perf[metric]), finding]]


def test_advice_shown_only_when_given(world: World, card: ModelCard) -> None:
    assert "### Fairness mitigation advice" in card.markdown
    assert "- **Method:** ThresholdOptimizer" in card.markdown
    assert "- **Constraint:** demographic\\_parity" in card.markdown
    assert "- **Accuracy after mitigation:** 0.8312" in card.markdown
    assert "a post-processing of the model&#39;s scores exists" in card.html
    assert "- **Accuracy before mitigation:** 0.8511" in card.markdown
    name = md("demographic_parity_difference")
    assert [name, "0.1234", "0.0123"] in md_rows(card.markdown, name)
    infeasible = render(world, advice={**ADVICE, "feasible": False})
    assert "no post-processing of the model's scores was found" in infeasible.markdown
    without = render(world, advice=None)
    assert "Fairness mitigation advice" not in without.markdown
    assert "Fairness mitigation advice" not in without.html


# --- escaping ----------------------------------------------------------------------------------


def test_html_escapes_a_malicious_name_and_intended_use(world: World) -> None:
    evil = dataclasses.replace(
        world.manifest, name="<script>alert('name')</script>",
        intended_use='<img src=x onerror="alert(1)"> & <a href="https://evil.example/">x</a>',
    )
    card = render(world, manifest=evil)
    assert "<script" not in card.html and "<img" not in card.html
    assert "evil.example/\">" not in card.html
    assert "&lt;script&gt;alert(&#39;name&#39;)&lt;/script&gt;" in card.html
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt; &amp; &lt;a" in card.html
    # The trainer's card is quoted as text, not markup.
    assert "&lt;script&gt;alert(&#39;card&#39;)&lt;/script&gt;" in card.html
    body = card.markdown.split("## Appendix")[0]
    assert not re.search(r"(?<!\\)<", body)  # every '<' of a value is backslash-escaped
    assert "\\<script\\>alert('name')\\</script\\>" in body


def test_html_is_one_self_contained_file(card: ModelCard) -> None:
    page = card.html
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert "default-src 'none'" in page  # the CSP forbids scripts and remote loads anyway
    assert not re.search(r"<(script|link|img|iframe|object|embed)\b", page, re.I)
    assert not re.search(r"\bsrc\s*=|url\(|@import|javascript:", page, re.I)
    assert all(h.startswith("#") for h in re.findall(r'href="([^"]*)"', page))


def test_markdown_escapes_pipes_and_keeps_tables_whole(world: World) -> None:
    card = render(world, manifest=dataclasses.replace(
        world.manifest, intended_use="scoring | not | marketing\n## Not a heading"))
    assert "- **Stated in the manifest:** scoring \\| not \\| marketing \\#\\# Not a heading" \
        in card.markdown
    assert "## Not a heading" not in card.markdown
    # Intersection groups hold a '|': escaped, so each row has its table's cell count.
    joined = [g for e in world.evidence["fairness"].values() for g in e["groups"] if "|" in g]
    assert joined
    for group in joined:
        assert md_rows(card.markdown, md(group)), group
    body = card.markdown.split("## Appendix")[0]
    widths: list[int] = []
    for line in body.splitlines() + [""]:
        if line.startswith("|"):
            widths.append(len(re.findall(r"(?<!\\)\|", line)))
        elif widths:
            assert len(set(widths)) == 1, widths
            widths = []


def test_trainer_card_is_quoted_verbatim_in_a_fence(card: ModelCard) -> None:
    appendix = card.markdown.split("## Appendix: the model card shipped by the trainer\n")[1]
    fence = re.search(r"^(`{4,})text$", appendix, re.M)
    assert fence is not None  # longer than the card's own ``` fences
    assert f"{fence.group(1)}text\n{TRAINER_CARD}{fence.group(1)}\n" in appendix
    assert h(TRAINER_CARD) in card.html


def test_without_a_trainer_card_there_is_no_appendix(world: World) -> None:
    card = render(world, trainer_card=None)
    assert "Appendix" not in card.markdown and "Appendix" not in card.html


# --- bytes -------------------------------------------------------------------------------------


def _reversed(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _reversed(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reversed(v) for v in value]
    return value


def test_deterministic_bytes(world: World, card: ModelCard) -> None:
    again = render(world)
    assert (again.markdown_sha256, again.html_sha256) == (card.markdown_sha256, card.html_sha256)
    assert card.markdown_sha256 == hashlib.sha256(card.markdown.encode()).hexdigest()
    assert card.html_sha256 == hashlib.sha256(card.html.encode()).hexdigest()
    # Key order of the inputs does not matter (mappings are rendered sorted) ...
    shuffled = render(world, evidence=_reversed(world.evidence), decision={
        **world.decision, "violations": list(reversed(world.decision["violations"])),
        "warnings": list(reversed(world.decision["warnings"]))})
    assert shuffled.markdown == card.markdown and shuffled.html == card.html
    # ... and the only clock is generated_at.
    later = render(world, generated_at=NOW + timedelta(seconds=1))
    assert later.markdown_sha256 != card.markdown_sha256
    assert later.html_sha256 != card.html_sha256


def test_write_model_card_replaces_both_files(world: World, card: ModelCard,
                                              tmp_path: Path) -> None:
    directory = tmp_path / "state" / "cards" / NAME / VERSION  # not there yet
    md_path, html_path = write_model_card(card, directory)
    assert (md_path, html_path) == (directory / MARKDOWN_FILE, directory / HTML_FILE)
    assert hashlib.sha256(md_path.read_bytes()).hexdigest() == card.markdown_sha256
    assert hashlib.sha256(html_path.read_bytes()).hexdigest() == card.html_sha256
    newer = render(world, generated_at=NOW + timedelta(hours=1))
    assert write_model_card(newer, directory) == (md_path, html_path)
    assert hashlib.sha256(md_path.read_bytes()).hexdigest() == newer.markdown_sha256
    assert hashlib.sha256(html_path.read_bytes()).hexdigest() == newer.html_sha256
    assert sorted(p.name for p in directory.iterdir()) == [HTML_FILE, MARKDOWN_FILE]


def test_write_model_card_failure_names_the_file_and_leaves_no_temporary(
        card: ModelCard, tmp_path: Path) -> None:
    (tmp_path / HTML_FILE).mkdir()  # cannot be replaced by a file
    with pytest.raises(StorageUnavailableError, match=re.escape(str(tmp_path / HTML_FILE))):
        write_model_card(card, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [HTML_FILE, MARKDOWN_FILE]
    assert (tmp_path / MARKDOWN_FILE).read_text() == card.markdown


def test_no_row_value_reaches_the_card(world: World, card: ModelCard) -> None:
    assert SENTINEL in world.data.read_text()
    assert "id" in world.evidence["drift"]["columns"]  # the column was compared, its values not
    for text in (card.markdown, card.html):
        assert SENTINEL not in text
        assert "cust-3-" not in text and "cust-4-" not in text


# --- bad input ---------------------------------------------------------------------------------


def _bad(world: World) -> dict[str, tuple[dict[str, Any], str]]:
    ev = world.evidence
    return {
        "another schema": ({"evidence": {**ev, "schema": "warden.evidence/v0"}},
                           "evidence.schema"),
        "fairness not an object": ({"evidence": {**ev, "fairness": ["sex"]}},
                                   "evidence.fairness: expected an object"),
        "group not an object": ({"evidence": {**ev, "fairness": {
            "sex": {**ev["fairness"]["sex"], "groups": {"F": 3}}}}},
            "evidence.fairness.sex.groups.F"),
        "interval of three": ({"evidence": {**ev, "fairness": {"sex": {
            **ev["fairness"]["sex"], "groups": {"F": {
                **ev["fairness"]["sex"]["groups"]["F"],
                "ci": {**ev["fairness"]["sex"]["groups"]["F"]["ci"],
                       "tpr": [0.1, 0.2, 0.3]}}}}}}},
            "evidence.fairness.sex.groups.F.ci.tpr"),
        "drift statistic text": ({"evidence": {**ev, "drift": {**ev["drift"], "columns": {
            "age": {**ev["drift"]["columns"]["age"], "statistic": "high"}}}}},
            "evidence.drift.columns.age.statistic"),
        "no allow": ({"decision": {"violations": []}}, "decision.allow"),
        "violations not a list": ({"decision": {"allow": False, "violations": "bad"}},
                                  "decision.violations"),
        "violation rule not text": ({"decision": {"allow": False, "violations": [
            {"rule": 3, "message": "m", "severity": "high"}]}}, r"decision.violations\[0\].rule"),
        "naive time": ({"generated_at": NOW.replace(tzinfo=None)}, "generated_at"),
        "advice accuracy text": ({"advice": {**ADVICE, "accuracy_after": "good"}},
                                 "advice.accuracy_after"),
        "drift report without digest": ({"drift_report": {"file": "r.html"}},
                                        "drift_report.sha256"),
    }


BAD_CASES = ("another schema", "fairness not an object", "group not an object",
             "interval of three", "drift statistic text", "no allow", "violations not a list",
             "violation rule not text", "naive time", "advice accuracy text",
             "drift report without digest")


@pytest.mark.parametrize("case", BAD_CASES)
def test_malformed_input_is_refused_naming_the_field(world: World, case: str) -> None:
    overrides, message = _bad(world)[case]
    with pytest.raises(FormatError, match=message):
        render(world, **overrides)


def test_missing_sections_become_caveats(world: World) -> None:
    card = render(world, evidence={**world.evidence, "drift": None, "fairness": None},
                  drift_report=None, advice=None)
    assert "No drift evidence: no reference data or profile was compared." in card.markdown
    assert "No fairness evidence: that check did not run" in card.markdown
    assert "No sensitive feature was evaluated at this node." in card.html
    assert "nothing is known here about the model&#39;s effect on groups" in card.html


def test_import_is_light() -> None:
    code = ("import sys, agent.model_card\n"
            "heavy = {'numpy', 'pyarrow', 'pandas', 'scipy', 'jinja2', 'jsonschema', 'sklearn'}\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
