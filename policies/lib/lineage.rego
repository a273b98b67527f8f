# Lineage and provenance (input.evidence.lineage).
#
# Configuration (data.config), each checked only when configured:
#   require_data_hash            data_sha256 present and data_sha256_verified == true
#   require_code_commit          code_commit present
#   require_parameters           parameters present and non-empty
#   approved_data_sources        data_source must be one of these
#   max_training_data_age_days   data_age_days must not exceed this
#
# DVC lineage (input.evidence.lineage.dvc, present when the manifest names the training data's
# .dvc file or dvc.lock; agent/checks/dvc.py recomputes each entry's md5 as DVC does). Not a
# setting: a manifest that names a pointer claims it holds, so it is always checked:
#   lineage.dvc_mismatch     an entry's recomputed md5 differs from the one the pointer records
#   lineage.dvc_missing      the pointer, or a file or directory it names, does not exist
#   lineage.dvc_unverified   anything else left an entry (or the pointer) unverified: unreadable,
#                            not verifiable offline, or no entry for training_data.path
# DVC's md5 is lineage, not integrity: require_data_hash still asks for the SHA-256.
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

# --- DVC lineage ---------------------------------------------------------------------------

_dvc_mismatch(out) if {
	is_string(out.actual_md5)
	out.actual_md5 != out.expected_md5
}

violations contains v if {
	some out in input.evidence.lineage.dvc.outs
	_dvc_mismatch(out)
	v := {
		"rule": "lineage.dvc_mismatch",
		"message": sprintf(
			"training data %v (DVC pointer %v) hashes to md5 %v, the pointer records %v",
			[out.path, input.evidence.lineage.dvc.pointer, out.actual_md5, out.expected_md5],
		),
		"severity": "error",
	}
}

violations contains v if {
	input.evidence.lineage.dvc.error == "missing"
	v := {
		"rule": "lineage.dvc_missing",
		"message": sprintf("DVC pointer %v does not exist", [input.evidence.lineage.dvc.pointer]),
		"severity": "error",
	}
}

violations contains v if {
	some out in input.evidence.lineage.dvc.outs
	out.error == "missing"
	v := {
		"rule": "lineage.dvc_missing",
		"message": sprintf(
			"training data %v named by DVC pointer %v does not exist",
			[out.path, input.evidence.lineage.dvc.pointer],
		),
		"severity": "error",
	}
}

# (A helper, not object.get: rego-cpp 1.5 prints object.get's default quoted in sprintf.)
_dvc_reason(out) := out.reason if is_string(out.reason)

_dvc_reason(out) := "no md5 recomputed" if not is_string(out.reason)

violations contains v if {
	some out in input.evidence.lineage.dvc.outs
	not out.verified == true
	not _dvc_mismatch(out)
	not out.error == "missing"
	v := {
		"rule": "lineage.dvc_unverified",
		"message": sprintf(
			"training data %v (DVC pointer %v) was not verified: %v",
			[out.path, input.evidence.lineage.dvc.pointer, _dvc_reason(out)],
		),
		"severity": "error",
	}
}

# The pointer as a whole: not verified although no entry says why (e.g. it checked none).
violations contains v if {
	dvc := input.evidence.lineage.dvc
	is_object(dvc)
	not dvc.verified == true
	not dvc.error == "missing"
	every out in dvc.outs {
		out.verified == true
	}
	v := {
		"rule": "lineage.dvc_unverified",
		"message": sprintf("DVC pointer %v verified no training data", [dvc.pointer]),
		"severity": "error",
	}
}
