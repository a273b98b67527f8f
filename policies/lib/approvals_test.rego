package warden.lib.approvals_test

import rego.v1

import data.warden.lib.approvals

cfg := {"required_approvals": {"staging": [], "production": ["risk_officer", "compliance"]}}

test_all_roles_approved_passes if {
	c := cfg
	vs := approvals.violations with input.model.stage as "production"
		with input.approvals as [
			{"role": "risk_officer", "key_id": "aa", "time": "2026-11-01T00:00:00Z"},
			{"role": "compliance", "key_id": "bb", "time": "2026-11-01T00:00:00Z"},
		]
		with data.config as c
	count(vs) == 0
}

test_missing_role_is_a_violation if {
	c := cfg
	vs := approvals.violations with input.model.stage as "production"
		with input.approvals as [{"role": "risk_officer", "key_id": "aa", "time": "2026-11-01T00:00:00Z"}]
		with data.config as c
	vs == {{
		"rule": "approvals.required_role",
		"message": "promotion to production needs an approval by compliance",
		"severity": "error",
	}}
}

test_stage_without_requirements_passes if {
	c := cfg
	vs := approvals.violations with input.model.stage as "staging"
		with input.approvals as []
		with data.config as c
	count(vs) == 0
}
