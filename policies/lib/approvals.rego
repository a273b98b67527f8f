# Approvals required per target stage (input.model.stage, input.approvals).
#
# Configuration (data.config):
#   required_approvals   {stage: [role, ...]} — every listed role must appear in input.approvals
#
# The agent fills input.approvals only with approvals whose signatures it verified against the
# trust root's approver:<role> keys; Rego checks the roles are all there.
package warden.lib.approvals

import rego.v1

granted := {role | some i; role := input.approvals[i].role}

violations contains v if {
	stage := input.model.stage
	some role in data.config.required_approvals[stage]
	not role in granted
	v := {
		"rule": "approvals.required_role",
		"message": sprintf("promotion to %v needs an approval by %v", [stage, role]),
		"severity": "error",
	}
}
