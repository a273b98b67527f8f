package warden.decision_test

import rego.v1

import data.warden.decision

test_wrong_input_schema_denies if {
	d := decision.allow with input.schema as "something/else"
	d == false
	vs := decision.violations with input.schema as "something/else"
	some v in vs
	v.rule == "input.schema"
}

test_library_violations_reach_the_decision if {
	c := {"min_accuracy": 0.85}
	vs := decision.violations with input.schema as "warden.policy-input/v1"
		with input.evidence.performance.accuracy as 0.5
		with data.config as c
	vs == {{
		"rule": "performance.min_accuracy",
		"message": "accuracy 0.5 is below the minimum 0.85",
		"severity": "error",
	}}
}

test_no_violation_allows if {
	c := {"min_accuracy": 0.85}
	a := decision.allow with input.schema as "warden.policy-input/v1"
		with input.evidence.performance.accuracy as 0.9
		with data.config as c
	a == true
}
