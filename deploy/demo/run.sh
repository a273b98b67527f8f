#!/usr/bin/env bash
# make demo: runs every part of the end-to-end flow in order, narrated, on embedded defaults.
# Each part is deploy/demo/NN_name.sh; they share one work directory ($DEMO_DIR) so later parts
# use what earlier ones made (keys, root, bundles, evidence, a running hub).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export DEMO_DIR="${DEMO_DIR:-$(pwd)/demo-out}"
rm -rf "$DEMO_DIR"
mkdir -p "$DEMO_DIR"
command -v warden >/dev/null || { echo "warden is not on PATH (run 'make demo')" >&2; exit 2; }

for part in "$here"/[0-9][0-9]_*.sh; do
    echo
    echo "=================================================================="
    echo "  $(basename "$part" .sh | sed 's/^[0-9]*_//' | tr '_' ' ')"
    echo "=================================================================="
    bash "$part"
done
echo
echo "Demo finished. Everything it made is in $DEMO_DIR"
