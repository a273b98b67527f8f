#!/usr/bin/env bash
# Part 5: the hub and the agent daemons — TLS on loopback, two regional nodes made with
# `warden agent init` and enrolled with one-time tokens, each governing real scikit-learn
# models (.skops) on its own validation data: `warden agent run --once`, then the daemon,
# which applies a new policy the moment compliance publishes it. A checkpoint and two proofs
# are verified at the end. Uses what part 2 (20_policy.sh) left in $DEMO_DIR/policy.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$DEMO_DIR"
say() { printf '\n>> %s\n' "$*"; }
[ -f policy/root.json ] && [ -f policy/hub.key ] && [ -f policy/standard-v2.bundle ] \
    || { echo "run 20_policy.sh first (needs policy/root.json, hub.key, standard-v2.bundle)"; exit 2; }
# The Python that runs warden (the model generator needs scikit-learn, as the agent does).
py="$(dirname "$(command -v warden)")/python"
[ -x "$py" ] || py="$(command -v python3)"
show() { "$py" "$here/show_log.py" "$@"; }
# wait_for_line FILE REGEX SECONDS: poll a log file until a line matches (or fail).
wait_for_line() {
    local deadline=$((SECONDS + $3))
    until grep -qE "$2" "$1" 2>/dev/null; do
        [ "$SECONDS" -lt "$deadline" ] || { echo "timed out waiting for /$2/ in $1:"; tail -5 "$1"; exit 1; }
        sleep 0.1
    done
}
NODES=(emea-1 apac-1)
declare -A SEED=([emea-1]=11 [apac-1]=12)

say "The operator creates the hub: a private CA, a TLS certificate for localhost, the hub key (already named in the root's 'hub' role), operator tokens and hub.yaml."
warden hub init hub --origin demo.warden/hub --hub-key policy/hub.key --root policy/root.json

say "The hub starts on a free loopback port with TLS; its logs are JSON lines (hub/hub.log)."
warden hub serve --config hub/hub.yaml --listen 127.0.0.1:0 --port-file hub/port 2>hub/hub.log &
HUB_PID=$!
AGENT_PIDS=()
cleanup() {
    for p in "${AGENT_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    kill -TERM "$HUB_PID" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 1 200); do [ -s hub/port ] && break; sleep 0.05; done
[ -s hub/port ] || { echo "the hub did not start:"; cat hub/hub.log; exit 1; }
HUB="127.0.0.1:$(cat hub/port)"
CONN=(--hub "$HUB" --hub-dir hub)
echo "hub listening on $HUB (TLS, CA hub/tls/ca.crt)"

say "Each regional node gets a node directory: agent.yaml, its own ed25519 key (0600), the pinned trust root and the hub's CA."
for node in "${NODES[@]}"; do
    warden agent init --node-id "$node" --hub "$HUB" --ca hub/tls/ca.crt --root policy/root.json \
        --dir "nodes/$node" | head -2
done

say "The admin issues each node a single-use token (printed once; the hub keeps only its SHA-256); each node enrolls with it, reading it from a file (never the command line)."
for node in "${NODES[@]}"; do
    warden hub token create --config hub/hub.yaml --node "$node" --ttl 24h > "$node.token"
    warden agent enroll --config "nodes/$node/agent.yaml" --token-file "$node.token"
done
say "The same token again is refused (exit 2):"
set +e
warden agent enroll --config nodes/emea-1/agent.yaml --token-file emea-1.token
code=$?
set -e
[ "$code" -eq 2 ] || { echo "unexpected: the reused token was accepted (exit $code)"; exit 1; }

say "Each node keeps its own validation data (4,000 applications; it never leaves the node) and names it in agent.yaml, with the label, the sensitive column and the stages it may promote to."
for node in "${NODES[@]}"; do
    "$py" "$repo/bench/gen_credit_model.py" data --rows 4000 --seed "${SEED[$node]}" \
        --out "nodes/$node/data/validation.parquet"
    "$py" - "nodes/$node/agent.yaml" <<'PY'
import sys
from pathlib import Path

p = Path(sys.argv[1])
text = p.read_text()
assert "models: []\n" in text
text = text.replace("models: []\n", """models:
  - name: credit-risk
    data: data/validation.parquet   # this node's own data
    label: repaid
    sensitive: [sex]
    stages: [staging]
""")
# Demo pace: a registry scan every second, proofs checked every 2 s.
text += ("scan_interval_s: 1\npush_interval_s: 0.5\nwitness_interval_s: 2\n"
         "watch_backoff_initial_s: 0.5\nwatch_backoff_max_s: 5\n")
p.write_text(text)
PY
done
sed -n '/^models:/,/stages/p' nodes/emea-1/agent.yaml

say "Compliance publishes policy v1. The hub re-verifies it against its own copy of the trust root (2 of 3 officers, digests, expiry) and records the publication in the ledger."
warden hub publish policy/standard-v1.bundle "${CONN[@]}"

say "The data science team trains credit-risk 1.4.0 (logistic regression; it never sees sex) and publishes it to both regions' registries: model.skops, training data, model card, manifest, then READY."
"$py" "$repo/bench/gen_credit_model.py" release --registry nodes/emea-1/models --version 1.4.0 --seed 3
mkdir -p nodes/apac-1/models/credit-risk
cp -r nodes/emea-1/models/credit-risk/1.4.0 nodes/apac-1/models/credit-risk/.1.4.0.partial
rm nodes/apac-1/models/credit-risk/.1.4.0.partial/READY
mv nodes/apac-1/models/credit-risk/.1.4.0.partial nodes/apac-1/models/credit-risk/1.4.0
touch nodes/apac-1/models/credit-risk/1.4.0/READY
say "A candidate 1.5.0, retrained on historical decisions that refused women more often, reaches APAC's registry too."
"$py" "$repo/bench/gen_credit_model.py" release --registry nodes/apac-1/models --version 1.5.0 \
    --bias 0.2 --seed 4

say "Each node runs the agent once (as from cron): it fetches and verifies the policy, validates every new version on its own data, records each decision (signed, chained) BEFORE moving a stage pointer, pushes the records and waits until the hub proves them included."
for node in "${NODES[@]}"; do
    warden agent run --config "nodes/$node/agent.yaml" --once --timeout 120 2>"nodes/$node/once.log"
    show "$node" "nodes/$node/once.log" 'applied|promoted|blocked|could not|finished'
done

say "What each node now enforces and holds (warden agent status):"
for node in "${NODES[@]}"; do
    warden agent status --config "nodes/$node/agent.yaml"
done
[ "$(cat nodes/emea-1/models/credit-risk/stages/staging)" = "1.4.0" ] || { echo "emea-1 did not promote 1.4.0"; exit 1; }
[ "$(cat nodes/apac-1/models/credit-risk/stages/staging)" = "1.4.0" ] || { echo "apac-1 did not keep 1.4.0 in staging"; exit 1; }
echo "APAC's block record names the violated rules (aggregates only, never a row):"
grep -h '"model version blocked' nodes/apac-1/once.log | "$py" -c 'import json,sys; [print("  -", v) for v in json.loads(sys.stdin.readline())["violations"]]'

say "An auditor keeps today's checkpoint, to prove later that the ledger only grew:"
warden hub checkpoint "${CONN[@]}" --root policy/root.json > seen.note
head -2 seen.note

say "Now both agents run as daemons (JSON logs in nodes/*/agent.log), each holding a policy watch stream open to the hub."
for node in "${NODES[@]}"; do
    warden agent run --config "nodes/$node/agent.yaml" 2>"nodes/$node/agent.log" &
    AGENT_PIDS+=($!)
done
for node in "${NODES[@]}"; do wait_for_line "nodes/$node/agent.log" '"agent started"' 30; done

say "Compliance publishes policy v2 (min accuracy 0.88). The hub pushes it down the open streams; each agent verifies it against its pinned root and applies it — no polling period:"
warden hub publish policy/standard-v2.bundle "${CONN[@]}"
for node in "${NODES[@]}"; do
    wait_for_line "nodes/$node/agent.log" 'policy standard v2 applied' 10
    show "$node" "nodes/$node/agent.log" 'applied'
done
for node in "${NODES[@]}"; do
    warden agent status --config "nodes/$node/agent.yaml" | grep -E 'policy:|outbox:'
done

say "Replaying the older v1 to the hub is refused as a rollback (exit 1):"
set +e
warden hub publish policy/standard-v1.bundle "${CONN[@]}"
code=$?
set -e
[ "$code" -eq 1 ] || { echo "unexpected: the rollback was accepted (exit $code)"; exit 1; }

say "SIGTERM: each agent finishes its step, pushes what is pending, releases its outbox and exits 0."
for i in "${!NODES[@]}"; do
    kill -TERM "${AGENT_PIDS[$i]}"
    code=0
    wait "${AGENT_PIDS[$i]}" || code=$?
    echo "${NODES[$i]}: exit $code"
    [ "$code" -eq 0 ] || { tail -5 "nodes/${NODES[$i]}/agent.log"; exit 1; }
    show "${NODES[$i]}" "nodes/${NODES[$i]}/agent.log" 'stopped'
done
AGENT_PIDS=()

say "The ledger: hub events (enrollments, publications) and every node's signed records, in one Merkle tree:"
warden hub entries "${CONN[@]}" 2>/dev/null | "$py" -c '
import json, sys
for line in sys.stdin:
    e = json.loads(line)
    print("  %3d  %-7s seq %2d  %s" % (e["index"], e["node_id"], e["seq"], e["kind"]))'

say "The latest checkpoint (a C2SP signed note), verified against the trust root's hub key:"
warden hub checkpoint "${CONN[@]}" --root policy/root.json

say "An auditor checks that entry 3 (a node's signed record) is in that tree ..."
warden hub proof inclusion 3 "${CONN[@]}" --root policy/root.json
say "... and that the checkpoint saved earlier is a prefix of today's tree."
warden hub proof consistency --from seen.note "${CONN[@]}" --root policy/root.json

say "SIGTERM: the hub stops taking calls, drains in-flight ones, and exits cleanly."
kill -TERM "$HUB_PID"
wait "$HUB_PID"
trap - EXIT
tail -n 2 hub/hub.log
