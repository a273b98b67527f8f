# Tests bind configuration to a local variable before `with data.config as c`: rego-cpp 1.5.2
# evaluates `with data.config as <rule>` incorrectly, and whole-document `with input as` is
# refused (see trust/policy/_rego.py).
package warden.lib.performance_test

import rego.v1

import data.warden.lib.performance

cfg := {"min_accuracy": 0.85, "min_f1": 0.7}

test_accuracy_above_minimum_passes if {
	c := cfg
	vs := performance.violations with input.evidence as {"performance": {"accuracy": 0.9, "f1": 0.8}}
		with data.config as c
	count(vs) == 0
}

test_accuracy_below_minimum_is_a_violation if {
	c := cfg
	vs := performance.violations with input.evidence as {"performance": {"accuracy": 0.8, "f1": 0.8}}
		with data.config as c
	vs == {{
		"rule": "performance.min_accuracy",
		"message": "accuracy 0.8 is below the minimum 0.85",
		"severity": "error",
	}}
}

test_missing_metric_is_a_violation if {
	c := cfg
	vs := performance.violations with input.evidence as {"performance": {"accuracy": 0.9}}
		with data.config as c
	vs == {{
		"rule": "performance.min_f1",
		"message": "evidence.performance.f1 is missing",
		"severity": "error",
	}}
}

test_unconfigured_metric_is_not_checked if {
	vs := performance.violations with input.evidence as {"performance": {"accuracy": 0.1}}
		with data.config as {}
	count(vs) == 0
}

test_null_metric_is_a_violation if {
	c := cfg
	vs := performance.violations with input.evidence as {"performance": {"accuracy": null, "f1": 0.8}}
		with data.config as c
	vs == {{
		"rule": "performance.min_accuracy",
		"message": "evidence.performance.accuracy is missing",
		"severity": "error",
	}}
}

test_allow_missing_metrics_turns_it_into_a_warning if {
	c := object.union(cfg, {"allow_missing_metrics": true})
	vs := performance.violations with input.evidence as {"performance": {"accuracy": 0.9}}
		with data.config as c
	ws := performance.warnings with input.evidence as {"performance": {"accuracy": 0.9}}
		with data.config as c
	count(vs) == 0
	ws == {"performance: f1 is null or absent (min_f1 not checked: allow_missing_metrics)"}
}
