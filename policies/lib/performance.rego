# Minimum performance metrics.
#
# Thresholds (data.config): min_accuracy, min_precision, min_recall, min_f1, min_roc_auc.
# A threshold that is not configured is not checked; a configured one whose metric is null,
# absent or not a number in input.evidence.performance is a violation (missing evidence never
# passes), unless compliance sets allow_missing_metrics: true, which turns it into a warning.

package warden.lib.performance

import rego.v1

metrics := ["accuracy", "precision", "recall", "f1", "roc_auc"]

violations contains v if {
	some metric in metrics
	minimum := data.config[sprintf("min_%s", [metric])]
	value := input.evidence.performance[metric]
	is_number(value)
	value < minimum
	v := {
		"rule": sprintf("performance.min_%s", [metric]),
		"message": sprintf("%s %v is below the minimum %v", [metric, value, minimum]),
		"severity": "error",
	}
}

_unavailable contains metric if {
	some metric in metrics
	data.config[sprintf("min_%s", [metric])]
	not is_number(input.evidence.performance[metric])
}

violations contains v if {
	not data.config.allow_missing_metrics == true
	some metric in _unavailable
	v := {
		"rule": sprintf("performance.min_%s", [metric]),
		"message": sprintf("evidence.performance.%s is missing", [metric]),
		"severity": "error",
	}
}

warnings contains msg if {
	data.config.allow_missing_metrics == true
	some metric in _unavailable
	msg := sprintf("performance: %s is null or absent (min_%s not checked: allow_missing_metrics)", [metric, metric])
}
