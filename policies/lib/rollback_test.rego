package warden.lib.rollback_test

import rego.v1

import data.warden.lib.rollback

cfg := {"rollback_min_accuracy": 0.85, "rollback_after_hours": 24, "rollback_on_drift_alert": true}

healthy := {"accuracy": 0.9, "hours_below_threshold": 0, "drift_alert": false, "deployment_age_hours": 100}

test_healthy_production_needs_no_rollback if {
	c := cfg
	p := healthy
	r := rollback.rollback_required with input.production as p with data.config as c
	r == false
}

test_low_accuracy_for_too_long_requires_rollback if {
	c := cfg
	p := json.patch(healthy, [
		{"op": "replace", "path": "/accuracy", "value": 0.8},
		{"op": "replace", "path": "/hours_below_threshold", "value": 30},
	])
	r := rollback.rollback_required with input.production as p with data.config as c
	vs := rollback.violations with input.production as p with data.config as c
	r == true
	vs == {{
		"rule": "rollback.required",
		"message": "production accuracy 0.8 has been below 0.85 for 30 hours (limit 24 hours)",
		"severity": "critical",
	}}
}

test_low_accuracy_briefly_needs_no_rollback if {
	c := cfg
	p := json.patch(healthy, [
		{"op": "replace", "path": "/accuracy", "value": 0.8},
		{"op": "replace", "path": "/hours_below_threshold", "value": 2},
	])
	r := rollback.rollback_required with input.production as p with data.config as c
	r == false
}

test_drift_alert_requires_rollback if {
	c := cfg
	p := json.patch(healthy, [{"op": "replace", "path": "/drift_alert", "value": true}])
	rs := rollback.reasons with input.production as p with data.config as c
	rs == {"a drift alert is active in production"}
}
