#!/usr/bin/env bash
# Part 2: policy as code — three compliance officers sign the standard bundle 2-of-3, models
# are evaluated against it, and a replayed older bundle is refused.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
mkdir -p "$DEMO_DIR/policy"
cd "$DEMO_DIR/policy"
say() { printf '\n>> %s\n' "$*"; }

say "The compliance officers use the keys and the current trust root (v2) from part 1:"
say "any policy bundle needs signatures from 2 of the 3 officers."
cp ../trust/officer1.key ../trust/officer2.key ../trust/officer3.key ../trust/hub.key .
cp ../trust/root.json root.json
warden root verify root.json

say "The standard policy library: check it compiles, then run its Rego unit tests."
warden policy check "$REPO/policies/standard"
warden policy test "$REPO/policies/standard" | tail -1

say "Version 1 of the bundle is signed by officer1 and co-signed by officer2."
cp -r "$REPO/policies/standard" standard-src
cp -r "$REPO/policies/lib" lib
warden policy sign standard-src --key officer1.key --out standard-v1.bundle
say "One signature is not enough (exit 1):"
if warden policy verify standard-v1.bundle --root root.json; then echo "unexpected: accepted"; exit 1; fi
warden policy cosign standard-v1.bundle --key officer2.key --root root.json
warden policy verify standard-v1.bundle --root root.json

say "Compliance tightens a threshold and releases version 2 (officers 2 and 3 sign)."
sed -i 's/^version: 1$/version: 2/; s/^  min_accuracy: 0.85$/  min_accuracy: 0.88/' standard-src/bundle.yaml
warden policy sign standard-src --key officer2.key --key officer3.key --out standard-v2.bundle
warden policy verify standard-v2.bundle --root root.json --last-version 1

say "A model whose evidence passes every rule: the decision allows it (exit 0)."
cp "$REPO/policies/examples/inputs/model-pass.json" model-good.json
cp "$REPO/policies/examples/inputs/model-unfair.json" model-unfair.json
warden policy eval standard-v2.bundle --root root.json --last-version 2 --input model-good.json \
    | python3 -c 'import json,sys; d=json.load(sys.stdin); print("allow:", d["allow"], "| bundle", d["bundle"]["name"], "v%s" % d["bundle"]["version"], "| violations:", d["violations"])'

say "A model that violates fairness for 'sex': denied (exit 1), with the reasons."
set +e
warden policy eval standard-v2.bundle --root root.json --last-version 2 --input model-unfair.json \
    > decision-unfair.json
code=$?
set -e
echo "exit code: $code"
python3 -c 'import json; d=json.load(open("decision-unfair.json")); print("allow:", d["allow"]); [print("  -", v["severity"], v["rule"] + ":", v["message"]) for v in d["violations"]]'
[ "$code" -eq 1 ] || { echo "unexpected exit code"; exit 1; }

say "An attacker replays the older, laxer version 1 to an agent that already runs version 2:"
set +e
warden policy verify standard-v1.bundle --root root.json --last-version 2
code=$?
set -e
[ "$code" -eq 1 ] || { echo "unexpected: the replay was accepted"; exit 1; }
echo "refused (exit $code): a replayed bundle can never produce an allow."
