# Documentation (input.evidence.documentation, input.model.n_features).
#
# Evidence keys (agent/checks/evidence.schema.json): model_card_present, complete,
# missing_sections, explainability_present.
#
# Configuration (data.config), each checked only when configured:
#   require_model_card                 true: the model card must be complete
#   explainability_required_above_features
#                                      an explainability artefact is required when the model
#                                      has more than this many features
package warden.lib.documentation

import rego.v1

default _missing_sections := []

_missing_sections := input.evidence.documentation.missing_sections

violations contains v if {
	data.config.require_model_card == true
	not input.evidence.documentation.complete == true
	missing := _missing_sections
	v := {
		"rule": "documentation.model_card",
		"message": sprintf("model card is incomplete (missing sections: %v)", [missing]),
		"severity": "medium",
	}
}

violations contains v if {
	limit := data.config.explainability_required_above_features
	n := input.model.n_features
	n > limit
	not input.evidence.documentation.explainability_present == true
	v := {
		"rule": "documentation.explainability",
		"message": sprintf(
			"model has %v features (more than %v) but no explainability artefact",
			[n, limit],
		),
		"severity": "medium",
	}
}
