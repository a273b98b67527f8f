# Data drift (input.evidence.drift).
#
# Thresholds (data.config), each checked only when configured:
#   max_drift_share          largest allowed share of drifted columns (0..1)
#   critical_columns         columns that must not drift at all
#   block_on_dataset_drift   true: evidence.drift.dataset_drift == true is a violation
#
# Input is referenced directly (see fairness.rego); critical columns are looked up by name. A
# column is read field by field (never bound whole to a variable), so the bundle's
# input_projection keeps only the fields used here.
package warden.lib.drift

import rego.v1

violations contains v if {
	share := input.evidence.drift.share_drifted
	share > data.config.max_drift_share
	v := {
		"rule": "drift.share_drifted",
		"message": sprintf(
			"%v of columns drifted, above the maximum share %v",
			[share, data.config.max_drift_share],
		),
		"severity": "high",
	}
}

violations contains v if {
	some column in data.config.critical_columns
	input.evidence.drift.columns[column].drifted == true
	v := {
		"rule": "drift.critical_column",
		"message": sprintf(
			"critical column %s drifted (%s statistic %v, threshold %v)",
			[
				column,
				input.evidence.drift.columns[column].method,
				input.evidence.drift.columns[column].statistic,
				input.evidence.drift.columns[column].threshold,
			],
		),
		"severity": "high",
	}
}

violations contains v if {
	data.config.block_on_dataset_drift == true
	input.evidence.drift.dataset_drift == true
	v := {"rule": "drift.dataset_drift", "message": "dataset drift detected", "severity": "high"}
}

warnings contains msg if {
	some column in object.keys(input.evidence.drift.columns)
	input.evidence.drift.columns[column].drifted == true
	not _critical(column)
	msg := sprintf(
		"drift: column %s drifted (%s statistic %v)",
		[column, input.evidence.drift.columns[column].method, input.evidence.drift.columns[column].statistic],
	)
}

_critical(column) if column in data.config.critical_columns
