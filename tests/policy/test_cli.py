"""``warden policy`` end to end, in process: sign 2-of-3, verify, eval exit codes, test, check."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from trust.cli.main import main
from trust.keys import save_private

from ._support import PASSING_INPUT, POLICIES, make_root, officer


@pytest.fixture
def setup(tmp_path: Path):
    officers = [officer(i) for i in range(3)]
    key_files = []
    for i, k in enumerate(officers):
        p = tmp_path / f"officer{i}.key"
        save_private(k, p)
        key_files.append(str(p))
    root = make_root(officers, officer(100))
    # A live root (expires a year after the fixed test time; the CLI uses the real clock).
    root_file = tmp_path / "root.json"
    root_file.write_bytes(root.envelope.to_json())
    good = tmp_path / "good.json"
    good.write_text(json.dumps(PASSING_INPUT))
    return tmp_path, key_files, str(root_file), str(good)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_sign_cosign_verify_eval(setup, capsys):
    tmp, keys, root, good = setup
    bundle = str(tmp / "standard.bundle")
    code, out, _ = run(
        capsys, "policy", "sign", str(POLICIES / "standard"), "--key", keys[0], "--out", bundle
    )
    assert code == 0 and "signed standard v1" in out
    code, _, err = run(capsys, "policy", "verify", bundle, "--root", root)
    assert code == 1 and "1 valid signature(s) from trusted keys, 2 required" in err
    code, out, _ = run(capsys, "policy", "cosign", bundle, "--key", keys[2], "--root", root)
    assert code == 0 and "1 signature(s) added, 2 in total" in out
    code, out, _ = run(capsys, "policy", "verify", bundle, "--root", root)
    assert code == 0 and "signed by 2 of 3 policy keys (threshold 2)" in out
    code, _, err = run(capsys, "policy", "verify", bundle, "--root", root, "--last-version", "2")
    assert code == 1 and "older than the last accepted version 2" in err

    code, out, _ = run(capsys, "policy", "eval", bundle, "--root", root, "--input", good)
    decision = json.loads(out)
    assert code == 0 and decision["allow"] is True and decision["bundle"]["signature_verified"]

    bad = dict(PASSING_INPUT)
    bad["evidence"] = json.loads(json.dumps(PASSING_INPUT["evidence"]))
    bad["evidence"]["fairness"]["sex"]["demographic_parity_difference"] = 0.2
    bad_file = tmp / "bad.json"
    bad_file.write_text(json.dumps(bad))
    code, out, _ = run(capsys, "policy", "eval", bundle, "--root", root, "--input", str(bad_file))
    assert code == 1
    assert [v["rule"] for v in json.loads(out)["violations"]] == [
        "fairness.demographic_parity_difference"
    ]

    # Replay refused by eval too, with exit 2 (could not decide), never 0.
    code, out, err = run(
        capsys, "policy", "eval", bundle, "--root", root, "--input", good, "--last-version", "5"
    )
    assert code == 2 and out == "" and "older than the last accepted" in err


def test_eval_requires_root_for_signed_bundles(setup, capsys):
    tmp, keys, root, good = setup
    bundle = str(tmp / "b.bundle")
    assert (
        run(
            capsys,
            "policy",
            "sign",
            str(POLICIES / "examples" / "rollback"),
            "--key",
            keys[0],
            "--key",
            keys[1],
            "--out",
            bundle,
        )[0]
        == 0
    )
    code, _, err = run(capsys, "policy", "eval", bundle, "--input", good)
    assert code == 2 and "--root" in err
    code, out, err = run(capsys, "policy", "eval", bundle, "--input", good, "--skip-signature")
    assert code == 0 and "NOT checked" in err
    assert json.loads(out)["bundle"]["signature_verified"] is False


def test_eval_error_exit_codes(setup, capsys):
    tmp, keys, root, good = setup
    not_object = tmp / "list.json"
    not_object.write_text("[1, 2]")
    code, out, err = run(
        capsys, "policy", "eval", str(POLICIES / "standard"), "--input", str(not_object)
    )
    assert code == 2 and out == "" and "expected a JSON object, got list" in err
    code, out, _ = run(
        capsys,
        "policy",
        "eval",
        str(POLICIES / "standard"),
        "--input",
        good,
        "--query",
        "data.warden.decision.allow",
    )
    assert code == 0 and json.loads(out)["result"] is True


@pytest.mark.parametrize(
    ("query", "code", "defined", "result"),
    [
        ("data.warden.decision.allow", 1, True, False),
        ("x := data.warden.decision.allow", 0, True, {"x": False}),
        ("count(data.warden.decision.violations) > 0", 0, True, True),
        ("data.warden.no_such_rule", 1, False, None),
    ],
)
def test_eval_query_false_is_false(capsys, query, code, defined, result):
    unfair = POLICIES / "examples" / "inputs" / "model-unfair.json"
    argv = ["policy", "eval", str(POLICIES / "standard"), "--input", str(unfair)]
    got, out, _ = run(capsys, *argv, "--query", query)
    printed = json.loads(out)
    assert (got, printed["defined"]) == (code, defined)
    assert printed["result"] == result and type(printed["result"]) is type(result)


def test_policy_test_and_check(capsys):
    code, out, _ = run(capsys, "policy", "test", str(POLICIES / "lib"))
    # Every test of the library passes (their number grows as rules are added).
    assert code == 0 and re.search(r"^PASS: (\d+)/\1 ", out, re.M) and "FAIL" not in out
    code, out, _ = run(capsys, "policy", "check", str(POLICIES / "examples" / "model.governance"))
    assert code == 0 and "ok: bundle seed-model.governance v1" in out


def test_policy_test_plain_directory_with_bad_utf8(tmp_path, capsys):
    (tmp_path / "ok_test.rego").write_text("package t_test\nimport rego.v1\ntest_a if true\n")
    (tmp_path / "bad.rego").write_bytes(b"package t\n# caf\xe9\n")
    code, out, err = run(capsys, "policy", "test", str(tmp_path))
    assert code == 2 and out == ""
    assert err.startswith("error: ") and "bad.rego: not UTF-8 text" in err
    assert "Traceback" not in err


def test_show(setup, capsys):
    code, out, _ = run(capsys, "policy", "show", str(POLICIES / "standard"))
    info = json.loads(out)
    assert code == 0 and info["manifest"]["name"] == "standard"
    assert info["signature_verified"] is False
