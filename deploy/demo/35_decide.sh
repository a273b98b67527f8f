#!/usr/bin/env bash
# Part 4: each region's agent decides on the release from its own evidence, under the signed
# standard bundle (v2) and the trust root, with the approvals production requires.
set -euo pipefail
mkdir -p "$DEMO_DIR/decide"
cd "$DEMO_DIR/decide"
say() { printf '\n>> %s\n' "$*"; }
trust="$DEMO_DIR/trust"
common=(--bundle "$DEMO_DIR/policy/standard-v2.bundle" --root "$trust/root.json" --last-version 2
        --model credit-risk --version 1.4.0 --n-features 5)

say "Promotion to staging needs no approval. EMEA's evidence passes every rule:"
warden agent decide --evidence "$DEMO_DIR/checks/emea.json" --stage staging "${common[@]}"

say "Production needs the risk officer and the compliance lead. Without approvals: denied."
set +e
warden agent decide --evidence "$DEMO_DIR/checks/emea.json" --stage production "${common[@]}"
code=$?
set -e
[ "$code" -eq 1 ] || { echo "unexpected exit code $code"; exit 1; }

say "Both approvers sign an approval of credit-risk:1.4.0 with their keys from the trust root."
warden approval create --role risk_officer --subject credit-risk:1.4.0 --key "$trust/risk.key" \
    --reason "validation reviewed, ticket RISK-1042" --out risk.approval
warden approval create --role compliance --subject credit-risk:1.4.0 --key "$trust/compliance.key" \
    --reason "model card and lineage complete" --out compliance.approval
warden approval verify risk.approval --root "$trust/root.json"

say "An approval signed with a key outside the risk_officer role is refused outright (exit 2):"
warden key generate --out intruder.key >/dev/null
warden approval create --role risk_officer --subject credit-risk:1.4.0 --key intruder.key \
    --out forged.approval >/dev/null
if warden agent decide --evidence "$DEMO_DIR/checks/emea.json" --stage production \
    --approval forged.approval "${common[@]}"; then echo "unexpected: accepted"; exit 1; fi

say "With both genuine approvals, EMEA's release is allowed into production:"
warden agent decide --evidence "$DEMO_DIR/checks/emea.json" --stage production \
    --approval risk.approval --approval compliance.approval "${common[@]}" --input-out emea-input.json

say "APAC, same release, same approvals, its own data: the bias shows and the release is blocked."
set +e
warden agent decide --evidence "$DEMO_DIR/checks/apac.json" --stage production \
    --approval risk.approval --approval compliance.approval "${common[@]}"
code=$?
set -e
[ "$code" -eq 1 ] || { echo "unexpected exit code $code"; exit 1; }
echo "(exit $code: the gate blocks the promotion; the policy input kept no raw row)"
