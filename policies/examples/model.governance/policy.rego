package model.governance

violation[msg] { input.metrics.demographic_parity_difference > 0.1; msg := sprintf("Demographic parity difference %v exceeds threshold 0.1", [input.metrics.demographic_parity_difference]) }
