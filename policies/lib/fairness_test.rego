package warden.lib.fairness_test

import rego.v1

import data.warden.lib.fairness

cfg := {
	"sensitive_features": ["sex"],
	"max_demographic_parity_difference": 0.1,
	"min_demographic_parity_ratio": 0.8,
	"require_four_fifths_rule": true,
	"max_equalized_odds_difference": 0.1,
	"max_equal_opportunity_difference": 0.1,
	"min_group_size": 30,
}

fair := {"sex": {
	"demographic_parity_difference": 0.02,
	"demographic_parity_ratio": 0.95,
	"four_fifths": {"threshold": 0.8, "ratio": 0.95, "passed": true, "reference_group": "M", "failing_groups": []},
	"equalized_odds_difference": 0.03,
	"equal_opportunity_difference": 0.02,
	"groups": {"F": {"n": 500}, "M": {"n": 500}},
}}

test_fair_model_passes if {
	c := cfg
	f := fair
	vs := fairness.violations with input.evidence.fairness as f with data.config as c
	ws := fairness.warnings with input.evidence.fairness as f with data.config as c
	count(vs) == 0
	count(ws) == 0
}

test_demographic_parity_difference_violation if {
	c := cfg
	f := json.patch(fair, [{"op": "replace", "path": "/sex/demographic_parity_difference", "value": 0.25}])
	vs := fairness.violations with input.evidence.fairness as f with data.config as c
	vs == {{
		"rule": "fairness.demographic_parity_difference",
		"message": "sex: demographic parity difference 0.25 exceeds the maximum 0.1",
		"severity": "high",
	}}
}

test_demographic_parity_ratio_violation if {
	c := cfg
	f := json.patch(fair, [{"op": "replace", "path": "/sex/demographic_parity_ratio", "value": 0.7}])
	vs := fairness.violations with input.evidence.fairness as f with data.config as c
	vs == {{
		"rule": "fairness.demographic_parity_ratio",
		"message": "sex: demographic parity ratio 0.7 is below the minimum 0.8",
		"severity": "high",
	}}
}

test_four_fifths_rule_violation if {
	c := cfg
	f := json.patch(fair, [{"op": "replace", "path": "/sex/four_fifths", "value": {"threshold": 0.8, "ratio": 0.7, "passed": false, "reference_group": "M", "failing_groups": ["F"]}}])
	vs := fairness.violations with input.evidence.fairness as f with data.config as c
	vs == {{
		"rule": "fairness.four_fifths_rule",
		"message": "sex: four-fifths rule fails (selection-rate ratio 0.7 < 0.8)",
		"severity": "high",
	}}
}

test_equalized_odds_violation if {
	c := cfg
	f := json.patch(fair, [{"op": "replace", "path": "/sex/equalized_odds_difference", "value": 0.2}])
	vs := fairness.violations with input.evidence.fairness as f with data.config as c
	vs == {{
		"rule": "fairness.equalized_odds_difference",
		"message": "sex: equalized odds difference 0.2 exceeds the maximum 0.1",
		"severity": "high",
	}}
}

test_equal_opportunity_violation if {
	c := cfg
	f := json.patch(fair, [{"op": "replace", "path": "/sex/equal_opportunity_difference", "value": 0.15}])
	vs := fairness.violations with input.evidence.fairness as f with data.config as c
	vs == {{
		"rule": "fairness.equal_opportunity_difference",
		"message": "sex: equal opportunity difference 0.15 exceeds the maximum 0.1",
		"severity": "high",
	}}
}

test_missing_sensitive_feature_violation if {
	c := cfg
	f := {"age": fair.sex}
	vs := fairness.violations with input.evidence.fairness as f with data.config as c
	vs == {{
		"rule": "fairness.evidence_missing",
		"message": "no fairness evidence for sensitive feature sex",
		"severity": "high",
	}}
}

test_each_feature_is_checked if {
	c := cfg
	bad := json.patch(fair.sex, [{"op": "replace", "path": "/demographic_parity_difference", "value": 0.3}])
	f := {"sex": fair.sex, "race": bad}
	vs := fairness.violations with input.evidence.fairness as f with data.config as c
	[v.message | some v in vs] == ["race: demographic parity difference 0.3 exceeds the maximum 0.1"]
}

test_small_group_warning if {
	c := cfg
	f := json.patch(fair, [{"op": "replace", "path": "/sex/groups/F/n", "value": 12}])
	ws := fairness.warnings with input.evidence.fairness as f with data.config as c
	ws == {"fairness: sex group F has only 12 rows (< 30); its metrics are unreliable"}
}

test_null_metric_is_unavailable if {
	c := cfg
	f := json.patch(fair, [{"op": "replace", "path": "/sex/demographic_parity_ratio", "value": null}])
	vs := fairness.violations with input.evidence.fairness as f with data.config as c
	vs == {{
		"rule": "fairness.metric_unavailable",
		"message": "sex: fairness metric demographic_parity_ratio is null or absent, but min_demographic_parity_ratio is configured (missing evidence never passes)",
		"severity": "high",
	}}
}

test_absent_metric_is_unavailable if {
	c := cfg
	f := json.patch(fair, [{"op": "remove", "path": "/sex/equalized_odds_difference"}])
	vs := fairness.violations with input.evidence.fairness as f with data.config as c
	[v.message | some v in vs] == ["sex: fairness metric equalized_odds_difference is null or absent, but max_equalized_odds_difference is configured (missing evidence never passes)"]
}

test_null_four_fifths_is_unavailable if {
	c := cfg
	f := json.patch(fair, [{"op": "replace", "path": "/sex/four_fifths/passed", "value": null}])
	vs := fairness.violations with input.evidence.fairness as f with data.config as c
	[v.rule | some v in vs] == ["fairness.metric_unavailable"]
}

test_unconfigured_metric_may_be_missing if {
	c := object.remove(cfg, ["max_equal_opportunity_difference"])
	f := json.patch(fair, [{"op": "remove", "path": "/sex/equal_opportunity_difference"}])
	vs := fairness.violations with input.evidence.fairness as f with data.config as c
	count(vs) == 0
}

test_allow_missing_metrics_turns_it_into_a_warning if {
	c := object.union(cfg, {"allow_missing_metrics": true})
	f := json.patch(fair, [{"op": "replace", "path": "/sex/demographic_parity_difference", "value": null}])
	vs := fairness.violations with input.evidence.fairness as f with data.config as c
	ws := fairness.warnings with input.evidence.fairness as f with data.config as c
	count(vs) == 0
	ws == {"fairness: sex metric demographic_parity_difference is null or absent (max_demographic_parity_difference not checked: allow_missing_metrics)"}
}

# A sensitive column blanked to null: the checks report one "missing" group, no usable one.
blank := {"sex": {
	"demographic_parity_difference": null,
	"demographic_parity_ratio": null,
	"four_fifths": {"threshold": 0.8, "ratio": null, "passed": null, "reference_group": null, "failing_groups": []},
	"equalized_odds_difference": null,
	"equal_opportunity_difference": null,
	"groups": {"missing": {"n": 500}},
	"unmeasurable": {"reason": "no usable group; missing sensitive values are not a group to compare: missing", "usable_groups": []},
}}

test_unmeasurable_feature_is_one_violation_naming_it if {
	c := cfg
	f := blank
	vs := fairness.violations with input.evidence.fairness as f with data.config as c
	vs == {{
		"rule": "fairness.unmeasurable",
		"message": "sex: fairness cannot be measured (no usable group; missing sensitive values are not a group to compare: missing); no fairness metric is available for it (missing evidence never passes)",
		"severity": "high",
	}}
}

test_unmeasurable_required_feature_denies_without_thresholds if {
	c := {"sensitive_features": ["sex"]}
	f := blank
	vs := fairness.violations with input.evidence.fairness as f with data.config as c
	[v.rule | some v in vs] == ["fairness.unmeasurable"]
}

test_unmeasurable_intersection_denies_when_thresholds_are_set if {
	c := cfg
	f := {"sex": fair.sex, "sex|age_band": blank.sex}
	vs := fairness.violations with input.evidence.fairness as f with data.config as c
	[v.message | some v in vs] == ["sex|age_band: fairness cannot be measured (no usable group; missing sensitive values are not a group to compare: missing); no fairness metric is available for it (missing evidence never passes)"]
}

test_unmeasurable_unrequired_feature_without_thresholds_is_not_judged if {
	c := {"sensitive_features": ["race"], "min_group_size": 30}
	f := {"race": fair.sex, "sex": blank.sex}
	vs := fairness.violations with input.evidence.fairness as f with data.config as c
	count(vs) == 0
}

test_unmeasurable_is_a_warning_only_under_allow_missing_metrics if {
	c := object.union(cfg, {"allow_missing_metrics": true})
	f := blank
	vs := fairness.violations with input.evidence.fairness as f with data.config as c
	ws := fairness.warnings with input.evidence.fairness as f with data.config as c
	count(vs) == 0
	ws == {"fairness: sex cannot be measured (no usable group; missing sensitive values are not a group to compare: missing); not checked: allow_missing_metrics"}
}

test_null_metrics_without_the_unmeasurable_mark_still_fail_closed if {
	c := cfg
	f := {"sex": object.remove(blank.sex, ["unmeasurable"])}
	vs := fairness.violations with input.evidence.fairness as f with data.config as c
	count(vs) == 5
	{v.rule | some v in vs} == {"fairness.metric_unavailable"}
}
