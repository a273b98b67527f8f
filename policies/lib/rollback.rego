# Rollback of a deployed model (input.production).
#
# Configuration (data.config), each checked only when configured:
#   rollback_min_accuracy        production accuracy below this ...
#   rollback_after_hours         ... for longer than this many hours requires a rollback
#   rollback_on_drift_alert      true: a drift alert in production requires a rollback
#
# `rollback_required` and `reasons` are exported for agents that monitor production; the
# violations deny keeping (or re-promoting) the model while the condition holds.
package warden.lib.rollback

import rego.v1

reasons contains msg if {
	minimum := data.config.rollback_min_accuracy
	hours := data.config.rollback_after_hours
	input.production.accuracy < minimum
	input.production.hours_below_threshold > hours
	msg := sprintf(
		"production accuracy %v has been below %v for %v hours (limit %v hours)",
		[input.production.accuracy, minimum, input.production.hours_below_threshold, hours],
	)
}

reasons contains msg if {
	data.config.rollback_on_drift_alert == true
	input.production.drift_alert == true
	msg := "a drift alert is active in production"
}

default rollback_required := false

rollback_required if count(reasons) > 0

violations contains v if {
	some msg in reasons
	v := {"rule": "rollback.required", "message": msg, "severity": "critical"}
}
