#!/usr/bin/env bash
# Part 1: officer keys, a trust root, and a verified rotation of that root.
# Leaves $DEMO_DIR/trust/: every key, root-v1.json, root-v2.json and root.json (the current one).
set -euo pipefail
mkdir -p "$DEMO_DIR/trust"
cd "$DEMO_DIR/trust"
say() { printf '\n>> %s\n' "$*"; }

say "Two root officers, three compliance officers, two approvers (a risk officer and a"
say "compliance lead) and the hub each generate an ed25519 key. Keys are PEM PKCS#8 files"
say "with mode 0600; a key id is the SHA-256 of the public key."
for k in root1 root2 officer1 officer2 officer3 risk compliance hub; do
    printf '%-10s ' "$k:"; warden key generate --out "$k.key" --json
done

say "The root officers write trust root v1: policies need 2 of the 3 compliance officers,"
say "approvals come from the risk_officer and compliance roles, and the root itself needs"
say "both root officers. root1 signs as it writes the file."
warden root init --root-key root1.key --root-key root2.key \
    --policy-key officer1.key --policy-key officer2.key --policy-key officer3.key \
    --policy-threshold 2 --hub-key hub.key \
    --approver risk_officer=risk.key --approver compliance=compliance.key \
    --out root-v1.json --sign root1.key

say "With one of two root signatures the root is not valid yet (verification fails, exit 1):"
if warden root verify root-v1.json; then echo "unexpected: accepted"; exit 1; fi

say "root2 adds the second signature; now it verifies."
warden root sign root-v1.json --key root2.key
warden root verify root-v1.json

say "Later, root1 leaves. Version 2 replaces root1 by root3, a new key."
warden key generate --out root3.key >/dev/null
warden root rotate root-v1.json --root-key root2.key --root-key root3.key \
    --out root-v2.json --sign root2.key --sign root3.key

say "Signed by root2 and root3 only, v2 is refused: v1's root role needs both root1 and root2."
if warden root verify root-v2.json --trusted root-v1.json; then echo "unexpected: accepted"; exit 1; fi

say "root1 countersigns before leaving, so v1's threshold is met: the rotation verifies."
warden root sign root-v2.json --key root1.key --previous root-v1.json
warden root verify root-v2.json --trusted root-v1.json

say "A forged v3 that skips a version is refused, whoever signed it:"
warden root rotate root-v2.json --out root-v3.json --sign root2.key --sign root3.key >/dev/null
python3 - <<'PY'
import base64, json
env = json.load(open("root-v3.json"))
payload = json.loads(base64.b64decode(env["payload"]))
print(f"   (root-v3.json says version {payload['version']}; checked against v1 directly)")
PY
if warden root verify root-v3.json --trusted root-v1.json; then echo "unexpected: accepted"; exit 1; fi
rm root-v3.json
cp root-v2.json root.json
