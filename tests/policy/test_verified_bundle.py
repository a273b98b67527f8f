"""Only a verified bundle is evaluated; an unverified one needs its own, explicitly named path.

``PolicyBundle`` comes only from ``PolicyBundle.from_envelope`` (exact bytes, signatures
checked); ``UnverifiedPolicyBundle`` (digests checked, signatures not) is what ``policy show``,
``policy test`` and ``policy eval --skip-signature`` use, and the engine evaluates it only
through ``PolicyEngine.for_unverified``, whose decisions say ``signature_verified: false``.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from trust import dsse
from trust.canonical import canonical_json
from trust.cli.main import main
from trust.errors import DigestMismatchError, FormatError, PolicyError, UnverifiedError
from trust.policy.bundle import (
    BUNDLE_PAYLOAD_TYPE,
    PolicyBundle,
    UnverifiedPolicyBundle,
    sign_source,
)
from trust.policy.engine import PolicyEngine

from ._support import NOW, verified_bundle

SIMPLE = {"p.rego": 'package t\nimport rego.v1\ndeny contains "no" if input.bad\n'}


def test_a_verified_bundle_cannot_be_built_directly(write_bundle):
    real = verified_bundle(write_bundle(SIMPLE))
    fields = {f.name: getattr(real, f.name) for f in dataclasses.fields(real)}
    with pytest.raises(UnverifiedError, match="PolicyBundle is built only by"):
        PolicyBundle(**fields)
    with pytest.raises(UnverifiedError):
        dataclasses.replace(real, data={"min_accuracy": 0.0})


def test_the_unverified_type_is_not_a_verified_one(write_bundle):
    unverified = UnverifiedPolicyBundle.from_source(write_bundle(SIMPLE), now=NOW)
    assert not isinstance(unverified, PolicyBundle)
    assert not hasattr(unverified, "signature_verified") and not hasattr(unverified, "signers")


def test_engine_refuses_an_unverified_bundle(write_bundle):
    unverified = UnverifiedPolicyBundle.from_source(write_bundle(SIMPLE), now=NOW)
    with pytest.raises(UnverifiedError, match="only a verified bundle"):
        PolicyEngine(unverified)  # type: ignore[arg-type]


def test_for_unverified_is_the_one_way_and_says_so(write_bundle):
    d = write_bundle(SIMPLE)
    with PolicyEngine.for_unverified(UnverifiedPolicyBundle.from_source(d, now=NOW)) as engine:
        decision = engine.evaluate({"bad": True})
    assert decision.allow is False and decision.to_dict()["bundle"]["signature_verified"] is False
    with PolicyEngine(verified_bundle(d)) as engine:
        decision = engine.evaluate({"bad": False})
    assert decision.allow is True and decision.to_dict()["bundle"]["signature_verified"] is True
    with pytest.raises(PolicyError, match="takes an UnverifiedPolicyBundle"):
        PolicyEngine.for_unverified(verified_bundle(d))  # type: ignore[arg-type]


def test_from_envelope_takes_exact_bytes_only(write_bundle, officers, root):
    env = sign_source(write_bundle(SIMPLE), officers[:2], now=NOW)
    assert PolicyBundle.from_envelope(env.to_json(), root, now=NOW).signers
    for wrong in (env, env.to_json().decode(), bytearray(env.to_json())):
        with pytest.raises(FormatError, match="expected the exact envelope bytes"):
            PolicyBundle.from_envelope(wrong, root, now=NOW)  # type: ignore[arg-type]
        with pytest.raises(FormatError, match="expected the exact envelope bytes"):
            UnverifiedPolicyBundle.from_bytes(wrong)  # type: ignore[arg-type]


def test_unverified_bytes_still_have_their_digests_checked(write_bundle, officers):
    env = sign_source(write_bundle(SIMPLE), officers[:1], now=NOW)
    assert UnverifiedPolicyBundle.from_bytes(env.to_json()).name == "test"  # 1 signer: fine
    obj = json.loads(env.payload)
    obj["files"]["p.rego"]["text"] += "\ndefault allow := true\n"
    forged = dsse.sign(BUNDLE_PAYLOAD_TYPE, canonical_json(obj), officers[:1]).to_json()
    with pytest.raises(DigestMismatchError):
        UnverifiedPolicyBundle.from_bytes(forged)


def test_policy_test_on_a_signed_file_says_signatures_were_not_checked(
    write_bundle, officers, tmp_path, capsys
):
    files = {**SIMPLE, "p_test.rego": "package t_test\nimport rego.v1\ntest_ok if true\n"}
    env = sign_source(write_bundle(files), officers[:2], now=NOW)
    path = tmp_path / "t.bundle"
    path.write_bytes(env.to_json())
    assert main(["policy", "test", str(path)]) == 0
    _, err = capsys.readouterr()
    assert f"signature of {path} NOT checked" in err


def test_policy_eval_on_a_source_directory_says_it_is_unsigned(write_bundle, tmp_path, capsys):
    source = write_bundle(SIMPLE)
    doc = tmp_path / "in.json"
    doc.write_text("{}")
    main(["policy", "eval", str(source), "--input", str(doc)])
    _, err = capsys.readouterr()
    # A directory was never signed: the warning must not speak of "its signature".
    assert f"warning: {source} is an unsigned bundle source; evaluated unverified" in err
    assert "signature of" not in err
