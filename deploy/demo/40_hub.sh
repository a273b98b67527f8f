#!/usr/bin/env bash
# Part 4: the hub — TLS on loopback, two nodes enrolled with one-time tokens, the policy
# published, signed records from both nodes appended, a checkpoint and two proofs verified.
# Uses what part 2 (20_policy.sh) left in $DEMO_DIR/policy: root.json, hub.key, the bundles.
set -euo pipefail
cd "$DEMO_DIR"
say() { printf '\n>> %s\n' "$*"; }
[ -f policy/root.json ] && [ -f policy/hub.key ] && [ -f policy/standard-v2.bundle ] \
    || { echo "run 20_policy.sh first (needs policy/root.json, hub.key, standard-v2.bundle)"; exit 2; }

say "The operator creates the hub: a private CA, a TLS certificate for localhost, the hub key (already named in the root's 'hub' role), operator tokens and hub.yaml."
warden hub init hub --origin demo.warden/hub --hub-key policy/hub.key --root policy/root.json

say "The hub starts on a free loopback port with TLS; its logs are JSON lines (hub/hub.log)."
warden hub serve --config hub/hub.yaml --listen 127.0.0.1:0 --port-file hub/port 2>hub/hub.log &
HUB_PID=$!
trap 'kill -TERM $HUB_PID 2>/dev/null; wait $HUB_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 200); do [ -s hub/port ] && break; sleep 0.05; done
[ -s hub/port ] || { echo "the hub did not start:"; cat hub/hub.log; exit 1; }
HUB="127.0.0.1:$(cat hub/port)"
CONN=(--hub "$HUB" --hub-dir hub)
echo "hub listening on $HUB (TLS, CA hub/tls/ca.crt)"

say "Two regional nodes generate keys; the admin issues each a single-use token (printed once; the hub keeps only its SHA-256)."
for node in emea-1 apac-1; do
    warden key generate --out "$node.key" >/dev/null
    warden hub token create --config hub/hub.yaml --node "$node" --ttl 24h > "$node.token"
done

say "Each node enrolls (the hub appends a hub-signed enrollment entry), then appends 5 signed audit records chained by seq and prev; every call is signed with the node key."
python3 - "$HUB" <<'PY'
import sys
from pathlib import Path

from protos.client import HubClient, NodeIdentity
from trust import keys
from trust.canonical import sha256_hex
from trust.errors import EnrollmentError
from trust.record import GENESIS_PREV, Subject, build_record, sign_record
from trust.timeutil import utcnow

hub = sys.argv[1]
ca = Path("hub/tls/ca.crt").read_bytes()
for node in ("emea-1", "apac-1"):
    key = keys.load_private(f"{node}.key")
    token = Path(f"{node}.token").read_text().strip()
    with HubClient(hub, ca_cert=ca) as anon:
        r = anon.enroll(node, key, token, agent_version="demo")
        print(f"{node}: enrolled, ledger entry {r.index}")
        try:
            anon.enroll(node, key, token)
        except EnrollmentError as exc:
            print(f"{node}: the same token again is refused: {exc.message}")
    prev, records = GENESIS_PREV, []
    for seq in range(1, 6):
        payload = build_record(node_id=node, seq=seq, prev=prev, time=utcnow(),
                               event="validation",
                               subject=Subject("credit-model", f"1.{seq}", sha256_hex(b"model")),
                               evidence={"accuracy": 0.9, "rows": 5000})
        env = sign_record(payload, key)
        records.append(env)
        prev = sha256_hex(env)
    with HubClient(hub, ca_cert=ca, node=NodeIdentity(node, key)) as client:
        result = client.append(records)
        again = client.append(records)  # a resend after a lost ack: nothing is appended twice
    print(f"{node}: records seq 1-5 at ledger indexes {[a.index for a in result.acks]}; "
          f"resent batch acknowledged as duplicates: {all(a.duplicate for a in again.acks)}")
PY

say "Compliance publishes policy v2. The hub re-verifies it against its own copy of the trust root (2 of 3 officers, digests, expiry) and records the publication in the ledger."
warden hub publish policy/standard-v2.bundle "${CONN[@]}"

say "Replaying the older v1 to the hub is refused as a rollback (exit 1):"
set +e
warden hub publish policy/standard-v1.bundle "${CONN[@]}"
code=$?
set -e
[ "$code" -eq 1 ] || { echo "unexpected: the rollback was accepted (exit $code)"; exit 1; }

say "The latest checkpoint (a C2SP signed note), verified against the trust root's hub key:"
warden hub checkpoint "${CONN[@]}" --root policy/root.json

say "An auditor checks that emea-1's third record (entry 3) is in that tree ..."
warden hub proof inclusion 3 "${CONN[@]}" --root policy/root.json
say "... and that the tree at size 6 (after emea-1's records) is a prefix of today's tree."
warden hub proof consistency 6 "${CONN[@]}" --root policy/root.json

say "SIGTERM: the hub stops taking calls, drains in-flight ones, and exits cleanly."
kill -TERM "$HUB_PID"
wait "$HUB_PID"
trap - EXIT
tail -n 2 hub/hub.log
