"""The seed's policies, unchanged, as example bundles: a passing and a failing input each."""

from __future__ import annotations

from pathlib import Path

import pytest

from trust import strict_yaml
from trust.policy.engine import PolicyEngine

from ._support import NOW, POLICIES, verified_bundle

EXAMPLES = POLICIES / "examples"

# The seed's Rego, as the seed wrote it: the example bundles must hold exactly this text.
SEED_REGO = {
    "model_governance": "package model_governance\n\ndefault allow = false\n\n"
    "allow { input.model.accuracy >= 0.85; input.model.bias < 0.1 }\n",
    "regulatory": "package regulatory\n\ndefault compliant = false\n\n"
    "compliant { input.model.explainability_provided == true; "
    "input.model.bias_test_passed == true }\n",
    # Verbatim from the seed (issue 8, item 3): its field names, its message, its layout.
    "model.governance": "package model.governance\n"
    "# Rule: Reject if demographic parity difference > 0.1\n"
    "violation[msg] {\n"
    "input.fairness_metrics.demographic_parity_diff > 0.1\n"
    'msg = sprintf("Demographic parity violation: %v", '
    "[input.fairness_metrics.demographic_parity_diff])\n"
    "}\n",
    "model_registry": "package model_registry\n\ndefault allow = false\n\nallow { "
    'input.accuracy >= 0.95; input.bias <= 0.05; input.model_type == "classification" }\n',
    "data_lineage": "package data_lineage\n\ndefault valid = false\n\nvalid { "
    "input.data_source == approved_sources[_]; input.retention_days <= 365 }\n\n"
    'approved_sources := ["internal_db", "verified_vendor"]\n',
    "rollback": "package rollback\n\ndefault rollback_required = false\n\nrollback_required { "
    "input.model.accuracy < 0.85; input.deployment_age_hours > 24 }\n",
}

# (example, input, allow, [(rule, message)])
CASES = [
    ("model_governance", {"model": {"accuracy": 0.9, "bias": 0.05}}, True, []),
    (
        "model_governance",
        {"model": {"accuracy": 0.9, "bias": 0.1}},
        False,
        [("model_governance.allow", "data.model_governance.allow is false")],
    ),
    (
        "regulatory",
        {"model": {"explainability_provided": True, "bias_test_passed": True}},
        True,
        [],
    ),
    (
        "regulatory",
        {"model": {"explainability_provided": True, "bias_test_passed": False}},
        False,
        [("regulatory.compliant", "data.regulatory.compliant is false")],
    ),
    # The seed's own input, and one just inside its threshold.
    ("model.governance", {"fairness_metrics": {"demographic_parity_diff": 0.1}}, True, []),
    (
        "model.governance",
        {"fairness_metrics": {"demographic_parity_diff": 0.15}},
        False,
        [("model.governance.violation", "Demographic parity violation: 0.15")],
    ),
    (
        "model_registry",
        {"accuracy": 0.96, "bias": 0.05, "model_type": "classification"},
        True,
        [],
    ),
    (
        "model_registry",
        {"accuracy": 0.96, "bias": 0.05, "model_type": "regression"},
        False,
        [("model_registry.allow", "data.model_registry.allow is false")],
    ),
    ("data_lineage", {"data_source": "verified_vendor", "retention_days": 365}, True, []),
    (
        "data_lineage",
        {"data_source": "scraped_web", "retention_days": 30},
        False,
        [("data_lineage.valid", "data.data_lineage.valid is false")],
    ),
    ("rollback", {"model": {"accuracy": 0.84}, "deployment_age_hours": 12}, True, []),
    (
        "rollback",
        {"model": {"accuracy": 0.84}, "deployment_age_hours": 25},
        False,
        [("rollback.rollback_required", "data.rollback.rollback_required is true")],
    ),
]


@pytest.fixture(scope="module")
def engines() -> dict[str, PolicyEngine]:
    return {
        name: PolicyEngine(verified_bundle(EXAMPLES / name, now=NOW))
        for name in [*SEED_REGO, "federated"]
    }


@pytest.mark.parametrize("name", sorted(SEED_REGO))
def test_example_holds_the_seed_rego_unchanged(name):
    assert (EXAMPLES / name / "policy.rego").read_text() == SEED_REGO[name]


@pytest.mark.parametrize(
    ("name", "input_doc", "allow", "violations"),
    CASES,
    ids=[f"{c[0]}-{'pass' if c[2] else 'fail'}" for c in CASES],
)
def test_seed_example(engines, name, input_doc, allow, violations):
    d = engines[name].evaluate(input_doc)
    assert d.allow is allow
    assert [(v.rule, v.message) for v in d.violations] == violations


def federated_data(seed_yaml: Path) -> dict:
    """The documented mapping from the seed's federated YAML onto standard-library data."""
    seed = strict_yaml.load(seed_yaml.read_text(), source=str(seed_yaml))
    assert seed["fairness_metric"] == "demographic_parity"
    data = {
        "max_demographic_parity_difference": seed["bias_threshold"],
        "max_training_data_age_days": seed["data_retention_days"],
    }
    if seed["approval_required"]:
        data["required_approvals"] = {"production": ["compliance"]}
    return data


def test_federated_bundle_data_is_derived_from_the_seed_yaml(engines):
    bundle = engines["federated"].bundle
    assert dict(bundle.data) == federated_data(EXAMPLES / "federated" / "federated_policy.yaml")


def test_federated_pass_and_fail(engines, passing_input):
    e = engines["federated"]
    d = e.evaluate(passing_input)
    assert (d.allow, d.violations) == (True, ())
    bad = passing_input
    bad["evidence"]["fairness"]["sex"]["demographic_parity_difference"] = 0.12
    bad["evidence"]["lineage"]["data_age_days"] = 400
    bad["approvals"] = [a for a in bad["approvals"] if a["role"] != "compliance"]
    d = e.evaluate(bad)
    assert d.allow is False
    assert [(v.rule, v.message) for v in d.violations] == [
        ("approvals.required_role", "promotion to production needs an approval by compliance"),
        (
            "fairness.demographic_parity_difference",
            "sex: demographic parity difference 0.12 exceeds the maximum 0.1",
        ),
        (
            "lineage.training_data_age",
            "training data is 400 days old, older than the maximum 365 days",
        ),
    ]


def test_model_governance_example_is_the_seeds_rule_not_a_rewrite(engines):
    """Issue 8 item 3: the example read other fields and said another message than the seed.

    The seed's own input must be denied with the seed's own message; the rewrite's field
    names must no longer mean anything to it.
    """
    e = engines["model.governance"]
    d = e.evaluate({"fairness_metrics": {"demographic_parity_diff": 0.15}})
    assert d.allow is False
    assert [v.message for v in d.violations] == ["Demographic parity violation: 0.15"]
    assert e.evaluate({"fairness_metrics": {"demographic_parity_diff": 0.05}}).allow is True
    assert e.evaluate({"metrics": {"demographic_parity_difference": 0.15}}).allow is True
