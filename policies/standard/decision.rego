# The standard decision: every library rule applies; any violation denies.
#
# Entrypoint data.warden.decision (decision convention "document"): the engine reads
# `allow`, `violations` (objects {rule, message, severity}) and `warnings`.
package warden.decision

import rego.v1

import data.warden.lib

input_schema := "warden.policy-input/v1"

violations contains v if {
	not input.schema == input_schema
	v := {
		"rule": "input.schema",
		"message": sprintf("policy input schema is %v, expected %v", [_schema, input_schema]),
		"severity": "error",
	}
}

default _schema := null

_schema := input.schema

violations contains v if some v in lib.performance.violations

violations contains v if some v in lib.fairness.violations

violations contains v if some v in lib.drift.violations

violations contains v if some v in lib.lineage.violations

violations contains v if some v in lib.documentation.violations

violations contains v if some v in lib.approvals.violations

violations contains v if some v in lib.rollback.violations

warnings contains w if some w in lib.performance.warnings

warnings contains w if some w in lib.fairness.warnings

warnings contains w if some w in lib.drift.warnings

rollback_required := lib.rollback.rollback_required

default allow := false

allow if count(violations) == 0
