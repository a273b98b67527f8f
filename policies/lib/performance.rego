# Minimum performance metrics.
#
# Thresholds (data.config): min_accuracy, min_precision, min_recall, min_f1, min_roc_auc.
# A threshold that is not configured is not checked; a configured one whose metric is missing
# from input.evidence.performance is a violation (missing evidence never passes).
package warden.lib.performance

import rego.v1

metrics := ["accuracy", "precision", "recall", "f1", "roc_auc"]

# A direct reference with a default (see fairness.rego for why not object.get).
default performance := {}

performance := input.evidence.performance

violations contains v if {
	some metric in metrics
	minimum := data.config[sprintf("min_%s", [metric])]
	value := performance[metric]
	value < minimum
	v := {
		"rule": sprintf("performance.min_%s", [metric]),
		"message": sprintf("%s %v is below the minimum %v", [metric, value, minimum]),
		"severity": "error",
	}
}

violations contains v if {
	some metric in metrics
	data.config[sprintf("min_%s", [metric])]
	not is_number(object.get(performance, metric, null))
	v := {
		"rule": sprintf("performance.min_%s", [metric]),
		"message": sprintf("evidence.performance.%s is missing", [metric]),
		"severity": "error",
	}
}
