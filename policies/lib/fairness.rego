# Fairness, per sensitive feature (input.evidence.fairness.<feature>).
#
# Thresholds (data.config), each checked only when configured:
#   sensitive_features                 features that must have fairness evidence
#   max_demographic_parity_difference  largest allowed selection-rate difference between groups
#   min_demographic_parity_ratio       smallest allowed selection-rate ratio (min / max)
#   require_four_fifths_rule           true: the four-fifths rule (four_fifths.passed) must hold
#   max_equalized_odds_difference      largest allowed max(TPR difference, FPR difference)
#   max_equal_opportunity_difference   largest allowed TPR difference
#   min_group_size                     groups smaller than this produce a warning
#   allow_missing_metrics              true: a required metric that is unavailable is only a
#                                      warning (default false: it is a violation, see below)
#
# Missing metrics fail closed: when a threshold is configured, every feature that has fairness
# evidence must report that metric as a number (four_fifths.passed as a boolean). A null (the
# checks could not compute it, e.g. a group without positives), absent or mistyped metric is
# the violation fairness.metric_unavailable, unless compliance sets allow_missing_metrics: true.
#
# Unmeasurable features fail closed too: when the checks found fewer than two usable groups
# (a sensitive column that is all null, one group only, or one left after min_group_size
# suppression), the feature's evidence has `unmeasurable: {reason, usable_groups}` and every
# metric null. That is one violation fairness.unmeasurable naming the feature and the reason
# (instead of one metric_unavailable per metric), whenever any fairness threshold is
# configured or the feature is listed in sensitive_features; a warning under
# allow_missing_metrics: true, like any other missing metric.
#
# Features are iterated by key and metrics read by full static paths (no helper rules,
# object.get or computed keys into data.config): in micro-benchmarks on rego-cpp 1.5.2 these
# forms were cheaper, but the whole-decision gain was within measurement noise. Full paths also
# keep the bundle's input_projection (bundle.yaml) small and checkable: binding a feature's
# whole evidence to a variable (`some feature, m in input.evidence.fairness`) would make the
# policy read all of it, per-group rates included. A feature's evidence must be an object.
package warden.lib.fairness

import rego.v1

violations contains v if {
	some feature in data.config.sensitive_features
	not is_object(input.evidence.fairness[feature])
	v := {
		"rule": "fairness.evidence_missing",
		"message": sprintf("no fairness evidence for sensitive feature %s", [feature]),
		"severity": "high",
	}
}

violations contains v if {
	limit := data.config.max_demographic_parity_difference
	some feature in object.keys(input.evidence.fairness)
	value := input.evidence.fairness[feature].demographic_parity_difference
	is_number(value)
	value > limit
	v := {
		"rule": "fairness.demographic_parity_difference",
		"message": sprintf("%s: demographic parity difference %v exceeds the maximum %v", [feature, value, limit]),
		"severity": "high",
	}
}

violations contains v if {
	limit := data.config.min_demographic_parity_ratio
	some feature in object.keys(input.evidence.fairness)
	value := input.evidence.fairness[feature].demographic_parity_ratio
	is_number(value)
	value < limit
	v := {
		"rule": "fairness.demographic_parity_ratio",
		"message": sprintf("%s: demographic parity ratio %v is below the minimum %v", [feature, value, limit]),
		"severity": "high",
	}
}

violations contains v if {
	limit := data.config.max_equalized_odds_difference
	some feature in object.keys(input.evidence.fairness)
	value := input.evidence.fairness[feature].equalized_odds_difference
	is_number(value)
	value > limit
	v := {
		"rule": "fairness.equalized_odds_difference",
		"message": sprintf("%s: equalized odds difference %v exceeds the maximum %v", [feature, value, limit]),
		"severity": "high",
	}
}

violations contains v if {
	limit := data.config.max_equal_opportunity_difference
	some feature in object.keys(input.evidence.fairness)
	value := input.evidence.fairness[feature].equal_opportunity_difference
	is_number(value)
	value > limit
	v := {
		"rule": "fairness.equal_opportunity_difference",
		"message": sprintf("%s: equal opportunity difference %v exceeds the maximum %v", [feature, value, limit]),
		"severity": "high",
	}
}

violations contains v if {
	data.config.require_four_fifths_rule == true
	some feature in object.keys(input.evidence.fairness)
	input.evidence.fairness[feature].four_fifths.passed == false
	v := {
		"rule": "fairness.four_fifths_rule",
		"message": sprintf(
			"%s: four-fifths rule fails (selection-rate ratio %v < %v)",
			[
				feature,
				input.evidence.fairness[feature].four_fifths.ratio,
				input.evidence.fairness[feature].four_fifths.threshold,
			],
		),
		"severity": "high",
	}
}

# [feature, metric, setting] for every required metric that is null, absent or mistyped.

_unavailable contains [feature, "demographic_parity_difference", "max_demographic_parity_difference"] if {
	data.config.max_demographic_parity_difference != null
	some feature in object.keys(input.evidence.fairness)
	not is_number(input.evidence.fairness[feature].demographic_parity_difference)
}

_unavailable contains [feature, "demographic_parity_ratio", "min_demographic_parity_ratio"] if {
	data.config.min_demographic_parity_ratio != null
	some feature in object.keys(input.evidence.fairness)
	not is_number(input.evidence.fairness[feature].demographic_parity_ratio)
}

_unavailable contains [feature, "equalized_odds_difference", "max_equalized_odds_difference"] if {
	data.config.max_equalized_odds_difference != null
	some feature in object.keys(input.evidence.fairness)
	not is_number(input.evidence.fairness[feature].equalized_odds_difference)
}

_unavailable contains [feature, "equal_opportunity_difference", "max_equal_opportunity_difference"] if {
	data.config.max_equal_opportunity_difference != null
	some feature in object.keys(input.evidence.fairness)
	not is_number(input.evidence.fairness[feature].equal_opportunity_difference)
}

_unavailable contains [feature, "four_fifths.passed", "require_four_fifths_rule"] if {
	data.config.require_four_fifths_rule == true
	some feature in object.keys(input.evidence.fairness)
	not is_boolean(input.evidence.fairness[feature].four_fifths.passed)
}

# Features the checks could not measure (see the header).
_unmeasurable contains feature if {
	some feature
	mark := input.evidence.fairness[feature].unmeasurable
	is_object(mark)
}

_thresholds_configured if data.config.max_demographic_parity_difference != null

_thresholds_configured if data.config.min_demographic_parity_ratio != null

_thresholds_configured if data.config.max_equalized_odds_difference != null

_thresholds_configured if data.config.max_equal_opportunity_difference != null

_thresholds_configured if data.config.require_four_fifths_rule == true

# Unmeasurable features that matter: every one when a threshold is configured (the set of
# features whose metrics _unavailable would report), and every required one.
_unmeasurable_required contains feature if {
	_thresholds_configured
	some feature in _unmeasurable
}

_unmeasurable_required contains feature if {
	some feature in _unmeasurable
	feature in data.config.sensitive_features
}

violations contains v if {
	not data.config.allow_missing_metrics == true
	some feature in _unmeasurable_required
	v := {
		"rule": "fairness.unmeasurable",
		"message": sprintf(
			"%s: fairness cannot be measured (%v); no fairness metric is available for it (missing evidence never passes)",
			[feature, input.evidence.fairness[feature].unmeasurable.reason],
		),
		"severity": "high",
	}
}

warnings contains msg if {
	data.config.allow_missing_metrics == true
	some feature in _unmeasurable_required
	msg := sprintf(
		"fairness: %s cannot be measured (%v); not checked: allow_missing_metrics",
		[feature, input.evidence.fairness[feature].unmeasurable.reason],
	)
}

violations contains v if {
	not data.config.allow_missing_metrics == true
	some u in _unavailable
	not u[0] in _unmeasurable # reported once, with its reason, as fairness.unmeasurable
	v := {
		"rule": "fairness.metric_unavailable",
		"message": sprintf(
			"%s: fairness metric %s is null or absent, but %s is configured (missing evidence never passes)",
			u,
		),
		"severity": "high",
	}
}

warnings contains msg if {
	data.config.allow_missing_metrics == true
	some u in _unavailable
	not u[0] in _unmeasurable
	msg := sprintf("fairness: %s metric %s is null or absent (%s not checked: allow_missing_metrics)", u)
}

warnings contains msg if {
	minimum := data.config.min_group_size
	some feature, group
	n := input.evidence.fairness[feature].groups[group].n
	n < minimum
	msg := sprintf(
		"fairness: %s group %s has only %v rows (< %v); its metrics are unreliable",
		[feature, group, n, minimum],
	)
}
