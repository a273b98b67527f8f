"""The standard library's own Rego tests, and the standard bundle end to end."""

from __future__ import annotations

import pytest

from trust.errors import PolicyError
from trust.policy.check import check_directory
from trust.policy.engine import PolicyEngine
from trust.policy.testing import Outcome, run_tests

from ._support import POLICIES


def _lib_files() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((POLICIES / "lib").glob("*.rego"))}


def test_every_library_test_passes():
    results = run_tests(_lib_files(), {})
    assert len(results) >= 30
    assert [r.name for r in results if r.outcome is not Outcome.PASS] == []


def test_every_library_module_has_tests():
    files = _lib_files()
    modules = [f for f in files if not f.endswith("_test.rego")]
    assert sorted(modules) == [
        "approvals.rego",
        "documentation.rego",
        "drift.rego",
        "fairness.rego",
        "lineage.rego",
        "performance.rego",
        "rollback.rego",
    ]
    for m in modules:
        assert m.replace(".rego", "_test.rego") in files


def test_a_wrong_expectation_fails_and_an_error_errors():
    files = _lib_files()
    files["z_test.rego"] = (
        "package z_test\nimport rego.v1\nimport data.warden.lib.performance\n"
        "test_wrong if {\n  vs := performance.violations with input.evidence.performance"
        ".accuracy as 0.1 with data.config.min_accuracy as 0.5\n  count(vs) == 0\n}\n"
        "test_error if { 1 / 0 == 1 }\n"
    )
    by_name = {r.name: r for r in run_tests(files, {})}
    assert by_name["data.z_test.test_wrong"].outcome is Outcome.FAIL
    assert by_name["data.z_test.test_error"].outcome is Outcome.ERROR
    assert (
        by_name["data.warden.lib.performance_test.test_missing_metric_is_a_violation"].outcome
        is Outcome.PASS
    )


def test_check_reports_every_syntax_error_with_disk_path(write_bundle):
    d = write_bundle(
        {
            "a.rego": "package t\nimport rego.v1\ndeny contains 1 if {\n  input.x ==\n}\n",
            "b.rego": "package u\nimport rego.v1\n\nallow if {\n  input.y >\n}\n",
        }
    )
    with pytest.raises(PolicyError) as info:
        check_directory(d)
    text = str(info.value)
    assert f"{d / 'a.rego'}:4:" in text and f"{d / 'b.rego'}:5:" in text
    assert "2 problem(s)" in text


def test_check_ok_for_shipped_bundles():
    report = check_directory(POLICIES / "standard")
    assert (report.name, report.entrypoint, report.modules) == (
        "standard",
        "data.warden.decision",
        8,
    )
    assert report.tests >= 40


def test_standard_bundle_passing_input(standard_bundle, passing_input):
    d = PolicyEngine(standard_bundle).evaluate(passing_input)
    assert (d.allow, d.violations, d.warnings) == (True, (), ())


def test_standard_bundle_fairness_violation(standard_bundle, passing_input):
    sex = passing_input["evidence"]["fairness"]["sex"]
    sex["demographic_parity_difference"] = 0.14
    sex["demographic_parity_ratio"] = 0.72
    sex["four_fifths"].update(passed=False, ratio=0.72, failing_groups=["F"])
    d = PolicyEngine(standard_bundle).evaluate(passing_input)
    assert d.allow is False
    assert [v.to_dict() for v in d.violations] == [
        {
            "rule": "fairness.demographic_parity_difference",
            "message": "sex: demographic parity difference 0.14 exceeds the maximum 0.05",
            "severity": "high",
        },
        {
            "rule": "fairness.demographic_parity_ratio",
            "message": "sex: demographic parity ratio 0.72 is below the minimum 0.8",
            "severity": "high",
        },
        {
            "rule": "fairness.four_fifths_rule",
            "message": "sex: four-fifths rule fails (selection-rate ratio 0.72 < 0.8)",
            "severity": "high",
        },
    ]


def test_standard_bundle_rollback(standard_bundle, passing_input):
    passing_input["production"].update(accuracy=0.8, hours_below_threshold=30)
    d = PolicyEngine(standard_bundle).evaluate(passing_input)
    assert [(v.rule, v.severity) for v in d.violations] == [("rollback.required", "critical")]
    assert (
        PolicyEngine(standard_bundle).query("data.warden.decision.rollback_required", passing_input)
        is True
    )


def test_input_schema_is_valid_json_schema_shape():
    import json

    schema = json.loads((POLICIES / "input.schema.json").read_text())
    assert schema["properties"]["schema"]["const"] == "warden.policy-input/v1"
    assert set(schema["properties"]) == {
        "schema",
        "model",
        "evidence",
        "approvals",
        "production",
        "now",
    }


def test_shipped_example_inputs_match_the_test_inputs(standard_bundle, passing_input):
    import json

    inputs = POLICIES / "examples" / "inputs"
    assert json.loads((inputs / "model-pass.json").read_text()) == passing_input
    engine = PolicyEngine(standard_bundle)
    assert engine.evaluate(json.loads((inputs / "model-pass.json").read_text())).allow is True
    unfair = engine.evaluate(json.loads((inputs / "model-unfair.json").read_text()))
    assert unfair.allow is False
    assert {v.rule for v in unfair.violations} == {
        "fairness.demographic_parity_difference",
        "fairness.demographic_parity_ratio",
        "fairness.four_fifths_rule",
    }
