"""Write the trust-core golden vectors: fixed seeds and fixed times → committed envelopes.

Run ``.venv/bin/python tests/trust/golden/generate.py`` from the repository root to rewrite
the files beside this script. ``tests/trust/test_golden.py`` rebuilds the same bytes in memory
and fails on any difference, so a change to the encoding of keys, DSSE envelopes or roots is
always deliberate: regenerate, review the diff, and say why in the commit.

Everything here is deterministic: ed25519 signatures are a function of key and message, the
keys come from the seeds ``bytes([n]) * 32`` and every time is fixed.

Files:

* ``keys.json``         the named keys: seed byte, key id, base64 raw public key;
* ``root-v1.json``      root v1 signed by root officers r1 and r2 (threshold 2);
* ``root-v2.json``      root v2 (root role r2, r3) signed by r1, r2 (v1's role) and r3;
* ``envelope-2sig.json`` a DSSE envelope over a canonical JSON payload signed by o1 and o2.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

if __name__ == "__main__":  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from trust import dsse  # noqa: E402
from trust.canonical import canonical_json  # noqa: E402
from trust.keys import SigningKey  # noqa: E402
from trust.root import Role, RootMetadata  # noqa: E402

HERE = Path(__file__).resolve().parent

SEEDS: dict[str, int] = {"r1": 1, "r2": 2, "r3": 3, "o1": 4, "o2": 5, "o3": 6, "hub": 7}
"""Key name → seed byte; the key's seed is ``bytes([n]) * 32``."""

V1_EXPIRES = datetime(2030, 1, 1, tzinfo=UTC)
V2_EXPIRES = datetime(2031, 1, 1, tzinfo=UTC)
VERIFY_AT = datetime(2026, 6, 1, tzinfo=UTC)
"""A time at which both golden roots are valid."""

TEST_PAYLOAD_TYPE = "application/vnd.warden.test+json"
TEST_PAYLOAD = {"hello": "world", "n": 1, "created": "2026-01-01T00:00:00Z"}


def named_keys() -> dict[str, SigningKey]:
    """The golden keys by name."""
    return {name: SigningKey.from_seed(bytes([n]) * 32) for name, n in SEEDS.items()}


def root_v1_meta(k: dict[str, SigningKey]) -> RootMetadata:
    """Root v1: root 2-of-{r1,r2}, policy 2-of-{o1,o2,o3}, hub 1-of-{hub}, one approver."""
    used = ["r1", "r2", "o1", "o2", "o3", "hub"]
    return RootMetadata(
        version=1,
        expires=V1_EXPIRES,
        keys={k[n].key_id: k[n].public for n in used},
        roles={
            "root": Role((k["r1"].key_id, k["r2"].key_id), 2),
            "policy": Role((k["o1"].key_id, k["o2"].key_id, k["o3"].key_id), 2),
            "hub": Role((k["hub"].key_id,), 1),
            "approver:risk_officer": Role((k["o3"].key_id,), 1),
        },
    )


def root_v2_meta(k: dict[str, SigningKey]) -> RootMetadata:
    """Root v2: r1 retired, r3 joins the root role; the other roles are unchanged."""
    used = ["r2", "r3", "o1", "o2", "o3", "hub"]
    return RootMetadata(
        version=2,
        expires=V2_EXPIRES,
        keys={k[n].key_id: k[n].public for n in used},
        roles={
            "root": Role((k["r2"].key_id, k["r3"].key_id), 2),
            "policy": Role((k["o1"].key_id, k["o2"].key_id, k["o3"].key_id), 2),
            "hub": Role((k["hub"].key_id,), 1),
            "approver:risk_officer": Role((k["o3"].key_id,), 1),
        },
    )


def build() -> dict[str, bytes]:
    """File name → exact bytes of every golden file."""
    k = named_keys()
    keys_doc = {
        name: {"seed_byte": SEEDS[name], "key_id": key.key_id, "public": key.public.b64}
        for name, key in k.items()
    }
    v1 = root_v1_meta(k).envelope([k["r1"], k["r2"]])
    v2 = root_v2_meta(k).envelope([k["r1"], k["r2"], k["r3"]])
    env = dsse.sign(TEST_PAYLOAD_TYPE, canonical_json(TEST_PAYLOAD), [k["o1"], k["o2"]])
    return {
        "keys.json": json.dumps(keys_doc, indent=2, sort_keys=True).encode("ascii") + b"\n",
        "root-v1.json": v1.to_json() + b"\n",
        "root-v2.json": v2.to_json() + b"\n",
        "envelope-2sig.json": env.to_json() + b"\n",
    }


def main() -> int:
    """Write every golden file beside this script."""
    for name, data in build().items():
        (HERE / name).write_bytes(data)
        print(f"wrote {HERE / name} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
