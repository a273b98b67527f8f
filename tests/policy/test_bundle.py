"""Signed bundles: build, cosign, verify — and every way verification must fail."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from trust import dsse
from trust.canonical import canonical_json, sha256_hex
from trust.errors import (
    DigestMismatchError,
    ExpiredError,
    FormatError,
    RollbackError,
    SignatureError,
    ThresholdError,
)
from trust.policy.bundle import (
    BUNDLE_PAYLOAD_TYPE,
    PolicyBundle,
    cosign,
    load_bundle_file,
    load_source,
    sign_source,
)

from ._support import NOW, make_root

SIMPLE = {"p.rego": 'package t\nimport rego.v1\ndeny contains "no" if input.bad\n'}


def _resign(env: dsse.Envelope, payload: dict, keys) -> dsse.Envelope:
    return dsse.sign(BUNDLE_PAYLOAD_TYPE, canonical_json(payload), keys)


def test_sign_cosign_verify_roundtrip(standard_source, officers, root):
    env = sign_source(standard_source, [officers[0]], now=NOW)
    with pytest.raises(ThresholdError):
        PolicyBundle.from_envelope(env.to_json(), root, now=NOW)
    env2 = cosign(env, officers[1])
    assert env2.payload == env.payload
    bundle = PolicyBundle.from_envelope(env2.to_json(), root, now=NOW)
    assert isinstance(bundle, PolicyBundle)
    assert bundle.signers == {officers[0].key_id, officers[1].key_id}
    assert bundle.digest == sha256_hex(env.payload)
    assert bundle.name == "standard" and bundle.version == 1
    assert bundle.data["min_accuracy"] == 0.85
    assert "lib/fairness.rego" in bundle.files and "decision.rego" in bundle.files


def test_payload_layout_is_documented_shape(standard_source, officers):
    env = sign_source(standard_source, officers[:2], now=NOW)
    assert env.payload_type == "application/vnd.warden.policy-bundle+json"
    obj = json.loads(env.payload)
    assert set(obj) == {"schema", "manifest", "data", "files"}
    assert obj["schema"] == "warden.policy-bundle/v1"
    assert obj["manifest"]["expires"] == "2027-05-25T12:00:00Z"  # 180d after NOW
    for entry in obj["files"].values():
        assert entry["sha256"] == sha256_hex(entry["text"].encode())
    assert canonical_json(obj) == env.payload


def test_same_source_same_digest(standard_source, officers):
    a = sign_source(standard_source, [officers[0]], now=NOW)
    b = sign_source(standard_source, [officers[2]], now=NOW)
    assert a.payload == b.payload


def test_cosign_same_key_twice_counts_once(write_bundle, officers, root):
    env = sign_source(write_bundle(SIMPLE), [officers[0]], now=NOW)
    env = cosign(cosign(env, officers[0]), officers[0])
    assert len(env.signatures) == 1
    with pytest.raises(ThresholdError):
        PolicyBundle.from_envelope(env.to_json(), root, now=NOW)


# --- bad input, one test each -------------------------------------------------------------


def test_unknown_manifest_key_names_key_and_file(write_bundle):
    d = write_bundle(SIMPLE, owner="alice")
    with pytest.raises(FormatError, match=r"bundle\.yaml: unknown key 'owner'"):
        load_source(d)


@pytest.mark.parametrize("version", ["1.5", '"3"', "true", "0", "-2", "seven"])
def test_non_integer_version_is_refused(write_bundle, version):
    d = write_bundle(SIMPLE, version=version)
    with pytest.raises(FormatError, match=r"bundle\.yaml: field 'version' must be an integer"):
        load_source(d)


def test_unknown_key_in_signed_manifest(write_bundle, officers, root):
    env = sign_source(write_bundle(SIMPLE), officers[:2], now=NOW)
    obj = json.loads(env.payload)
    obj["manifest"]["owner"] = "mallory"
    with pytest.raises(FormatError, match="unknown manifest key 'owner'"):
        PolicyBundle.from_envelope(_resign(env, obj, officers[:2]).to_json(), root, now=NOW)


def test_non_integer_version_in_signed_manifest(write_bundle, officers, root):
    env = sign_source(write_bundle(SIMPLE), officers[:2], now=NOW)
    obj = json.loads(env.payload)
    obj["manifest"]["version"] = "2"
    with pytest.raises(FormatError, match="'version' must be an integer"):
        PolicyBundle.from_envelope(_resign(env, obj, officers[:2]).to_json(), root, now=NOW)


def test_expired_bundle(write_bundle, officers, root):
    env = sign_source(write_bundle(SIMPLE, expires="1d"), officers[:2], now=NOW)
    PolicyBundle.from_envelope(env.to_json(), root, now=NOW + timedelta(hours=23))
    with pytest.raises(ExpiredError, match="expired at 2026-11-27T12:00:00Z"):
        PolicyBundle.from_envelope(env.to_json(), root, now=NOW + timedelta(days=1))


def test_bundle_older_than_last_accepted(write_bundle, officers, root):
    env = sign_source(write_bundle(SIMPLE, version=3), officers[:2], now=NOW)
    assert PolicyBundle.from_envelope(env.to_json(), root, last_version=3, now=NOW).version == 3
    assert PolicyBundle.from_envelope(env.to_json(), root, last_version=2, now=NOW).version == 3
    with pytest.raises(RollbackError, match="v3 is older than the last accepted version 4"):
        PolicyBundle.from_envelope(env.to_json(), root, last_version=4, now=NOW)


def test_below_threshold_signatures(write_bundle, officers, root_key):
    env = sign_source(write_bundle(SIMPLE), officers[:2], now=NOW)
    strict = make_root(officers, root_key, threshold=3)
    with pytest.raises(ThresholdError, match="2 valid signature"):
        PolicyBundle.from_envelope(env.to_json(), strict, now=NOW)


def test_signatures_by_unknown_keys_do_not_count(write_bundle, officers, root, root_key):
    env = sign_source(write_bundle(SIMPLE), [root_key], now=NOW)  # root key is not a policy key
    with pytest.raises(SignatureError):
        PolicyBundle.from_envelope(env.to_json(), root, now=NOW)


def test_file_digest_mismatch(write_bundle, officers, root):
    env = sign_source(write_bundle(SIMPLE), officers[:2], now=NOW)
    obj = json.loads(env.payload)
    obj["files"]["p.rego"]["text"] += "\nallow := true\n"
    # Even re-signed by a threshold, a file that does not hash to its digest is refused.
    with pytest.raises(DigestMismatchError, match="file p.rego hashes to"):
        PolicyBundle.from_envelope(_resign(env, obj, officers[:2]).to_json(), root, now=NOW)


def test_oversize_bundle(write_bundle, officers, root, tmp_path):
    env = sign_source(write_bundle(SIMPLE), officers[:2], now=NOW)
    size = len(env.to_json())
    with pytest.raises(FormatError, match=f"bundle is {size} bytes, over the {size - 1}-byte"):
        PolicyBundle.from_envelope(env.to_json(), root, now=NOW, max_bytes=size - 1)
    path = tmp_path / "x.bundle"
    path.write_bytes(env.to_json())
    with pytest.raises(FormatError, match="over the 100-byte limit"):
        load_bundle_file(path, max_bytes=100)
    big = write_bundle({"big.rego": "package t\n" + "# pad\n" * 800_000}, name="big")
    with pytest.raises(FormatError, match="over the 4194304-byte limit"):
        sign_source(big, officers[:1], now=NOW)


def test_wrong_payload_type(write_bundle, officers, root):
    env = sign_source(write_bundle(SIMPLE), officers[:2], now=NOW)
    other = dsse.sign("application/vnd.warden.root+json", env.payload, officers[:2])
    with pytest.raises(FormatError, match="payloadType"):
        PolicyBundle.from_envelope(other.to_json(), root, now=NOW)


def test_non_canonical_payload_is_refused(write_bundle, officers, root):
    env = sign_source(write_bundle(SIMPLE), officers[:2], now=NOW)
    pretty = json.dumps(json.loads(env.payload), indent=1).encode()
    forged = dsse.sign(BUNDLE_PAYLOAD_TYPE, pretty, officers[:2])
    with pytest.raises(FormatError, match="canonical"):
        PolicyBundle.from_envelope(forged.to_json(), root, now=NOW)


def test_path_traversal_in_files_is_refused(write_bundle, officers, root):
    env = sign_source(write_bundle(SIMPLE), officers[:2], now=NOW)
    obj = json.loads(env.payload)
    obj["files"]["../evil.rego"] = obj["files"].pop("p.rego")
    with pytest.raises(FormatError, match="relative .rego path"):
        PolicyBundle.from_envelope(_resign(env, obj, officers[:2]).to_json(), root, now=NOW)


def test_payload_swapped_under_signatures(write_bundle, officers, root):
    a = sign_source(write_bundle(SIMPLE, name="a"), officers[:2], now=NOW)
    b = sign_source(write_bundle(SIMPLE, name="b", version=9), officers[2:], now=NOW)
    swapped = replace(a, payload=b.payload, raw=None)
    with pytest.raises(SignatureError):
        PolicyBundle.from_envelope(swapped.to_json(), root, now=NOW)


def test_cosign_refuses_non_bundle(officers):
    env = dsse.sign("text/plain", b"hello", [officers[0]])
    with pytest.raises(FormatError, match="payloadType"):
        cosign(env, officers[1])
    env = dsse.sign(BUNDLE_PAYLOAD_TYPE, base64.b64encode(b"junk"), [officers[0]])
    with pytest.raises(FormatError):
        cosign(env, officers[1])


def test_include_directory_files_are_prefixed(standard_source):
    src = load_source(standard_source)
    assert "lib/performance.rego" in src.files
    assert (
        src.origins["lib/performance.rego"]
        == (standard_source / "../lib").resolve() / "performance.rego"
    )


def test_missing_manifest(tmp_path: Path):
    with pytest.raises(FormatError, match="bundle.yaml: missing"):
        load_source(tmp_path)
