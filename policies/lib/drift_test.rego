package warden.lib.drift_test

import rego.v1

import data.warden.lib.drift

cfg := {"max_drift_share": 0.3, "critical_columns": ["income"], "block_on_dataset_drift": true}

stable := {
	"share_drifted": 0.0,
	"dataset_drift": false,
	"columns": {
		"income": {"method": "psi", "statistic": 0.01, "threshold": 0.1, "drifted": false},
		"age": {"method": "ks", "statistic": 0.02, "threshold": 0.05, "drifted": false},
	},
}

test_stable_data_passes if {
	c := cfg
	d := stable
	vs := drift.violations with input.evidence.drift as d with data.config as c
	ws := drift.warnings with input.evidence.drift as d with data.config as c
	count(vs) == 0
	count(ws) == 0
}

test_share_drifted_violation if {
	c := cfg
	d := json.patch(stable, [{"op": "replace", "path": "/share_drifted", "value": 0.5}])
	vs := drift.violations with input.evidence.drift as d with data.config as c
	vs == {{
		"rule": "drift.share_drifted",
		"message": "0.5 of columns drifted, above the maximum share 0.3",
		"severity": "high",
	}}
}

test_critical_column_violation if {
	c := cfg
	d := json.patch(stable, [
		{"op": "replace", "path": "/columns/income/drifted", "value": true},
		{"op": "replace", "path": "/columns/income/statistic", "value": 0.4},
	])
	vs := drift.violations with input.evidence.drift as d with data.config as c
	vs == {{
		"rule": "drift.critical_column",
		"message": "critical column income drifted (psi statistic 0.4, threshold 0.1)",
		"severity": "high",
	}}
}

test_non_critical_column_drift_is_a_warning if {
	c := cfg
	d := json.patch(stable, [{"op": "replace", "path": "/columns/age/drifted", "value": true}])
	vs := drift.violations with input.evidence.drift as d with data.config as c
	ws := drift.warnings with input.evidence.drift as d with data.config as c
	count(vs) == 0
	ws == {"drift: column age drifted (ks statistic 0.02)"}
}

test_dataset_drift_violation if {
	c := cfg
	d := json.patch(stable, [{"op": "replace", "path": "/dataset_drift", "value": true}])
	vs := drift.violations with input.evidence.drift as d with data.config as c
	vs == {{"rule": "drift.dataset_drift", "message": "dataset drift detected", "severity": "high"}}
}
