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
package warden.lib.fairness

import rego.v1

# Direct references with defaults, not object.get(input, …): rego-cpp copies the object on
# every object.get, which made this package several times slower.
default features := {}

features := input.evidence.fairness

violations contains v if {
	some feature in data.config.sensitive_features
	not features[feature]
	v := {
		"rule": "fairness.evidence_missing",
		"message": sprintf("no fairness evidence for sensitive feature %s", [feature]),
		"severity": "high",
	}
}

violations contains v if {
	some feature, m in features
	value := m.demographic_parity_difference
	value > data.config.max_demographic_parity_difference
	v := {
		"rule": "fairness.demographic_parity_difference",
		"message": sprintf(
			"%s: demographic parity difference %v exceeds the maximum %v",
			[feature, value, data.config.max_demographic_parity_difference],
		),
		"severity": "high",
	}
}

violations contains v if {
	some feature, m in features
	value := m.demographic_parity_ratio
	value < data.config.min_demographic_parity_ratio
	v := {
		"rule": "fairness.demographic_parity_ratio",
		"message": sprintf(
			"%s: demographic parity ratio %v is below the minimum %v",
			[feature, value, data.config.min_demographic_parity_ratio],
		),
		"severity": "high",
	}
}

violations contains v if {
	data.config.require_four_fifths_rule == true
	some feature, m in features
	m.four_fifths.passed == false
	v := {
		"rule": "fairness.four_fifths_rule",
		"message": sprintf(
			"%s: four-fifths rule fails (selection-rate ratio %v < %v)",
			[feature, m.four_fifths.ratio, m.four_fifths.threshold],
		),
		"severity": "high",
	}
}

violations contains v if {
	some feature, m in features
	value := m.equalized_odds_difference
	value > data.config.max_equalized_odds_difference
	v := {
		"rule": "fairness.equalized_odds_difference",
		"message": sprintf(
			"%s: equalized odds difference %v exceeds the maximum %v",
			[feature, value, data.config.max_equalized_odds_difference],
		),
		"severity": "high",
	}
}

violations contains v if {
	some feature, m in features
	value := m.equal_opportunity_difference
	value > data.config.max_equal_opportunity_difference
	v := {
		"rule": "fairness.equal_opportunity_difference",
		"message": sprintf(
			"%s: equal opportunity difference %v exceeds the maximum %v",
			[feature, value, data.config.max_equal_opportunity_difference],
		),
		"severity": "high",
	}
}

warnings contains msg if {
	some feature, m in features
	some group, g in m.groups
	g.n < data.config.min_group_size
	msg := sprintf(
		"fairness: %s group %s has only %v rows (< %v); its metrics are unreliable",
		[feature, group, g.n, data.config.min_group_size],
	)
}
