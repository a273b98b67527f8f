package model.governance
# Rule: Reject if demographic parity difference > 0.1
violation[msg] {
input.fairness_metrics.demographic_parity_diff > 0.1
msg = sprintf("Demographic parity violation: %v", [input.fairness_metrics.demographic_parity_diff])
}
