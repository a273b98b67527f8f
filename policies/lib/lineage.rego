# Lineage and provenance (input.evidence.lineage).
#
# Configuration (data.config), each checked only when configured:
#   require_data_hash            data_sha256 present and data_sha256_verified == true
#   require_code_commit          code_commit present
#   require_parameters           parameters present and non-empty
#   approved_data_sources        data_source must be one of these
#   max_training_data_age_days   data_age_days must not exceed this
package warden.lib.lineage

import rego.v1

# A value that is there and not empty (undefined is not present). It takes the value, not the
# key, so each lineage field is read by its full path (see input_projection in bundle.yaml).
_present(value) if {
	value != null
	value != ""
	value != {}
	value != []
}

violations contains v if {
	data.config.require_data_hash == true
	not _present(input.evidence.lineage.data_sha256)
	v := {"rule": "lineage.data_hash", "message": "training data hash is missing", "severity": "error"}
}

violations contains v if {
	data.config.require_data_hash == true
	_present(input.evidence.lineage.data_sha256)
	not input.evidence.lineage.data_sha256_verified == true
	v := {
		"rule": "lineage.data_hash",
		"message": "training data hash was not verified against the data",
		"severity": "error",
	}
}

violations contains v if {
	data.config.require_code_commit == true
	not _present(input.evidence.lineage.code_commit)
	v := {"rule": "lineage.code_commit", "message": "code commit is missing", "severity": "error"}
}

violations contains v if {
	data.config.require_parameters == true
	not _present(input.evidence.lineage.parameters)
	v := {"rule": "lineage.parameters", "message": "training parameters are missing", "severity": "error"}
}

default _data_source := null

_data_source := input.evidence.lineage.data_source

violations contains v if {
	approved := data.config.approved_data_sources
	source := _data_source
	not source in approved
	v := {
		"rule": "lineage.data_source",
		"message": sprintf("data source %v is not in the approved list %v", [source, approved]),
		"severity": "error",
	}
}

violations contains v if {
	maximum := data.config.max_training_data_age_days
	age := input.evidence.lineage.data_age_days
	age > maximum
	v := {
		"rule": "lineage.training_data_age",
		"message": sprintf("training data is %v days old, older than the maximum %v days", [age, maximum]),
		"severity": "error",
	}
}

violations contains v if {
	data.config.max_training_data_age_days
	not is_number(input.evidence.lineage.data_age_days)
	v := {
		"rule": "lineage.training_data_age",
		"message": "training data age is missing",
		"severity": "error",
	}
}
