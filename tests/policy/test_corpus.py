"""Decisions of the standard bundle on a fixed corpus stay exactly what they were.

The golden file holds the decisions of the library before it was rewritten for speed (see
tests/policy/_corpus.py); a rewrite must not change any of them. Missing-metric inputs are
checked separately: they now fail closed.
"""

from __future__ import annotations

import json

import pytest

from trust.policy.engine import PolicyEngine

from ._corpus import CORPUS_FILE, corpus, decisions, missing_metric_corpus
from ._support import NOW, POLICIES, verified_bundle


@pytest.fixture(scope="module")
def engine(standard_bundle):
    """One engine for the standard bundle, shared by the module."""
    return PolicyEngine(standard_bundle)


def test_corpus_decisions_are_unchanged(engine):
    golden = json.loads(CORPUS_FILE.read_text())
    got = decisions(engine, corpus())
    assert set(got) == set(golden), "the corpus generator changed; regenerate deliberately"
    changed = {k: (golden[k], got[k]) for k in golden if golden[k] != got[k]}
    assert changed == {}
    assert 5 <= sum(d["allow"] for d in got.values()) < len(got)  # both outcomes covered


@pytest.mark.parametrize("case", range(10))
def test_missing_fairness_metric_fails_closed(engine, case):
    doc, feature, metric = missing_metric_corpus()[case]
    d = engine.evaluate(doc)
    assert d.allow is False
    unavailable = [v for v in d.violations if v.rule == "fairness.metric_unavailable"]
    assert len(unavailable) == 1
    assert unavailable[0].message.startswith(
        f"{feature}: fairness metric {metric} is null or absent"
    )
    # nothing else is reported about the missing metric (no comparison against null)
    others = [v for v in d.violations if v.rule != "fairness.metric_unavailable"]
    assert others == [], others


def _relaxed_engine(tmp_path):
    src = (POLICIES / "standard" / "bundle.yaml").read_text()
    d = tmp_path / "relaxed"
    d.mkdir()
    (d / "bundle.yaml").write_text(
        src.replace("include:\n  - ../lib", f"include:\n  - {POLICIES / 'lib'}").replace(
            "allow_missing_metrics: false", "allow_missing_metrics: true"
        )
    )
    (d / "decision.rego").write_text((POLICIES / "standard" / "decision.rego").read_text())
    return PolicyEngine(verified_bundle(d, now=NOW))


def test_allow_missing_metrics_relaxes_to_a_warning(tmp_path):
    engine = _relaxed_engine(tmp_path)
    doc, feature, metric = missing_metric_corpus()[1]
    d = engine.evaluate(doc)
    assert (d.allow, d.violations) == (True, ())
    assert d.warnings == (
        f"fairness: {feature} metric {metric} is null or absent "
        f"(max_demographic_parity_difference not checked: allow_missing_metrics)",
    )


@pytest.mark.parametrize("how", ["null", "absent"])
def test_missing_performance_metric_fails_closed(engine, passing_input, how, tmp_path):
    perf = passing_input["evidence"]["performance"]
    if how == "null":
        perf["f1"] = None
    else:
        del perf["f1"]
    d = engine.evaluate(passing_input)
    assert d.allow is False
    assert [v.to_dict() for v in d.violations] == [
        {
            "rule": "performance.min_f1",
            "message": "evidence.performance.f1 is missing",
            "severity": "error",
        }
    ]
    relaxed = _relaxed_engine(tmp_path).evaluate(passing_input)
    assert (relaxed.allow, relaxed.warnings) == (
        True,
        ("performance: f1 is null or absent (min_f1 not checked: allow_missing_metrics)",),
    )
