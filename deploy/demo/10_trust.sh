#!/usr/bin/env bash
# Part 1: officer keys, a trust root, and a verified rotation of that root.
set -euo pipefail
cd "$DEMO_DIR"
say() { printf '\n>> %s\n' "$*"; }

say "Two root officers, three compliance officers and the hub each generate an ed25519 key."
say "Keys are PEM PKCS#8 files with mode 0600; the key id is the SHA-256 of the public key."
for k in root1 root2 officer1 officer2 officer3 hub; do
    printf '%-9s ' "$k:"; warden key generate --out "$k.key" --json
done

say "The root officers write trust root v1: policies need 2 of the 3 compliance officers;"
say "the root itself needs both root officers. root1 signs as it writes the file."
warden root init --root-key root1.key --root-key root2.key \
    --policy-key officer1.key --policy-key officer2.key --policy-key officer3.key \
    --policy-threshold 2 --hub-key hub.key --out root.json --sign root1.key

say "With one of two root signatures the root is not yet valid (verification fails, exit 1):"
if warden root verify root.json; then echo "unexpected: accepted"; exit 1; fi

say "root2 adds the second signature; now it verifies."
warden root sign root.json --key root2.key
warden root verify root.json

say "A year later root1 leaves. Version 2 replaces root1 by root3 (its new key)."
warden key generate --out root3.key >/dev/null
warden root rotate root.json --root-key root2.key --root-key root3.key \
    --out root-v2.json --sign root2.key --sign root3.key

say "Signed only by the new root keys, v2 is refused: the old root's threshold (2 of 2) is not met."
if warden root verify root-v2.json --trusted root.json; then echo "unexpected: accepted"; exit 1; fi

say "root1 countersigns before leaving, so v1's threshold is met: the rotation verifies."
warden root sign root-v2.json --key root1.key
warden root verify root-v2.json --trusted root.json
cp root.json root-v1.json
