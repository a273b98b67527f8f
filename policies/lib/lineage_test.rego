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

# --- DVC lineage ---------------------------------------------------------------------------

md5_a := "0cc175b9c0f1b6a831c399e269772661"

md5_b := "92eb5ffee6ae2fec3ad71c777531578f"

dvc_ok := {
	"pointer": "train.csv.dvc",
	"outs": [{"path": "train.csv", "expected_md5": md5_a, "actual_md5": md5_a, "verified": true}],
	"verified": true,
}

# Local copies before `with ... as`, as in the tests above (rego-cpp needs a value there).
_dvc_violations(d) := vs if {
	c := cfg
	l := object.union(good, {"dvc": d})
	vs := lineage.violations with input.evidence.lineage as l with data.config as c
}

test_verified_dvc_pointer_passes if {
	count(_dvc_violations(dvc_ok)) == 0
}

test_no_dvc_pointer_is_no_dvc_rule if {
	count(_dvc_violations(null)) == 0
}

test_dvc_mismatch_names_the_file_and_both_hashes if {
	d := json.patch(dvc_ok, [
		{"op": "replace", "path": "/outs/0/actual_md5", "value": md5_b},
		{"op": "replace", "path": "/outs/0/verified", "value": false},
		{"op": "replace", "path": "/verified", "value": false},
	])
	_dvc_violations(d) == {{
		"rule": "lineage.dvc_mismatch",
		"message": sprintf("training data train.csv (DVC pointer train.csv.dvc) hashes to md5 %v, the pointer records %v", [md5_b, md5_a]),
		"severity": "error",
	}}
}

test_dvc_directory_mismatch if {
	d := {
		"pointer": "dvc.lock",
		"outs": [
			{"path": "data/raw.csv", "expected_md5": md5_a, "actual_md5": md5_a, "verified": true},
			{"path": "data/prepared", "expected_md5": concat("", [md5_a, ".dir"]), "actual_md5": concat("", [md5_b, ".dir"]), "verified": false},
		],
		"verified": false,
	}
	[v.rule | some v in _dvc_violations(d)] == ["lineage.dvc_mismatch"]
	some v in _dvc_violations(d)
	contains(v.message, "data/prepared")
	contains(v.message, concat("", [md5_b, ".dir"]))
}

test_dvc_missing_data_file if {
	d := {
		"pointer": "train.csv.dvc",
		"outs": [{"path": "train.csv", "expected_md5": md5_a, "actual_md5": null, "verified": false, "error": "missing", "reason": "train.csv does not exist"}],
		"verified": false,
	}
	_dvc_violations(d) == {{
		"rule": "lineage.dvc_missing",
		"message": "training data train.csv named by DVC pointer train.csv.dvc does not exist",
		"severity": "error",
	}}
}

test_dvc_missing_pointer if {
	d := {"pointer": "train.csv.dvc", "outs": [], "verified": false, "error": "missing"}
	_dvc_violations(d) == {{
		"rule": "lineage.dvc_missing",
		"message": "DVC pointer train.csv.dvc does not exist",
		"severity": "error",
	}}
}

test_dvc_unverifiable_entry_gives_its_reason if {
	d := {
		"pointer": "dvc.lock",
		"outs": [{"path": "s3://bucket/raw.csv", "expected_md5": null, "actual_md5": null, "verified": false, "error": "unsupported", "reason": "external output s3://bucket/raw.csv is not verified"}],
		"verified": false,
	}
	_dvc_violations(d) == {{
		"rule": "lineage.dvc_unverified",
		"message": "training data s3://bucket/raw.csv (DVC pointer dvc.lock) was not verified: external output s3://bucket/raw.csv is not verified",
		"severity": "error",
	}}
}

test_dvc_entry_without_reason_is_still_unverified if {
	d := {
		"pointer": "dvc.lock",
		"outs": [{"path": "x.csv", "expected_md5": md5_a, "actual_md5": null, "verified": false}],
		"verified": false,
	}
	[v.message | some v in _dvc_violations(d)] == ["training data x.csv (DVC pointer dvc.lock) was not verified: no md5 recomputed"]
}

test_dvc_pointer_that_checked_nothing_is_unverified if {
	d := {"pointer": "dvc.lock", "outs": [], "verified": false}
	[v.message | some v in _dvc_violations(d)] == ["DVC pointer dvc.lock verified no training data"]
}

test_dvc_does_not_stand_in_for_the_data_sha256 if {
	c := cfg
	l := object.union(object.remove(good, ["data_sha256"]), {"dvc": dvc_ok})
	vs := lineage.violations with input.evidence.lineage as l with data.config as c
	[v.rule | some v in vs] == ["lineage.data_hash"]
}
