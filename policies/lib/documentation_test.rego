package warden.lib.documentation_test

import rego.v1

import data.warden.lib.documentation

cfg := {"require_model_card": true, "explainability_required_above_features": 10}

complete := {
	"model_card_present": true,
	"complete": true,
	"missing_sections": [],
	"explainability_present": true,
}

test_complete_documentation_passes if {
	c := cfg
	d := complete
	vs := documentation.violations with input.evidence.documentation as d
		with input.model.n_features as 30
		with data.config as c
	count(vs) == 0
}

test_incomplete_model_card if {
	c := cfg
	d := json.patch(complete, [
		{"op": "replace", "path": "/complete", "value": false},
		{"op": "replace", "path": "/missing_sections", "value": ["limitations"]},
	])
	vs := documentation.violations with input.evidence.documentation as d
		with input.model.n_features as 3
		with data.config as c
	vs == {{
		"rule": "documentation.model_card",
		"message": `model card is incomplete (missing sections: ["limitations"])`,
		"severity": "medium",
	}}
}

test_explainability_required_for_wide_models if {
	c := cfg
	d := json.patch(complete, [{"op": "replace", "path": "/explainability_present", "value": false}])
	vs := documentation.violations with input.evidence.documentation as d
		with input.model.n_features as 30
		with data.config as c
	vs == {{
		"rule": "documentation.explainability",
		"message": "model has 30 features (more than 10) but no explainability artefact",
		"severity": "medium",
	}}
}

test_explainability_not_required_for_narrow_models if {
	c := cfg
	d := json.patch(complete, [{"op": "replace", "path": "/explainability_present", "value": false}])
	vs := documentation.violations with input.evidence.documentation as d
		with input.model.n_features as 5
		with data.config as c
	count(vs) == 0
}
