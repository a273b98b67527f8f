package data_lineage

default valid = false

valid { input.data_source == approved_sources[_]; input.retention_days <= 365 }

approved_sources := ["internal_db", "verified_vendor"]
