package warden.lib.lineage_test

import rego.v1

import data.warden.lib.lineage

cfg := {
	"require_data_hash": true,
	"require_code_commit": true,
	"require_parameters": true,
	"approved_data_sources": ["internal_db", "verified_vendor"],
	"max_training_data_age_days": 30,
}

good := {
	"model_sha256": "ab12",
	"data_sha256": "cd34",
	"data_sha256_verified": true,
	"code_commit": "0123abc",
	"parameters": {"C": 1.0},
	"data_source": "internal_db",
	"trained_at": "2026-11-01T00:00:00Z",
	"data_age_days": 10,
}


test_complete_lineage_passes if {
	c := cfg
	l := good
	vs := lineage.violations with input.evidence.lineage as l with data.config as c
	count(vs) == 0
}

test_missing_data_hash if {
	c := cfg
	l := object.remove(good, ["data_sha256"])
	vs := lineage.violations with input.evidence.lineage as l with data.config as c
	vs == {{"rule": "lineage.data_hash", "message": "training data hash is missing", "severity": "error"}}
}

test_unverified_data_hash if {
	c := cfg
	l := json.patch(good, [{"op": "replace", "path": "/data_sha256_verified", "value": false}])
	vs := lineage.violations with input.evidence.lineage as l with data.config as c
	[v.message | some v in vs] == ["training data hash was not verified against the data"]
}

test_missing_code_commit if {
	c := cfg
	l := json.patch(good, [{"op": "replace", "path": "/code_commit", "value": ""}])
	vs := lineage.violations with input.evidence.lineage as l with data.config as c
	[v.rule | some v in vs] == ["lineage.code_commit"]
}

test_missing_parameters if {
	c := cfg
	l := json.patch(good, [{"op": "replace", "path": "/parameters", "value": {}}])
	vs := lineage.violations with input.evidence.lineage as l with data.config as c
	[v.rule | some v in vs] == ["lineage.parameters"]
}

test_unapproved_data_source if {
	c := cfg
	l := json.patch(good, [{"op": "replace", "path": "/data_source", "value": "scraped_web"}])
	vs := lineage.violations with input.evidence.lineage as l with data.config as c
	vs == {{
		"rule": "lineage.data_source",
		"message": `data source scraped_web is not in the approved list ["internal_db", "verified_vendor"]`,
		"severity": "error",
	}}
}

test_stale_training_data if {
	c := cfg
	l := json.patch(good, [{"op": "replace", "path": "/data_age_days", "value": 45}])
	vs := lineage.violations with input.evidence.lineage as l with data.config as c
	vs == {{
		"rule": "lineage.training_data_age",
		"message": "training data is 45 days old, older than the maximum 30 days",
		"severity": "error",
	}}
}

test_missing_training_data_age if {
	c := cfg
	l := object.remove(good, ["data_age_days"])
	vs := lineage.violations with input.evidence.lineage as l with data.config as c
	[v.message | some v in vs] == ["training data age is missing"]
}
